"""The store's core behaviour: schema, content-addressed images, label history, votes, undo, samples."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labeling import AnnotationStore, LabelNotInSetError, UnknownImageError
from labeling._schema import SCHEMA_VERSION
from tests._labeling_fixtures import jpeg_bytes, png_bytes


@pytest.fixture
def store(tmp_path: Path):
    with AnnotationStore(tmp_path / "labels.db") as opened:
        yield opened


def test_new_database_is_migrated_to_the_latest_schema_in_wal_mode(tmp_path: Path):
    with AnnotationStore(tmp_path / "a.db"):
        pass
    conn = sqlite3.connect(tmp_path / "a.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY version")] == [1, 2, 3]


def test_reopening_applies_nothing_twice(tmp_path: Path):
    for _ in range(3):
        with AnnotationStore(tmp_path / "a.db") as opened:
            image_id = opened.add_image(png_bytes(0))
    with AnnotationStore(tmp_path / "a.db") as opened:
        assert opened.image_ids() == [image_id]
        assert len(opened._read("SELECT * FROM schema_migrations")) == SCHEMA_VERSION


def test_a_database_from_newer_code_is_refused(tmp_path: Path):
    with AnnotationStore(tmp_path / "a.db"):
        pass
    conn = sqlite3.connect(tmp_path / "a.db")
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        AnnotationStore(tmp_path / "a.db")


def test_the_same_bytes_are_stored_once_under_their_sha256(store: AnnotationStore):
    data = jpeg_bytes(1)
    first = store.add_image(data, source="upload", filename="me.jpg")
    second = store.add_image(data, source="elsewhere", filename="copy.jpg")
    record = store.image(first)
    assert first == second == __import__("hashlib").sha256(data).hexdigest()
    assert store.image_ids() == [first]
    assert record.original.read_bytes() == data
    assert (record.filename, record.source, record.media_type) == ("me.jpg", "upload", "JPEG")
    assert (record.width, record.height, record.size_bytes) == (64, 48, len(data))


def test_the_users_file_name_is_never_used_as_a_path(store: AnnotationStore, tmp_path: Path):
    image_id = store.add_image(png_bytes(2), filename="../../../escape.png")
    record = store.image(image_id)
    assert record.filename == "../../../escape.png"
    assert image_id in record.original.name and record.original.is_relative_to(store.media.root)
    assert not list(tmp_path.parent.glob("escape.png"))


def test_add_image_accepts_a_path_and_keeps_its_name(store: AnnotationStore, tmp_path: Path):
    photo = tmp_path / "holiday.jpg"
    photo.write_bytes(jpeg_bytes(3))
    record = store.image(store.add_image(photo))
    assert record.filename == "holiday.jpg" and record.source == str(photo)


def test_without_a_face_detector_the_whole_image_is_a_48px_gray_crop(store: AnnotationStore):
    record = store.image(store.add_image(jpeg_bytes(4)))
    assert record.face_count is None and record.faces[0].box is None
    with Image.open(record.crop) as crop:
        assert crop.size == (48, 48) and crop.mode == "L"


def test_a_face_detector_gives_boxes_and_aligned_crops_largest_first(tmp_path: Path):
    def two_faces(image: Image.Image):
        small, large = (0, 0, 10, 10), (5, 5, 45, 40)
        return [(small, image.crop(small)), (large, image.crop(large).rotate(5))]

    with AnnotationStore(tmp_path / "f.db", detect_faces=two_faces) as opened:
        record = opened.image(opened.add_image(jpeg_bytes(5)))
    assert record.face_count == 2
    assert [face.box for face in record.faces] == [(5, 5, 45, 40), (0, 0, 10, 10)]
    assert all(face.crop.is_file() for face in record.faces)


def test_an_image_without_faces_is_kept_with_the_whole_image_as_crop(tmp_path: Path):
    with AnnotationStore(tmp_path / "f.db", detect_faces=lambda image: []) as opened:
        record = opened.image(opened.add_image(jpeg_bytes(6)))
    assert record.face_count == 0 and record.crop.is_file()


def test_every_label_event_is_kept_and_the_latest_per_annotator_counts(store: AnnotationStore):
    image_id = store.add_image(png_bytes(0))
    store.label(image_id, "sad", "ana")
    store.label(image_id, "happy", "ana")
    store.label(image_id, "happy", "ben")
    assert [e.label for e in store.history(image_id)] == ["sad", "happy", "happy"]
    assert store.votes(image_id) == {"happy": 2}
    assert store.current_label(image_id) == "happy"


def test_majority_across_annotators_and_ties_go_to_the_newest_vote(store: AnnotationStore):
    image_id = store.add_image(png_bytes(0))
    store.label(image_id, "sad", "ana")
    store.label(image_id, "sad", "ben")
    store.label(image_id, "angry", "cai")
    assert store.current_label(image_id) == "sad"
    assert store.votes(image_id) == {"angry": 1, "sad": 2}
    store.label(image_id, "angry", "ben")
    assert store.current_label(image_id) == "angry"  # 2 angry vs 1 sad
    store.label(image_id, "surprise", "cai")  # 1 sad, 1 angry, 1 surprise: newest wins the tie
    assert store.current_label(image_id) == "surprise"


def test_undo_withdraws_only_the_annotators_own_last_label(store: AnnotationStore):
    first, second = store.add_image(png_bytes(0)), store.add_image(png_bytes(1))
    store.label(first, "sad", "ana")
    store.label(first, "happy", "ben")
    store.label(second, "angry", "ana")
    undone = store.undo_last("ana")
    assert undone is not None and (undone.image_id, undone.label) == (second, "angry") and undone.undone_at
    assert store.current_label(second) is None
    assert store.current_label(first) == "happy"  # ana's sad and ben's happy tie; ben's is newer
    store.undo_last("ana")
    assert store.votes(first) == {"happy": 1}
    assert store.undo_last("ana") is None
    assert len(store.history()) == 3  # undone events stay in the history


def test_undo_restores_the_annotators_previous_vote(store: AnnotationStore):
    image_id = store.add_image(png_bytes(0))
    store.label(image_id, "sad", "ana")
    store.label(image_id, "happy", "ana")
    store.undo_last("ana")
    assert store.current_label(image_id) == "sad"


def test_labels_outside_the_set_are_refused_and_aliases_accepted(store: AnnotationStore):
    image_id = store.add_image(png_bytes(0))
    with pytest.raises(LabelNotInSetError, match="'fear' is not in this store's label set: angry, disgust"):
        store.label(image_id, "fear", "ana")
    assert store.history() == []
    assert store.label(image_id, "Happiness", "ana").label == "happy"
    assert store.label(image_id, "anger", "ben").label == "angry"


def test_labelling_an_unknown_image_or_without_annotator_fails_clearly(store: AnnotationStore):
    with pytest.raises(UnknownImageError):
        store.label("0" * 64, "happy", "ana")
    with pytest.raises(ValueError, match="annotator"):
        store.label(store.add_image(png_bytes(0)), "happy", "  ")


def test_the_label_set_is_recorded_with_the_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with AnnotationStore(tmp_path / "a.db", labels=["happy", "sad", "fear"]) as opened:
        opened.label(opened.add_image(png_bytes(0)), "fear", "ana")
    monkeypatch.setenv("TSNET_LABELS", "paper7")
    with AnnotationStore(tmp_path / "a.db") as reopened:
        assert reopened.labels == ("happy", "sad", "fear")
    with pytest.raises(ValueError, match="was created with labels"):
        AnnotationStore(tmp_path / "a.db", labels=["happy", "sad"])


def test_samples_give_crop_label_index_and_vote_shares(store: AnnotationStore):
    image_id = store.add_image(png_bytes(0))
    for annotator, label in [("a", "happy"), ("b", "happy"), ("c", "happy"), ("d", "sad")]:
        store.label(image_id, label, annotator)
    (sample,) = store.samples(store.split_of(image_id))
    assert sample.image_id == image_id and sample.crop.is_file()
    assert store.labels[sample.label_index] == "happy"
    expected = np.zeros(len(store.labels), dtype=np.float32)
    expected[store.labels.index("happy")], expected[store.labels.index("sad")] = 0.75, 0.25
    np.testing.assert_allclose(sample.soft_target, expected)


def test_an_image_whose_labels_were_all_undone_keeps_its_split_but_leaves_training(store: AnnotationStore):
    image_id = store.add_image(png_bytes(0))
    store.label(image_id, "happy", "ana")
    split = store.split_of(image_id)
    store.undo_last("ana")
    assert store.split_of(image_id) == split
    assert store.samples(split) == []


def test_stats_count_classes_per_split_annotators_and_agreement(store: AnnotationStore):
    ids = [store.add_image(png_bytes(i)) for i in range(6)]
    for image_id in ids[:5]:
        store.label(image_id, "happy", "ana")
    store.label(ids[0], "happy", "ben")
    store.label(ids[1], "sad", "ben")
    store.undo_last("ben")
    store.label(ids[1], "sad", "ben")
    stats = store.stats()
    totals = {label: sum(stats["counts"][split][label] for split in stats["counts"]) for label in store.labels}
    assert (totals["happy"], totals["sad"]) == (4, 1)  # ids[1]: ana happy vs ben sad, the newer vote wins
    assert set(stats["counts"]) == {"train", "validation", "test"}
    assert all(set(row) == set(store.labels) for row in stats["counts"].values())
    assert (stats["images"], stats["labelled"], stats["unlabelled"]) == (6, 5, 1)
    assert stats["annotators"]["ben"] == {"events": 3, "undone": 1, "images": 2}
    assert stats["agreement"]["images_with_several_annotators"] == 2
    assert stats["agreement"]["unanimous_rate"] == 0.5
