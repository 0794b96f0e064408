import numpy as np
import pytest
import torch
from PIL import Image

from core import ModelConfig, create_model, load_classifier, load_weights, save_weights
from core.labels import PAPER_LABELS
from core.metrics import classification_metrics, count_flops, count_parameters


def test_metrics_on_known_predictions():
    labels = ("a", "b", "c")
    targets = np.array([0, 0, 1, 1, 2])
    probs = np.array([[0.9, 0.1, 0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.6, 0.3], [0.3, 0.1, 0.6]])
    report = classification_metrics(probs, targets, labels)
    assert report["accuracy"] == pytest.approx(4 / 5)
    assert report["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]
    assert report["per_class_accuracy"] == {"a": 0.5, "b": 1.0, "c": 1.0}
    assert report["macro_precision"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert report["macro_recall"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert 0.5 < report["macro_auc"] <= 1.0


def test_absent_class_is_reported_as_none_not_zero():
    report = classification_metrics(np.eye(3)[[0, 1]], np.array([0, 1]), ("a", "b", "c"))
    assert report["per_class_accuracy"]["c"] is None
    assert report["macro_recall"] == 1.0


def test_parameter_and_flop_counts():
    layer = torch.nn.Linear(10, 4)
    assert count_parameters(layer) == 44
    assert count_flops(layer, (1, 10)) == 2 * 10 * 4


def _config(**overrides) -> ModelConfig:
    base = dict(
        architecture="shufflenet_v2", labels=list(PAPER_LABELS), input_size=48, model_kwargs={"stem": "imagenet"}
    )
    base.update(overrides)
    return ModelConfig(**base)


@pytest.mark.parametrize("half", [False, True])
def test_weights_round_trip(tmp_path, half):
    config = _config(training={"recipe": "test"}, metrics={"val_accuracy": 0.5})
    model = config.build_model().eval()
    save_weights(model, config, tmp_path / "w", half=half)
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["config.json", "model.safetensors"]
    loaded, loaded_config = load_weights(tmp_path / "w")
    assert loaded_config == config
    x = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        difference = (loaded(x) - model(x)).abs().max().item()
    assert difference == 0.0 if not half else difference < 5e-2


def test_classifier_predicts_crops_of_any_size_and_mode(tmp_path):
    config = _config()
    save_weights(config.build_model(), config, tmp_path / "w")
    classifier = load_classifier(tmp_path / "w")
    assert classifier.labels == PAPER_LABELS
    assert isinstance(classifier.model, torch.nn.Module)
    crops = [
        Image.new("RGB", (100, 80), "red"),
        Image.new("L", (48, 48)),
        Image.new("RGBA", (20, 20)),
        Image.new("I;16", (64, 64)),
    ]
    probs = classifier.predict_crops(crops)
    assert probs.shape == (4, 7)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert classifier.predict_crops([]).shape == (0, 7)


def test_missing_weights_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a weights folder"):
        load_classifier(tmp_path)


def test_create_model_ignores_none_options():
    model = create_model("shufflenet_v2", num_classes=3, stem=None, dropout=None)
    assert model.fc[-1].out_features == 3
