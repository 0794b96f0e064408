"""Uniform weight averaging of checkpoints of one model (a "model soup" / SWA-style average).

Checkpoints along one training trajectory (a run's best and last epochs, and a warm restart from it) lie
in one basin, so their average is usually a flatter, slightly better minimum than any of them; it costs
no training, only an evaluation. BatchNorm running statistics are averaged like the weights: measured on
the shipped student, recomputing them over FER2013Train afterwards lost accuracy instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from core.weights import ModelConfig, load_weights, read_config, save_weights

from .run_folder import BEST_DIR, read_history, training_hours

__all__ = ["average_checkpoints", "read_checkpoint", "checkpoint_label"]


def read_checkpoint(source: str | Path) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """Weights and config of a weights folder (``run/best``) or a run's training checkpoint (``run/last.pt``)."""
    source = Path(source)
    if source.is_dir():
        model, config = load_weights(source)
        return model.state_dict(), config
    if source.suffix == ".pt" and source.is_file():
        state = torch.load(source, map_location="cpu", weights_only=False)
        return state["model"], read_config(source.parent / BEST_DIR)
    raise FileNotFoundError(f"{source} is neither a weights folder nor a run's .pt checkpoint")


def checkpoint_label(source: str | Path) -> str:
    """``<run>/<checkpoint>`` (e.g. ``tsnet-s0/last.pt``): how cards and the report name a source."""
    source = Path(source)
    return f"{source.parent.name}/{source.name}"


def _run_folder(source: Path) -> Path:
    return source.parent if source.is_file() or source.name == BEST_DIR else source


def average_checkpoints(sources: Sequence[str | Path], out: str | Path) -> Path:
    """Average ``sources`` (same architecture and labels) into the weights folder ``out``; returns it."""
    if len(sources) < 2:
        raise ValueError("averaging needs at least two checkpoints")
    states, configs = zip(*(read_checkpoint(source) for source in sources), strict=True)
    first = configs[0]
    for source, config in zip(sources[1:], configs[1:], strict=True):
        if (config.architecture, config.labels, config.input_size) != (
            first.architecture,
            first.labels,
            first.input_size,
        ):
            raise ValueError(f"{source} is a different model (architecture, labels or input size) from {sources[0]}")
    averaged = {
        name: torch.stack([state[name].float() for state in states]).mean(0) if tensor.is_floating_point() else tensor
        for name, tensor in states[0].items()
    }
    model = first.build_model()
    model.load_state_dict(averaged)
    runs = list(dict.fromkeys(_run_folder(Path(source)) for source in sources))
    hours = sum(training_hours(read_history(run)) for run in runs)
    sources_text = [str(source) for source in sources]
    # The first source's recipe, less what described its single best epoch.
    training = {key: value for key, value in first.training.items() if key not in ("best_epoch", "val_accuracy")}
    first.training = {**training, "averaged_from": sources_text, "train_hours": round(hours, 4)}
    first.metrics = {}
    return save_weights(model.eval(), first, out, half=True)
