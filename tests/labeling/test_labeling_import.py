"""Import: files, folders, zips, class subfolders, FER+; idempotent, tolerant of bad files, crash-safe."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.data import to_gray_array
from labeling import AnnotationStore
from labeling.media import MediaFolder
from tests._labeling_fixtures import jpeg_bytes, png_bytes, write_ferplus

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path):
    with AnnotationStore(tmp_path / "labels.db") as opened:
        yield opened


def _class_folders(root: Path, per_class: dict[str, int], seed: int = 0) -> Path:
    n = 0
    for folder, count in per_class.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        for _ in range(count):
            (root / folder / f"img{n}.jpg").write_bytes(jpeg_bytes(seed * 1000 + n))
            n += 1
    return root


def _fingerprint(store: AnnotationStore) -> tuple:
    stats = store.stats()
    return store.image_ids(), len(store.history()), stats["counts"], [store.split_of(i) for i in store.image_ids()]


def test_files_and_plain_folders_are_imported_unlabelled(store: AnnotationStore, tmp_path: Path):
    (tmp_path / "in" / "deep").mkdir(parents=True)
    (tmp_path / "in" / "a.png").write_bytes(png_bytes(1))
    (tmp_path / "in" / "deep" / "b.jpg").write_bytes(jpeg_bytes(2))
    (tmp_path / "in" / "notes.txt").write_text("not an image, not imported")
    (tmp_path / "single.png").write_bytes(png_bytes(3))
    report = store.import_paths([tmp_path / "in", tmp_path / "single.png"])
    assert (report.added, report.skipped, report.label_events) == (3, [], 0)
    assert {store.image(i).filename for i in store.image_ids()} == {"a.png", "b.jpg", "single.png"}
    assert store.stats()["unlabelled"] == 3


def test_labels_from_folders_accepts_aliases_and_reports_unknown_folders(store: AnnotationStore, tmp_path: Path):
    root = _class_folders(tmp_path / "faces", {"happiness": 3, "anger": 2, "Sad": 1, "fear": 1})
    report = store.import_paths([root], labels_from_folders=True, annotator="dataset")
    assert (report.added, report.label_events) == (7, 6)
    assert any("'fear'" in note for note in report.notes)
    totals = {label: sum(row[label] for row in store.stats()["counts"].values()) for label in ("happy", "angry", "sad")}
    assert totals == {"happy": 3, "angry": 2, "sad": 1}
    assert {e.annotator for e in store.history()} == {"dataset"}


def test_zip_archives_import_with_folder_labels_and_never_use_member_paths(store: AnnotationStore, tmp_path: Path):
    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("surprised/one.png", png_bytes(1))
        out.writestr("neutral/../../two.png", png_bytes(2))
        out.writestr("loose.jpg", jpeg_bytes(3))
        out.writestr("__MACOSX/surprised/._one.png", b"resource fork")
    report = store.import_paths([archive], labels_from_folders=True)
    assert (report.added, report.skipped) == (3, [])
    labels = sorted(filter(None, (store.current_label(i) for i in store.image_ids())))
    assert labels == ["neutral", "surprise"]
    assert all(store.image(i).original.is_relative_to(store.media.root) for i in store.image_ids())


def test_ferplus_votes_become_per_annotator_votes(store: AnnotationStore, tmp_path: Path):
    rows = [
        {"happy": 6, "neutral": 3, "sad": 1},  # single vote dropped, FER+ style
        {"neutral": 4, "surprise": 4, "unknown": 2},  # tie: FER+'s top column (neutral) wins
        {"unknown": 7, "happy": 3},  # not kept: top is unknown
        {"fear": 9, "sad": 1},  # fear is outside the paper's seven
    ]
    names = write_ferplus(tmp_path / "FER2013Train", rows)
    report = store.import_paths([tmp_path / "FER2013Train"])
    assert report.added == 2 and report.skipped == []
    by_name = {store.image(i).filename: i for i in store.image_ids()}
    assert set(by_name) == {names[0], names[1]}
    assert store.votes(by_name[names[0]]) == {"happy": 6, "neutral": 3}
    assert store.current_label(by_name[names[0]]) == "happy"
    assert store.votes(by_name[names[1]]) == {"neutral": 4, "surprise": 4}
    assert store.current_label(by_name[names[1]]) == "neutral"
    assert len({e.annotator for e in store.history()}) == 9


def test_reimporting_changes_nothing(store: AnnotationStore, tmp_path: Path):
    root = _class_folders(tmp_path / "faces", {"happy": 4, "sad": 3})
    write_ferplus(tmp_path / "fer", [{"happy": 10}, {"angry": 5, "sad": 5}])
    store.import_paths([root, tmp_path / "fer"], labels_from_folders=True)
    before = _fingerprint(store)
    again = store.import_paths([root, tmp_path / "fer"], labels_from_folders=True)
    assert (again.added, again.already_present, again.label_events) == (0, 9, 0)
    assert _fingerprint(store) == before


def test_a_relabelled_image_keeps_its_split_when_reimported(store: AnnotationStore, tmp_path: Path):
    root = _class_folders(tmp_path / "faces", {"happy": 5})
    store.import_paths([root], labels_from_folders=True)
    splits = {i: store.split_of(i) for i in store.image_ids()}
    for image_id in splits:
        store.label(image_id, "sad", "reviewer")
        store.label(image_id, "sad", "second")
    store.import_paths([root], labels_from_folders=True)
    assert {i: store.split_of(i) for i in store.image_ids()} == splits
    assert all(store.current_label(i) == "sad" for i in splits)


def test_bad_files_are_reported_and_skipped_without_stopping(store: AnnotationStore, tmp_path: Path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a_good.png").write_bytes(png_bytes(1))
    (folder / "b_garbage.jpg").write_bytes(b"this is not a jpeg")
    (folder / "c_truncated.jpg").write_bytes(jpeg_bytes(2, (200, 150))[:400])
    (folder / "d_good.jpg").write_bytes(jpeg_bytes(3))
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    report = store.import_paths([folder, tmp_path / "missing.png", tmp_path / "broken.zip"])
    assert report.added == 2
    skipped = {Path(source.split("!")[0]).name for source, _ in report.skipped}
    assert skipped == {"b_garbage.jpg", "c_truncated.jpg", "missing.png", "broken.zip"}
    assert all(reason for _, reason in report.skipped)


def _assert_consistent(db: Path) -> None:
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    media = MediaFolder(db.parent / f"{db.stem}-media")
    for image_id, original in conn.execute("SELECT id, original FROM images"):
        assert hashlib.sha256(media.resolve(original).read_bytes()).hexdigest() == image_id
    for (crop,) in conn.execute("SELECT crop FROM faces"):
        assert media.resolve(crop).is_file()
    assert (
        conn.execute(
            "SELECT count(*) FROM images i WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.image_id = i.id)"
        ).fetchone()[0]
        == 0
    )
    unsplit = (
        "SELECT count(*) FROM images i WHERE split IS NULL"
        " AND EXISTS (SELECT 1 FROM label_events e WHERE e.image_id = i.id)"
    )
    assert conn.execute(unsplit).fetchone()[0] == 0
    conn.close()


def test_a_killed_import_leaves_a_consistent_database_and_the_next_import_finishes(tmp_path: Path):
    root = _class_folders(tmp_path / "faces", {"happy": 150, "sad": 150})
    for index, path in enumerate(sorted(root.rglob("*.jpg"))):
        path.write_bytes(jpeg_bytes(50_000 + index, (320, 240)))  # bigger files: the import takes long enough to kill
    db = tmp_path / "labels.db"
    command = [sys.executable, "-m", "tsnet", "label", "import", str(root), "--db", str(db), "--labels-from-folders"]
    command.append("--crops")  # noise pictures, no faces: this test is about crash safety, not detection
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    imported = 0
    deadline = time.monotonic() + 600  # generous: a loaded CI machine starts the child slowly
    while time.monotonic() < deadline and child.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=5) as conn:
                    imported = conn.execute("SELECT count(*) FROM images").fetchone()[0]
            except sqlite3.OperationalError:
                imported = 0  # schema not created yet
        if imported >= 20:
            child.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    child.wait()
    assert child.returncode == -signal.SIGKILL, "the import finished before it could be killed"
    _assert_consistent(db)
    with AnnotationStore(db) as reopened:
        partial = len(reopened.image_ids())
        assert 20 <= partial < 300
        report = reopened.import_paths([root], labels_from_folders=True)
        assert report.skipped == [] and report.added == 300 - partial
        assert len(reopened.image_ids()) == 300
        events = reopened.history()
        assert len(events) == 300 and len({e.image_id for e in events}) == 300
    _assert_consistent(db)


def test_a_failure_between_file_and_row_is_rolled_forward_by_the_next_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    root = _class_folders(tmp_path / "faces", {"happy": 6, "neutral": 4})
    original_write_crop = MediaFolder.write_crop
    calls = {"n": 0}

    def crash_on_fifth(self, image_id, face_index, crop):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated crash after the original was written")
        return original_write_crop(self, image_id, face_index, crop)

    db = tmp_path / "labels.db"
    with AnnotationStore(db) as opened:
        monkeypatch.setattr(MediaFolder, "write_crop", crash_on_fifth)
        with pytest.raises(KeyboardInterrupt):
            opened.import_paths([root], labels_from_folders=True)
        monkeypatch.setattr(MediaFolder, "write_crop", original_write_crop)
    _assert_consistent(db)
    with AnnotationStore(db) as reopened:
        assert len(reopened.image_ids()) == 4
        report = reopened.import_paths([root], labels_from_folders=True)
        assert (report.added, report.already_present, report.skipped) == (6, 4, [])
        assert len(reopened.history()) == 10
    _assert_consistent(db)


# -- faces: what `tsnet label import` stores by default is what the app stores --------------------------


def _astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def _on_canvas(image: Image.Image, size: tuple[int, int], offset: tuple[int, int]) -> Image.Image:
    canvas = Image.new("RGB", size, (40, 60, 80))
    canvas.paste(image, offset)
    return canvas


def _import(*args: str) -> tuple[int, str, str]:
    """``tsnet label import ...`` in this process (dlib's models load once for the whole test run)."""
    import contextlib
    import io

    from tsnet.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["label", "import", *args])
    return code, out.getvalue(), err.getvalue()


