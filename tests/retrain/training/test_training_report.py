"""`tsnet report` builds the paper's tables from whatever runs exist, and says what is missing; a reported run whose
folder is later deleted keeps its row, marked as evaluated earlier, so adding one run does not wipe the others."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from retrain.training import TrainConfig, run_training
from tests._core_fixtures import tiny_training_settings

LABELS = ("angry", "disgust", "happy", "sad", "surprise", "neutral", "contempt")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    common = {**tiny_training_settings(root, LABELS, train_per_class=6, val_per_class=3), "epochs": 1}
    teacher = run_training(TrainConfig(architecture="eff_resnet18", out=str(root / "runs/teacher"), **common), log=str)
    run_training(TrainConfig(architecture="shufflenet_v2", out=str(root / "runs/student-s0"), **common), log=str)
    run_training(
        TrainConfig(
            architecture="shufflenet_v2",
            out=str(root / "runs/distill-s0"),
            teacher=str(teacher),
            teacher_cache=True,
            **common,
        ),
        log=str,
    )
    return root, common["val_data"]


def test_report_writes_tables_and_confusion_figures(runs, tmp_path):
    root, val = runs
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tsnet",
            "report",
            "--runs",
            str(root / "runs"),
            "--valid",
            str(val),
            "--out",
            str(tmp_path / "docs"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "RESULTS.md" in result.stdout
    text = (tmp_path / "docs" / "RESULTS.md").read_text()
    for heading in ("Table I", "Table II", "Table III", "Table IV", "Protocol", "majority"):
        assert heading in text
    assert "| ResNet18 (short schedule) | not run" in text  # missing runs are named, never invented
    assert "EFF-ResNet18 (teacher) | 1 | 11." in text  # epochs, then parameters (millions)
    assert (tmp_path / "docs" / "figures" / "confusion-distill-s0.png").stat().st_size > 1000


def test_report_without_runs_is_a_clear_error(tmp_path, runs):
    _, val = runs
    result = subprocess.run(
        [sys.executable, "-m", "tsnet", "report", "--runs", str(tmp_path), "--valid", str(val)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "no finished runs" in result.stderr


def _report(runs: Path, val: str, out: Path) -> subprocess.CompletedProcess:
    command = ["report", "--runs", str(runs), "--valid", str(val), "--out", str(out)]
    return subprocess.run([sys.executable, "-m", "tsnet", *command], check=True, capture_output=True, text=True)


def test_a_deleted_run_keeps_its_earlier_row_marked(runs, tmp_path):
    root, val = runs
    first = _report(root / "runs", val, tmp_path)
    assert "evaluated earlier" not in first.stderr and "\u2020" not in (tmp_path / "RESULTS.md").read_text()
    reported = json.loads((tmp_path / "results.json").read_text())
    assert set(reported) == {"teacher", "student-s0", "distill-s0"}
    assert [record["epoch"] for record in reported["distill-s0"]["history"]] == [1]

    kept = tmp_path / "kept-run"
    shutil.move(root / "runs" / "distill-s0", kept)  # the run folder is deleted after it was reported
    try:
        second = _report(root / "runs", val, tmp_path)
    finally:
        shutil.move(kept, root / "runs" / "distill-s0")
    assert "kept 1 rows" in second.stderr and "distill-s0" in second.stderr
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| distill-s0 \u2020 | 1 |" in text and "| student-s0 | 1 |" in text  # training cost rows
    assert "T-SNet (distilled student, seed 0) \u2020 | 1 |" in text  # Table II
    assert "`distill-s0`" in text.split("## Protocol")[0]  # the header names the rows read from results.json
    assert (tmp_path / "figures" / "confusion-distill-s0.png").is_file()
    again = json.loads((tmp_path / "results.json").read_text())
    assert again["distill-s0"]["accuracy"] == reported["distill-s0"]["accuracy"]
    assert again["distill-s0"]["evaluated_earlier"] is True and "evaluated_earlier" not in again["student-s0"]

    third = _report(root / "runs", val, tmp_path)  # the folder is back: evaluated now, the mark is gone
    assert "kept" not in third.stderr
    assert "evaluated_earlier" not in json.loads((tmp_path / "results.json").read_text())["distill-s0"]
