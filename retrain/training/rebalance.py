"""Post-hoc logit adjustment baked into a model: the classifier's bias loses ``tau * log(class prior)``.

A model trained on FER+ learns FER+'s class frequencies (36 % neutral, 0.5 % contempt) along with the faces, so
on photos where every expression is common it answers "neutral" too often and "contempt" never. Subtracting
``tau * log(prior)`` from the logits (Menon et al., 2021) moves it toward the class-balanced posterior; baking it
into the last layer's bias means every backend (PyTorch, ONNX, LiteRT, int8) serves it with no new code.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from core.weights import ModelConfig, load_weights, save_weights

from .data import load_dataset

__all__ = ["class_prior", "rebalance_weights", "recorded_prior"]


def class_prior(train_data: str, labels: list[str]) -> torch.Tensor:
    """Each class's share of a training folder's FER+ vote shares (the frequencies the model learned)."""
    return load_dataset(train_data, labels, "distribution").class_shares()


def recorded_prior(config: ModelConfig) -> torch.Tensor:
    """The class prior a weights folder records it learned (``training.class_prior``), so a model can be
    rebalanced where its training data is not at hand (a PyPI install, a Space)."""
    prior = config.training.get("class_prior")
    if not prior or len(prior) != len(config.labels):
        raise ValueError(
            "this model does not record the class prior it was trained on: pass --train-data, the folder it learned"
        )
    return torch.tensor(prior, dtype=torch.float32)


def _classifier_layer(model: nn.Module, classes: int) -> nn.Linear:
    layers = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == classes]
    if not layers or layers[-1].bias is None:
        raise ValueError(f"no final linear layer with a bias and {classes} outputs to adjust")
    return layers[-1]


def rebalance_weights(source: str | Path, out: str | Path, tau: float, prior: torch.Tensor) -> Path:
    """Write ``source``'s weights to ``out`` with ``tau * log(prior)`` taken off the classifier's bias."""
    model, config = load_weights(source)
    layer = _classifier_layer(model, len(config.labels))
    shift = tau * torch.log(prior.clamp(min=1e-4))
    with torch.no_grad():
        layer.bias -= shift.to(layer.bias.dtype)
    config.training = {
        **config.training,
        "logit_adjust_post_hoc": tau,
        "class_prior": [round(float(p), 6) for p in prior],
        "rebalanced_from": str(source),
    }
    config.metrics = {}
    return save_weights(model.eval(), config, out, half=True)
