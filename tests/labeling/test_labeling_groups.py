"""Group-aware splits: near-duplicates and user groups share a split; old stores migrate keeping every split."""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from core.data import to_gray_array
from core.labels import default_labels
from labeling import AnnotationStore, _schema, choose_split
from labeling._db import connect, write_transaction
from labeling.media import MediaFolder, content_id
from tsnet.cli import main


def _camera(side: int = 48) -> Image.Image:
    from skimage import data

    return Image.fromarray(data.camera()).resize((side, side), Image.BILINEAR)


def _noise_png(seed: int, side: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (side, side), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _near_copy(image: Image.Image) -> bytes:
    """The same picture a little brighter and re-encoded as JPEG: other bytes, same content."""
    buffer = io.BytesIO()
    ImageEnhance.Brightness(image.convert("RGB")).enhance(1.05).save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _cli(*args: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(["label", *args])


def test_a_near_identical_copy_joins_its_originals_split(tmp_path: Path):
    with AnnotationStore(tmp_path / "s.db") as store:
        original = store.add_image(_png(_camera()))
        store.label(original, "happy", "ana")  # the first happy image: train
        copy = store.add_image(_near_copy(_camera()))
        assert copy != original
        store.label(copy, "happy", "ana")  # the rule alone would say validation (train, validation, ...)
        other = store.add_image(_noise_png(1))
        store.label(other, "happy", "ana")
        assert store.split_of(copy) == store.split_of(original) == "train"
        assert store.split_of(other) == "validation"  # unrelated images still follow the 6:2:2 rule
        groups = store.groups()
        assert groups[copy] == groups[original] != groups[other]


def test_a_copy_labelled_before_its_original_still_shares_a_split(tmp_path: Path):
    with AnnotationStore(tmp_path / "s.db") as store:
        for seed in range(3):  # train, validation, train taken; the next sad image would go to test
            store.label(store.add_image(_noise_png(seed)), "sad", "ana")
        original = store.add_image(_png(_camera()))
        copy = store.add_image(_near_copy(_camera()))
        store.label(copy, "sad", "ana")
        store.label(original, "happy", "ben")  # another class, another annotator: still the copy's split
        assert store.split_of(original) == store.split_of(copy) == "test"


def test_near_identical_photos_through_the_face_detector_share_a_split(tmp_path: Path):
    from skimage import data

    folder = tmp_path / "photos" / "neutral"
    folder.mkdir(parents=True)
    photo = Image.fromarray(data.astronaut())
    photo.save(folder / "a.png")
    (folder / "b.jpg").write_bytes(_near_copy(photo))
    for seed in range(3):
        (folder / f"c{seed}.png").write_bytes(_noise_png(seed))  # 48 px: face crops, used whole
    db = tmp_path / "s.db"
    assert _cli("import", str(tmp_path / "photos"), "--db", str(db), "--labels-from-folders") == 0
    with AnnotationStore(db) as store:
        by_name = {store.image(i).filename: i for i in store.image_ids()}
        assert store.image(by_name["b.jpg"]).face_count == 1
        assert store.split_of(by_name["a.png"]) == store.split_of(by_name["b.jpg"])
        assert Counter(store.split_of(i) for i in by_name.values()) == {"train": 3, "validation": 1, "test": 1}


def _subject_folders(root: Path, groups: int, classes: tuple[str, ...], per_class: int, seed: int = 0) -> None:
    for label in classes:
        (root / label).mkdir(parents=True, exist_ok=True)
        for group in range(1, groups + 1):
            for shot in range(per_class):
                data = _noise_png(seed * 100_000 + group * 1000 + shot * 10 + classes.index(label))
                (root / label / f"S{group:02d}_{shot}.png").write_bytes(data)


def test_group_by_keeps_each_of_20_groups_in_one_split_and_stratified(tmp_path: Path):
    classes = ("angry", "happy", "sad")
    _subject_folders(tmp_path / "people", 20, classes, per_class=2)
    db = tmp_path / "s.db"
    command = ["import", str(tmp_path / "people"), "--db", str(db), "--labels-from-folders", "--group-by", r"(S\d+)"]
    assert _cli(*command) == 0
    with AnnotationStore(db) as store:
        groups = store.groups()
        split_of_group: dict[str, set[str]] = defaultdict(set)
        per_class: dict[str, Counter] = defaultdict(Counter)
        for image_id in store.image_ids():
            split_of_group[groups[image_id]].add(store.split_of(image_id))
            per_class[store.current_label(image_id)][store.split_of(image_id)] += 1
        assert sorted(split_of_group) == [f"S{n:02d}" for n in range(1, 21)]
        assert all(len(splits) == 1 for splits in split_of_group.values())
        assert Counter(next(iter(s)) for s in split_of_group.values()) == {"train": 12, "validation": 4, "test": 4}
        for label in classes:
            assert per_class[label] == {"train": 24, "validation": 8, "test": 8}
        samples = store.samples("test")
        assert {sample.group for sample in samples} == {g for g, s in split_of_group.items() if s == {"test"}}


def test_new_images_of_an_existing_group_join_its_split(tmp_path: Path):
    _subject_folders(tmp_path / "first", 10, ("happy",), per_class=1, seed=1)
    _subject_folders(tmp_path / "later", 10, ("happy", "sad"), per_class=2, seed=2)
    db = tmp_path / "s.db"
    for folder in ("first", "later"):
        assert (
            _cli("import", str(tmp_path / folder), "--db", str(db), "--labels-from-folders", "--group-by", "S..") == 0
        )
    with AnnotationStore(db) as store:
        by_group: dict[str, set[str]] = defaultdict(set)
        for image_id, group in store.groups().items():
            by_group[group].add(store.split_of(image_id))
        assert len(by_group) == 10 and all(len(splits) == 1 for splits in by_group.values())
        assert len(store.image_ids()) == 10 + 40


def test_group_by_folder_uses_the_folder_holding_each_file(tmp_path: Path):
    seed = 0
    for label in ("happy", "sad"):
        for person in ("ana", "ben", "cho", "dee", "eve"):
            folder = tmp_path / "faces" / label / person
            folder.mkdir(parents=True)
            for shot in range(2):
                seed += 1
                (folder / f"{shot}.png").write_bytes(_noise_png(seed))
    db = tmp_path / "s.db"
    assert (
        _cli("import", str(tmp_path / "faces"), "--db", str(db), "--labels-from-folders", "--group-by", "folder") == 0
    )
    with AnnotationStore(db) as store:
        by_group: dict[str, set[str]] = defaultdict(set)
        for image_id, group in store.groups().items():
            by_group[group].add(store.split_of(image_id))
        assert set(by_group) == {"ana", "ben", "cho", "dee", "eve"}
        assert all(len(splits) == 1 for splits in by_group.values())


def test_a_bad_group_pattern_is_refused_in_plain_words(tmp_path: Path, capsys: pytest.CaptureFixture):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(_noise_png(0))
    assert main(["label", "import", str(tmp_path / "in"), "--db", str(tmp_path / "s.db"), "--group-by", "(S"]) == 2
    err = capsys.readouterr().err
    assert "not a valid regular expression" in err and "Traceback" not in err
    assert not (tmp_path / "s.db").exists()  # refused before anything was opened or read


# -- a store written by the previous code (schema 2) --------------------------------------------------


def _old_store(path: Path, images: list[bytes], labels: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Schema 2 through the real migrations of that time, rows written as that code wrote them."""
    with monkeypatch.context() as patch:
        patch.setattr(_schema, "MIGRATIONS", _schema.MIGRATIONS[:2])
        patch.setattr(_schema, "SCHEMA_VERSION", 2)
        db = connect(path)
        assert _schema.migrate(db) == 2
    media = MediaFolder(path.parent / f"{path.stem}-media")
    counts: dict[str, Counter] = defaultdict(Counter)

    def body(d) -> None:
        d["meta"].insert({"key": "labels", "value": json.dumps(list(default_labels()))})
        for index, (data, label) in enumerate(zip(images, labels)):
            image_id = content_id(data)
            split = choose_split(counts[label])
            counts[label][split] += 1
            crop = media.write_crop(image_id, 0, to_gray_array(Image.open(io.BytesIO(data))))
            d["images"].insert(
                {
                    "id": image_id,
                    "filename": f"old{index}.png",
                    "source": "old",
                    "media_type": "PNG",
                    "original": media.write_original(image_id, "PNG", data),
                    "size_bytes": len(data),
                    "width": 48,
                    "height": 48,
                    "face_count": None,
                    "added_at": "2026-01-01T00:00:00+00:00",
                    "split": split,
                    "split_class": label,
                    "split_at": f"2026-01-01T00:00:{index:02d}+00:00",
                }
            )
            d["faces"].insert({"image_id": image_id, "face_index": 0, "box": None, "crop": crop, "detector": None})
            d["label_events"].insert(
                {
                    "uid": f"old-{index}",
                    "image_id": image_id,
                    "label": label,
                    "annotator": "old",
                    "created_at": "2026-01-01T00:00:00+00:00",
                    "origin": "import",
                }
            )

    write_transaction(db, body)
    db.close()


def test_an_old_store_migrates_keeping_every_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    images = [_noise_png(seed) for seed in range(17)] + [_png(_camera())]
    labels = ["happy", "sad"] * 8 + ["angry", "happy"]
    path = tmp_path / "old.db"
    _old_store(path, images, labels, monkeypatch)
    columns = "id, split, split_class, split_at"
    with sqlite3.connect(path) as conn:
        before = conn.execute(f"SELECT {columns} FROM images ORDER BY rowid").fetchall()
        events = conn.execute("SELECT * FROM label_events ORDER BY id").fetchall()
    camera_split = before[-1][1]
    assert camera_split == "test"  # the 9th happy image: the cycle puts it in test

    with AnnotationStore(path) as store:
        assert store._read("PRAGMA user_version")[0]["user_version"] == _schema.SCHEMA_VERSION
        copy = store.add_image(_near_copy(_camera()))  # a near-copy of an old test image, labelled now
        store.label(copy, "happy", "new")
        assert store.split_of(copy) == camera_split
        fresh = store.add_image(_noise_png(99))
        store.label(fresh, "angry", "new")
        assert store.split_of(fresh) == "validation"  # the 2nd angry image, as the rule says
    with AnnotationStore(path) as reopened:
        assert reopened.groups()[copy] == content_id(images[-1])
    with sqlite3.connect(path) as conn:
        assert conn.execute(f"SELECT {columns} FROM images ORDER BY rowid").fetchall()[: len(before)] == before
        assert conn.execute("SELECT * FROM label_events ORDER BY id").fetchall()[: len(events)] == events
        assert conn.execute("SELECT count(*) FROM images WHERE phash IS NULL").fetchone()[0] == 0
        assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")] == [1, 2, 3]


def test_a_labels_csv_imports_its_files_with_their_label_and_group(tmp_path: Path):
    folder = tmp_path / "set"
    lines = ["path,label,subject,raters_agree"]
    for person in range(1, 11):
        for shot, label in enumerate(("happy", "sad", "fear")):
            relative = f"{label}/{person:02d}{shot}.png"
            (folder / label).mkdir(parents=True, exist_ok=True)
            (folder / relative).write_bytes(_noise_png(person * 10 + shot))
            lines.append(f"{relative},{label},S{person:02d},1")
    lines.append("../outside.png,happy,S01,1")
    (tmp_path / "outside.png").write_bytes(_noise_png(999))
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    with AnnotationStore(tmp_path / "s.db") as store:
        report = store.import_paths([folder / "labels.csv"])
        assert (report.added, report.label_events) == (30, 20)  # fear is not a label of the set: unlabelled
        assert [reason for _, reason in report.skipped] == ["the CSV row names no file inside the CSV's folder"]
        assert any("'fear'" in note for note in report.notes)
        by_group: dict[str, set[str | None]] = defaultdict(set)
        for image_id, group in store.groups().items():
            if store.current_label(image_id):
                by_group[group].add(store.split_of(image_id))
        assert sorted(by_group) == [f"S{n:02d}" for n in range(1, 11)]
        assert all(len(splits) == 1 for splits in by_group.values())
        refused = store.import_paths([_write(tmp_path / "plain.csv", "a,b\n1,2\n")])
        assert refused.added == 0 and "needs a header row with a 'path' column" in refused.skipped[0][1]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
