"""Size limits hold on every way in, and refusals name the problem in plain words.

One decoder (core's) with its pixel limit for predict, webcam frames, import, add-to-dataset and zip
members; zip archives judged from their directory and members stream-read with a cap; annotator names
capped. Large test inputs are crafted small: a 12000x12000 PNG of one colour is a few hundred KB, and a
zip's directory can claim sizes its data does not have.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from core.images import MAX_PIXELS
from labeling import AnnotationStore
from labeling.importing import MAX_MEMBER_BYTES, MAX_ZIP_BYTES, MAX_ZIP_MEMBERS
from labeling.store import MAX_ANNOTATOR_LENGTH, AnnotatorNameError
from tests._labeling_fixtures import jpeg_bytes, png_bytes
from tests._serve_fixtures import call, endpoints, upload
from tests._webapp_fixtures import LiveApp, launch

os.environ.setdefault("OMP_NUM_THREADS", "1")
PYTHON_WORDS = ("Traceback", "NoneType", "object has no attribute", "Error:", "Errno")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from launch(tmp_path_factory.mktemp("limits"), users="")


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12000x12000 pixels (144 MP, over the 50 MP limit) in a file of a few hundred KB."""
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    Image.new("1", (12_000, 12_000)).save(path)
    assert 12_000 * 12_000 > MAX_PIXELS and path.stat().st_size < 2_000_000
    return path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AnnotationStore]:
    with AnnotationStore(tmp_path / "labels.db") as opened:
        yield opened


def _plain(message: str, *folders: Path) -> None:
    assert message and not any(words in message for words in PYTHON_WORDS), message
    for folder in folders:
        assert str(folder) not in message, message


def test_the_pixel_limit_holds_for_predict_frames_import_and_add(app: LiveApp, huge: Path) -> None:
    client = Client(app.url, verbose=False)
    with pytest.raises(AppError, match="12000x12000") as refused:
        client.predict(handle_file(str(huge)), False, api_name="/predict")
    _plain(str(refused.value), huge.parent, app.home)
    with pytest.raises(AppError, match="12000x12000") as refused:
        client.predict(handle_file(str(huge)), "", "ana", api_name="/add_to_dataset")
    _plain(str(refused.value), huge.parent, app.home)
    [frame] = [e for e in endpoints(app.url) if e.api_name == "predict_frame"]
    answer = call(app.url, frame, [upload(app.url, huge), None])
    assert not answer.ok and "12000x12000" in answer.error
    _plain(answer.error, huge.parent, app.home)
    report = client.predict([handle_file(str(huge))], False, "ana", api_name="/import")
    assert "Imported 0 new image(s)" in report and "skipped `huge.png`" in report and "12000x12000" in report
    _plain(report, huge.parent, app.home)
    assert app.services.store.stats()["images"] == 0


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _claim_size(path: Path, member: str, size: int) -> Path:
    """Rewrite the uncompressed size a zip's central directory (and local header) claim for ``member``."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    central = data.find(b"PK\x01\x02")
    while central != -1:
        name_length = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46 : central + 46 + name_length] == name:
            struct.pack_into("<I", data, central + 24, size)
            local = struct.unpack_from("<I", data, central + 42)[0]
            struct.pack_into("<I", data, local + 22, size)
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))
    return path


def test_a_zip_with_too_many_entries_is_refused_from_its_directory(store: AnnotationStore, tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for index in range(MAX_ZIP_MEMBERS + 1):
            archive.writestr(f"x/{index}.png", b"")
    report = store.import_paths([path])
    assert report.added == 0 and len(report.skipped) == 1
    [(source, reason)] = report.skipped
    assert f"at most {MAX_ZIP_MEMBERS} per archive" in reason
    _plain(reason, tmp_path)


def test_a_zip_claiming_more_than_the_total_is_refused_before_inflating(store: AnnotationStore, tmp_path: Path) -> None:
    members = {f"face{index}.png": png_bytes(index) for index in range(3)}
    path = _claim_size(_zip(tmp_path / "claims.zip", members), "face1.png", MAX_ZIP_BYTES - 10)
    _claim_size(path, "face2.png", 100_000)  # the three together now claim more than the cap
    report = store.import_paths([path])
    assert report.added == 0 and [reason for _, reason in report.skipped] == [
        f"zip would inflate to {(MAX_ZIP_BYTES - 10 + 100_000 + len(members['face0.png'])) / 2**20:.0f} MB:"
        f" at most {MAX_ZIP_BYTES / 2**20:.0f} MB per archive"
    ]


def test_zip_members_are_read_no_further_than_their_entry_allows(store: AnnotationStore, tmp_path: Path) -> None:
    members = {"a/big.png": png_bytes(1), "a/liar.jpg": jpeg_bytes(2, (640, 480)), "a/fine.png": png_bytes(3)}
    path = _claim_size(_zip(tmp_path / "members.zip", members), "a/big.png", MAX_MEMBER_BYTES + 1)
    _claim_size(path, "a/liar.jpg", 100)  # inflates to far more than the 100 bytes it declares
    report = store.import_paths([path])
    assert report.added == 1
    reasons = {Path(source.split("!")[1]).name: reason for source, reason in report.skipped}
    assert reasons["big.png"].startswith("zip member is") and "per image" in reasons["big.png"]
    assert "does not match its entry" in reasons["liar.jpg"]  # read stops at the declared size, then fails
    for reason in reasons.values():
        _plain(reason, tmp_path)


def test_images_inside_zips_meet_the_pixel_limit(store: AnnotationStore, huge: Path, tmp_path: Path) -> None:
    path = _zip(tmp_path / "bomb.zip", {"huge.png": huge.read_bytes(), "ok.jpg": jpeg_bytes(5)})
    report = store.import_paths([path])
    assert report.added == 1
    [(source, reason)] = report.skipped
    assert source.endswith("!huge.png") and "12000x12000" in reason
    _plain(reason, tmp_path)


def test_annotator_names_are_capped(app: LiveApp, store: AnnotationStore) -> None:
    buffer = io.BytesIO()
    Image.new("L", (48, 48), 90).save(buffer, format="PNG")
    image_id = store.add_image(buffer.getvalue())
    for name in ("x" * (MAX_ANNOTATOR_LENGTH + 1), "tab\there", "   "):
        with pytest.raises(AnnotatorNameError):
            store.label(image_id, "happy", name)
    with pytest.raises(AnnotatorNameError):
        store.ingest(png_bytes(9), None, None, [("happy", "y" * 10_000)])
    assert store.label(image_id, "happy", "n" * MAX_ANNOTATOR_LENGTH).annotator == "n" * MAX_ANNOTATOR_LENGTH

    client = Client(app.url, verbose=False)
    app_image = app.services.store.add_image(buffer.getvalue())
    with pytest.raises(AppError, match=f"at most {MAX_ANNOTATOR_LENGTH} characters"):
        client.predict(app_image, "happy", "z" * 5000, api_name="/label")
    assert "z" * 10 not in repr(client.predict(api_name="/stats")["annotators"])


def test_odd_label_and_job_arguments_get_plain_messages(app: LiveApp) -> None:
    client = Client(app.url, verbose=False)
    for arguments, api_name, words in (
        (("nope", None, "ana"), "/label", "no label given"),
        (("nope", "happy", "ana"), "/label", "no image 'nope' in the store"),
        (("../../etc",), "/retrain_status", "no such retrain job"),
        ((1e9,), "/retrain", "Epochs must be a whole number"),
    ):
        with pytest.raises(AppError, match=words) as refused:
            client.predict(*arguments, api_name=api_name)
        _plain(str(refused.value), app.home)
