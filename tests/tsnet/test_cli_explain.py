"""``tsnet explain-bench DIR``: Grad-CAM's effective grid and deletion score per model, plain or JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._face_fixtures import astronaut
from tsnet.cli import main


@pytest.fixture()
def crops(tmp_path: Path) -> Path:
    folder = tmp_path / "faces" / "happy"
    folder.mkdir(parents=True)
    face = astronaut().crop((170, 60, 290, 200)).convert("L").resize((48, 48))
    face.save(folder / "a.png")
    face.transpose(0).save(folder / "b.png")  # mirrored: a second, different crop
    return tmp_path / "faces"


def test_json_reports_grid_and_deletion_score_for_student_and_teacher(crops: Path, capsys: pytest.CaptureFixture):
    assert main(["explain-bench", str(crops), "--json", "--limit", "2"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["faces"] == 2 and set(report["models"]) == {"student", "teacher"}
    for entry in report["models"].values():
        assert entry["effective_grid"] >= 1 and entry["deletion_score"] >= 0 and entry["version"]
    assert "data folder" in captured.err


def test_plain_output_has_a_header_and_one_line_per_model(crops: Path, capsys: pytest.CaptureFixture):
    assert main(["explain-bench", str(crops), "--limit", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("1 faces, top 20% vs random")
    assert [line.split(" ")[0] for line in lines[1:]] == ["student", "teacher"]
    assert all("effective grid" in line and "deletion score" in line for line in lines[1:])


def test_a_folder_without_images_fails_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture):
    (tmp_path / "empty").mkdir()
    assert main(["explain-bench", str(tmp_path / "empty")]) == 1
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "found no readable images" in error and "Traceback" not in error
