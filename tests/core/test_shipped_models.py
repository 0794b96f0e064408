"""The shipped defaults load from a fresh install and their cards tell the truth about them."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import load_classifier
from core.classifier import shipped_weights_folder
from core.labels import PAPER_LABELS

FERPLUS_VALID = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ferplus" / "FER2013Valid"


@pytest.fixture(autouse=True)
def _no_registry(monkeypatch, tmp_path):
    monkeypatch.setenv("TSNET_HOME", str(tmp_path))  # no served version: the shipped defaults answer


@pytest.mark.parametrize("name", ["student", "teacher"])
def test_shipped_model_loads_and_predicts(name):
    classifier = load_classifier(name)
    assert classifier.labels == PAPER_LABELS
    probs = classifier.predict_crops([Image.new("L", (48, 48), 120)])
    assert probs.shape == (1, 7) and np.isclose(probs.sum(), 1.0, atol=1e-4)
    folder = shipped_weights_folder(name)
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in folder.iterdir()}
    card = (folder / "README.md").read_text()
    assert f"{100 * classifier.config.metrics['val_accuracy']:.2f} %" in card
    assert "FER2013Test split was never used" in card


def test_student_is_small_and_teacher_is_the_paper_size():
    student, teacher = load_classifier("student"), load_classifier("teacher")
    assert student.config.architecture == "shufflenet_v2" and student.config.metrics["params"] <= 1.3e6
    assert teacher.config.architecture == "eff_resnet18"
    assert abs(teacher.config.metrics["params"] - 11.8e6) / 11.8e6 < 0.15
    assert student.config.training["teacher"]  # the student was distilled


@pytest.mark.skipif(not FERPLUS_VALID.is_dir(), reason="needs ../shared/data/ferplus/FER2013Valid (not in the repo)")
@pytest.mark.parametrize("name", ["student", "teacher"])
def test_model_card_numbers_reproduce_on_ferplus_valid(name):
    from retrain.training import evaluate_classifier

    classifier = load_classifier(name)
    report = evaluate_classifier(classifier, str(FERPLUS_VALID), latency=False)
    assert report["samples"] == classifier.config.metrics["val_samples"]
    assert report["accuracy"] == pytest.approx(classifier.config.metrics["val_accuracy"], abs=1e-9)