def _gray(image: Image.Image, side: int = 48) -> np.ndarray:
    return to_gray_array(image, side).astype(np.int16)


def test_import_detects_faces_by_default_and_skips_photos_without_one(tmp_path: Path):
    from skimage import data

    from core.faces import FaceDetector

    photos = tmp_path / "photos" / "happy"
    photos.mkdir(parents=True)
    astronaut = _astronaut()
    shifted = _on_canvas(astronaut.transpose(Image.FLIP_LEFT_RIGHT), (900, 640), (300, 100))
    astronaut.save(photos / "a.jpg", quality=92)
    shifted.save(photos / "b.png")
    Image.fromarray(data.coffee()).save(photos / "coffee.jpg")  # a cup, no face
    db = tmp_path / "store.db"
    code, out, err = _import(str(tmp_path / "photos"), "--db", str(db), "--labels-from-folders")
    assert code == 0, err  # a photo without a face is reported, not a failure
    assert "no face found in 1 photo" in out and "coffee.jpg" in err and "no face found" in err
    detector = FaceDetector()
    with AnnotationStore(db) as store:
        records = {store.image(i).filename: store.image(i) for i in store.image_ids()}
        assert set(records) == {"a.jpg", "b.png"}
        for name, photo in (("a.jpg", Image.open(photos / "a.jpg")), ("b.png", shifted)):
            record = records[name]
            assert record.face_count == 1 and store.current_label(record.id) == "happy"
            stored = np.asarray(Image.open(record.crop), dtype=np.int16)
            assert stored.shape == (96, 96)  # as sharp as the aligned crop: a model may read it above 48 px
            aligned = _gray(detector.detect(photo)[0].aligned_crop, 96)
            assert np.abs(stored - aligned).max() <= 1  # the aligned face the app would store ...
            assert np.abs(stored - _gray(photo, 96)).mean() > 20  # ... not the whole photo shrunk
        x0, y0, x1, y1 = records["b.png"].faces[0].box
        assert 500 < x0 < x1 < 680 and 150 < y0 < y1 < 320  # the mirrored face, where it was pasted


