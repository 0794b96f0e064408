"""``tsnet predict`` / ``export-onnx`` / ``bench`` from the command line."""

from __future__ import annotations

import csv
import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading

import numpy as np
import pytest
from PIL import Image

from core import load_classifier
from tests._face_fixtures import astronaut, encode, student_folder_fixture, tiled_astronauts  # noqa: F401
from tsnet.cli import main


@pytest.fixture()
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    astronaut().save(folder / "astronaut.jpg")
    tiled_astronauts(2, 1).save(folder / "pair.png")
    sky = np.tile(np.linspace(40, 220, 640, dtype=np.uint8), (480, 1))  # a smooth gradient: no face anywhere
    (folder / "landscape.png").write_bytes(encode(Image.fromarray(np.stack([sky] * 3, axis=-1))))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.png").write_text("not a picture")
    return folder


def test_json_lists_every_file_with_faces_or_a_one_line_error(photos, student_folder, capsys):
    assert main(["predict", str(photos), "--json", "--model", str(student_folder)]) == 1  # two files unreadable
    results = {entry["file"].split("/")[-1]: entry for entry in json.loads(capsys.readouterr().out)}
    assert set(results) == {"astronaut.jpg", "pair.png", "landscape.png", "empty.jpg", "notes.png"}
    assert len(results["astronaut.jpg"]["faces"]) == 1 and results["astronaut.jpg"]["error"] is None
    assert len(results["pair.png"]["faces"]) == 2
    assert results["landscape.png"]["faces"] == [] and results["landscape.png"]["error"] is None
    for bad in ("empty.jpg", "notes.png"):
        assert results[bad]["faces"] == [] and "\n" not in results[bad]["error"]
    face = results["astronaut.jpg"]["faces"][0]
    assert len(face["box"]) == 4 and face["label"] in face["probs"]
    assert sum(face["probs"].values()) == pytest.approx(1.0, abs=1e-4)


def test_text_output_says_no_face_and_errors_without_traceback(photos, student_folder, capsys):
    assert (
        main(["predict", str(photos / "landscape.png"), str(photos / "notes.png"), "--model", str(student_folder)]) == 1
    )
    out = capsys.readouterr().out
    assert "landscape.png: no face found" in out
    assert "notes.png: error: not an image" in out and "Traceback" not in out


def test_csv_and_cam_outputs(photos, student_folder, tmp_path, capsys):
    out_csv, cams = tmp_path / "faces.csv", tmp_path / "cams"
    args = ["predict", str(photos / "astronaut.jpg"), "--csv", str(out_csv), "--cam", str(cams)]
    assert main([*args, "--model", str(student_folder)]) == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 1 and rows[0]["label"] and float(rows[0]["x1"]) > float(rows[0]["x0"])
    assert (cams / "astronaut_cam.png").is_file() and (cams / "astronaut_face1_cam.png").is_file()


def test_missing_shipped_model_is_a_one_line_usage_error(photos, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TSNET_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("core.classifier._PRETRAINED_DIR", tmp_path / "nothing")
    assert main(["predict", str(photos / "astronaut.jpg")]) != 0
    error = capsys.readouterr().err.strip()
    assert "student" in error and len(error.splitlines()) == 1


def test_usage_errors_exit_non_zero():
    with pytest.raises(SystemExit) as caught:
        main(["predict"])
    assert caught.value.code != 0


def test_export_onnx_writes_a_servable_model(student_folder, tmp_path, capsys):
    out = tmp_path / "student.onnx"
    assert main(["export-onnx", str(out), "--model", str(student_folder)]) == 0
    served, reference = load_classifier(out), load_classifier(student_folder)
    crop = reference.predict_image(astronaut())[0].aligned_crop
    assert np.abs(served.predict_crops([crop]) - reference.predict_crops([crop])).max() < 1e-5


@pytest.mark.parametrize("command", ["predict", "bench", "export-onnx", "export-tflite"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as caught:
        main([command, "--help"])
    assert caught.value.code == 0 and len(capsys.readouterr().out) > 100


def test_bench_json_times_every_stage_and_the_stream_sees_the_face(student_folder, capsys):
    assert main(["bench", "--json", "--model", str(student_folder), "--repeats", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["photos"]) == {"640x480", "640x480-portrait", "1920x1080"}
    for stages in report["photos"].values():
        assert stages["faces"] == 1
        for stage in ("decode", "detect", "landmarks", "align", "classify", "gradcam", "end_to_end_without_gradcam"):
            assert stages[stage]["p50_ms"] > 0
    assert report["crop_classification"]["onnx_int8"]["batch1_model_only"]["p50_ms"] > 0
    assert report["pipeline_backend"] == "litert_int8"
    assert report["crop_classification"]["litert_int8"]["batch1_model_only"]["p50_ms"] > 0
    assert report["webcam"]["faces_per_frame"] == 1.0 and report["webcam"]["fps"] > 0


def test_a_missing_file_exits_1_with_a_one_line_error(photos, student_folder, capsys):
    missing = photos / "gone.jpg"
    assert main(["predict", str(missing), "--model", str(student_folder)]) == 1
    captured = capsys.readouterr()
    (line,) = captured.out.splitlines()
    assert line.startswith(f"{missing}: error: ") and "no such file" in line
    assert "1 of 1 input could not be read" in captured.err and "Traceback" not in captured.err


def test_json_names_the_model_version_and_backend_that_answered(photos, student_folder, capsys):
    assert main(["predict", str(photos / "astronaut.jpg"), "--json", "--model", str(student_folder)]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["model_version"] == load_classifier(student_folder).version and result["backend"] == "torch"
    assert set(result) >= {"file", "faces", "error"}


def test_cam_lists_every_file_it_wrote(photos, student_folder, tmp_path, capsys):
    cams = tmp_path / "cams"
    args = ["predict", str(photos / "pair.png"), "--cam", str(cams), "--json", "--model", str(student_folder)]
    assert main(args) == 0
    captured = capsys.readouterr()
    (result,) = json.loads(captured.out)
    written = sorted(str(path) for path in cams.iterdir())
    assert sorted(result["cams"]) == written and len(written) == 3  # the photo and two aligned crops
    assert "wrote 3 Grad-CAM overlays" in captured.err
    assert all(path in captured.err for path in written)


def test_shipped_model_names_print_the_data_folder(photos, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TSNET_HOME", str(tmp_path / "home"))
    assert main(["predict", str(photos / "landscape.png"), "--json"]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 1
    assert f"data folder {(tmp_path / 'home').resolve()}" in captured.err


def test_progress_bar_on_a_terminal_leaves_json_stdout_clean(photos, student_folder):
    """stderr is a real pseudo-terminal, so the bar is drawn; stdout must still be exactly one JSON document."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24 rows, 100 columns
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the follower side closed
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    command = [sys.executable, "-m", "tsnet", "predict", str(photos), "--json", "--model", str(student_folder)]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=follower, timeout=600)
    os.close(follower)
    reader.join(timeout=60)
    os.close(leader)
    assert result.returncode == 1  # empty.jpg and notes.png
    assert len(json.loads(result.stdout)) == 5
    terminal = b"".join(chunks).decode(errors="replace")
    assert "predict: 100%" in terminal and "5/5" in terminal
