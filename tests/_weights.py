"""Random-init weights folders saved the way shipped weights are, so tests never need the shipped models."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from core import ModelConfig, create_model, save_weights
from core.labels import PAPER_LABELS

DEFAULT_MODEL_KWARGS: dict[str, Any] = {"stem": "imagenet", "dropout": 0.5}


def write_random_weights(
    folder: Path,
    architecture: str = "shufflenet_v2",
    *,
    labels: Sequence[str] = PAPER_LABELS,
    input_size: int = 64,
    seed: int = 0,
    varied_batchnorm: bool = False,
    half: bool = False,
    model_kwargs: dict[str, Any] | None = None,
) -> Path:
    """Seeded random weights; ``varied_batchnorm`` gives BatchNorm non-trivial statistics so faces differ."""
    torch.manual_seed(seed)
    kwargs = dict(DEFAULT_MODEL_KWARGS if model_kwargs is None else model_kwargs)
    config = ModelConfig(architecture=architecture, labels=list(labels), input_size=input_size, model_kwargs=kwargs)
    model = create_model(architecture, num_classes=len(config.labels), **kwargs)
    if varied_batchnorm:
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_var.uniform_(0.5, 2.0)
                    module.running_mean.uniform_(-0.1, 0.1)
    return save_weights(model.eval(), config, folder, half=half)