def test_a_folder_of_48px_face_crops_is_imported_whole(tmp_path: Path):
    crops = tmp_path / "crops" / "sad"
    crops.mkdir(parents=True)
    face = _astronaut().crop((160, 60, 290, 190)).convert("L")
    for index, angle in enumerate((0, 8, -8)):
        face.rotate(angle).resize((48, 48)).save(crops / f"fer{index}.png")
    db = tmp_path / "store.db"
    code, out, _ = _import(str(tmp_path / "crops"), "--db", str(db), "--labels-from-folders", "--json")
    report = json.loads(out)
    assert code == 0 and (report["added"], report["whole"], report["faces"], report["no_face"]) == (3, 3, 0, 0)
    with AnnotationStore(db) as store:
        for image_id in store.image_ids():
            record = store.image(image_id)
            assert record.face_count is None and record.faces[0].box is None
            original = np.asarray(Image.open(record.original))
            assert np.array_equal(np.asarray(Image.open(record.crop)), original)  # the crop is the file itself


def test_crops_flag_uses_every_image_whole(tmp_path: Path):
    folder = tmp_path / "big-crops"
    folder.mkdir()
    face = _astronaut().crop((150, 40, 300, 190))
    for index, side in enumerate((160, 224)):
        face.resize((side, side)).rotate(index * 3).save(folder / f"face{index}.png")
    db = tmp_path / "store.db"
    code, out, _ = _import(str(folder), "--db", str(db), "--crops", "--json")
    report = json.loads(out)
    assert code == 0 and (report["added"], report["whole"], report["faces"]) == (2, 2, 0)
    with AnnotationStore(db) as store:
        assert all(store.image(i).face_count is None for i in store.image_ids())
    with pytest.raises(SystemExit) as refused:
        _import(str(folder), "--db", str(tmp_path / "other.db"), "--faces", "--crops")
    assert refused.value.code == 2  # one or the other


