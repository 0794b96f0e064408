"""`tsnet average`: a uniform weight average of checkpoints of one model, usable wherever weights are."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core import load_classifier
from core.weights import load_weights, save_weights
from retrain.training import (
    TrainConfig,
    average_checkpoints,
    evaluate_runs,
    read_history,
    run_training,
    train_missing,
    training_hours,
)
from tests._core_fixtures import tiny_training_settings

LABELS = ("angry", "disgust", "happy", "sad", "surprise", "neutral", "contempt")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("averaging")
    common = tiny_training_settings(root, LABELS, train_per_class=4, val_per_class=2)
    for name, epochs in (("a", 2), ("b", 1)):
        config = TrainConfig(architecture="shufflenet_v2", out=str(root / "runs" / name), epochs=epochs, **common)
        run_training(config, log=str)
    return root / "runs", common["val_data"]


def test_average_is_the_mean_of_the_checkpoints(runs, tmp_path):
    root, _ = runs
    folder = average_checkpoints([root / "a/best", root / "a/last.pt", root / "b/best"], tmp_path / "avg")
    averaged, config = load_weights(folder)
    parts = [load_weights(root / "a/best")[0], load_weights(root / "b/best")[0]]
    last = torch.load(root / "a/last.pt", weights_only=False)["model"]
    name = "conv1.0.weight"
    expected = (parts[0].state_dict()[name] + last[name].float() + parts[1].state_dict()[name]) / 3
    assert torch.allclose(averaged.state_dict()[name], expected, atol=1e-3)  # stored in float16
    assert len(config.training["averaged_from"]) == 3
    # the sources' training time, as recorded (a run of seconds rounds to 0.0 hours: compare, never assert > 0)
    assert config.training["train_hours"] == pytest.approx(round(_hours(root / "a") + _hours(root / "b"), 4), abs=1e-9)
    assert load_classifier(folder).predict_crops([]).shape == (0, len(LABELS))


def test_average_refuses_different_models_and_single_checkpoints(runs, tmp_path):
    root, _ = runs
    other = tmp_path / "other"
    _, config = load_weights(root / "a/best")
    config.labels = list(LABELS[:6])
    save_weights(config.build_model(), config, other)
    with pytest.raises(ValueError, match="different model"):
        average_checkpoints([root / "a/best", other], tmp_path / "avg")
    with pytest.raises(ValueError, match="at least two"):
        average_checkpoints([root / "a/best"], tmp_path / "avg")
    with pytest.raises(FileNotFoundError, match="neither a weights folder"):
        average_checkpoints([root / "a/best", root / "missing.pt"], tmp_path / "avg")


def test_average_command_and_report_plan_entry(runs, tmp_path):
    root, val = runs
    command = ["average", str(root / "a/best"), str(root / "b/best"), "--out", str(tmp_path / "c")]
    result = subprocess.run(
        [sys.executable, "-m", "tsnet", *command],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "averaged 2 checkpoints" in result.stdout and (tmp_path / "c" / "model.safetensors").is_file()
    plan = {"a-avg": {"average_of": ["a/best", "a/last.pt"]}}
    train_missing(root, "unused", str(val), plan, threads=1)
    results = evaluate_runs(root, str(val), plan)
    assert results["a-avg"]["train_hours"] == pytest.approx(round(_hours(root / "a"), 4), abs=1e-9)
    assert results["a-avg"]["epochs"] == 0


def _hours(run: Path) -> float:
    """A run's recorded training hours; its log must hold a positive time for every epoch it trained."""
    history = read_history(run)
    assert history and all(record["train_seconds"] > 0 for record in history if "epoch" in record)
    return training_hours(history)
