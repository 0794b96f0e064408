"""`tsnet report` builds the paper's tables from whatever runs exist, and says what is missing."""

import subprocess
import sys

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