def test_every_face_of_a_group_photo_becomes_a_labelled_sample_in_one_split(tmp_path: Path):
    photo = tmp_path / "party" / "surprise" / "two.png"
    photo.parent.mkdir(parents=True)
    pair = Image.new("RGB", (1024, 512))
    pair.paste(_astronaut(), (0, 0))
    pair.paste(_astronaut().transpose(Image.FLIP_LEFT_RIGHT), (512, 0))
    pair.save(photo)
    db = tmp_path / "store.db"
    code, out, _ = _import(str(tmp_path / "party"), "--db", str(db), "--labels-from-folders", "--json")
    report = json.loads(out)
    assert code == 0 and (report["added"], report["faces"], report["label_events"]) == (1, 2, 2)
    with AnnotationStore(db) as store:
        [photo_id, face_id] = store.image_ids()
        record, second = store.image(photo_id), store.image(face_id)
        assert record.face_count == 2 and second.parent == photo_id
        assert second.faces[0].box == record.faces[1].box  # the smaller face, cut out as a sample of its own
        assert {store.current_label(photo_id), store.current_label(face_id)} == {"surprise"}
        assert store.split_of(photo_id) == store.split_of(face_id) and record.group == second.group
        assert len(store.samples(store.split_of(photo_id))) == 2
        again = store.import_paths([tmp_path / "party"], labels_from_folders=True)
        assert (again.added, again.already_present, again.label_events) == (0, 1, 0)
