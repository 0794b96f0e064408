"""``tsnet rebalance``: post-hoc logit adjustment baked into the classifier's bias, served by every backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from core import load_classifier
from core.data import load_gray_images, read_labelled_folder
from retrain.training.rebalance import class_prior
from tests._core_fixtures import write_ferplus_folder
from tests._retrain_fixtures import LABELS, tiny_weights


def test_the_rebalanced_model_answers_logits_minus_tau_log_prior(tmp_path: Path) -> None:
    train = write_ferplus_folder(tmp_path / "train", LABELS, per_class=6)
    rows = (train / "label.csv").read_text().splitlines()
    (train / "label.csv").write_text("\n".join(rows[:2] + rows[6:]) + "\n")  # the first class becomes rare
    model = tiny_weights(tmp_path / "model", "shufflenet_v2", seed=5)
    out = tmp_path / "rebalanced"
    command = ["rebalance", "--model", str(model), "--train-data", str(train), "--tau", "0.5", "--out", str(out)]
    subprocess.run([sys.executable, "-m", "tsnet", *command], check=True, capture_output=True)

    faces = load_gray_images(read_labelled_folder(str(train), list(LABELS), "majority").paths)
    before, after = load_classifier(model), load_classifier(out)
    prior = class_prior(str(train), list(LABELS))
    assert float(prior.max() / prior.min()) > 1.5
    expected = torch.log_softmax(torch.log(torch.from_numpy(before.predict_gray_batch(faces))) - 0.5 * prior.log(), 1)
    got = np.log(after.predict_gray_batch(faces))
    assert np.allclose(got, expected.numpy(), atol=2e-3)  # weights are saved in half precision
    assert after.config.training["logit_adjust_post_hoc"] == 0.5
    assert len(after.config.training["class_prior"]) == len(LABELS)


def test_the_shipped_student_rebalances_without_its_training_data(tmp_path: Path) -> None:
    out = tmp_path / "balanced"
    command = [sys.executable, "-m", "tsnet", "rebalance", "--tau", "0.75", "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True)
    shipped, balanced = load_classifier("student"), load_classifier(out)
    prior = torch.tensor(shipped.config.training["class_prior"])
    assert abs(float(prior.sum()) - 1) < 1e-3 and shipped.labels[int(prior.argmax())] == "neutral"
    before, after = shipped.model.state_dict(), balanced.model.state_dict()
    changed = [key for key in before if not torch.equal(before[key], after[key])]
    assert len(changed) == 1  # only the classifier's bias moves, by tau x log(prior)
    shift = (before[changed[0]].float() - after[changed[0]].float()).numpy()
    assert np.allclose(shift, 0.75 * prior.log().numpy(), atol=1e-2)  # weights are saved in half precision
    assert balanced.config.training["logit_adjust_post_hoc"] == 0.75


def test_a_model_without_a_recorded_prior_asks_for_its_training_data(tmp_path: Path) -> None:
    model = tiny_weights(tmp_path / "model", "shufflenet_v2", seed=6)
    command = [sys.executable, "-m", "tsnet", "rebalance", "--model", str(model), "--tau", "0.5", "--out", "x"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0 and "pass --train-data" in result.stderr
    assert not (tmp_path / "x").exists()
