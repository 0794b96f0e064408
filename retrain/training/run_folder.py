"""A run folder's layout, read and written only here: ``train_config.json`` (the resolved settings),
``metrics.jsonl`` (one record per epoch), ``last.pt`` (model, optimizer, scheduler, epoch, RNG) and ``best/``
(the weights folder with the best validation accuracy)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn as nn

from core.atomic import replacing
from core.metrics import count_parameters
from core.weights import save_weights

from .config import TrainConfig

__all__ = [
    "BEST_DIR",
    "CHECKPOINT_NAME",
    "METRICS_LOG",
    "SETTINGS_NAME",
    "open_run",
    "write_settings",
    "append_record",
    "save_best",
    "save_checkpoint",
    "read_history",
    "training_hours",
    "recorded_training_hours",
]

CHECKPOINT_NAME = "last.pt"
BEST_DIR = "best"
METRICS_LOG = "metrics.jsonl"
SETTINGS_NAME = "train_config.json"


def open_run(config: TrainConfig, resume: bool) -> tuple[TrainConfig, dict | None]:
    """The settings to train with and the checkpoint to continue from (None: a fresh run).

    A resumed run keeps its recorded settings but the new ``epochs`` and ``threads``; a run is never
    overwritten without ``resume``.
    """
    run_dir = Path(config.out)
    checkpoint = run_dir / CHECKPOINT_NAME
    if not checkpoint.is_file():
        return config, None
    if not resume:
        raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    saved = torch.load(checkpoint, weights_only=False)
    return TrainConfig(**{**saved["config"], "epochs": config.epochs, "threads": config.threads}), saved


def write_settings(run_dir: Path, config: TrainConfig) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SETTINGS_NAME).write_text(json.dumps(asdict(config), indent=2) + "\n")


def append_record(run_dir: Path, record: dict) -> None:
    with open(run_dir / METRICS_LOG, "a") as handle:
        handle.write(json.dumps(record) + "\n")


def save_best(run_dir: Path, config: TrainConfig, model: nn.Module, epoch: int, record: dict) -> None:
    """``best/``: this epoch's weights, recording which epoch and its validation (and photo) accuracy."""
    photos = {key: record[key] for key in ("photo_accuracy", "selection_score") if key in record}
    best_config = config.model_config(best_epoch=epoch + 1, val_accuracy=record.get("val_accuracy"), **photos)
    best_config.metrics = {"val_accuracy": record.get("val_accuracy"), **photos, "params": count_parameters(model)}
    save_weights(model, best_config, run_dir / BEST_DIR, half=config.half_weights)


def save_checkpoint(
    run_dir: Path,
    config: TrainConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
    epoch: int,
    best_accuracy: float,
    history: list[dict],
) -> None:
    """``last.pt``, replaced atomically so an interrupted write leaves the previous epoch's checkpoint."""
    state = {
        "config": asdict(config),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "best_accuracy": best_accuracy,
        "history": history,
        "torch_rng": torch.get_rng_state(),
    }
    with replacing(Path(run_dir) / CHECKPOINT_NAME) as temporary:
        torch.save(state, temporary)


def read_history(run_dir: str | Path) -> list[dict]:
    """The per-epoch records of a run folder's metrics log (empty when the run kept none)."""
    log = Path(run_dir) / METRICS_LOG
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.is_file() else []


def training_hours(history: list[dict]) -> float:
    """Wall hours spent in training epochs (evaluation excluded), from :func:`read_history` records."""
    return sum(record.get("train_seconds", 0.0) for record in history) / 3600.0


def recorded_training_hours(history: list[dict], training: dict) -> float | None:
    """A run's training hours: from its log records, else as its config records them (an averaged model has
    no log of its own and records its sources' time); None when neither is known."""
    return training_hours(history) if history else training.get("train_hours")
