"""Supervised training and teacher->student distillation on in-memory faces, resumable per epoch.

One loop serves ``tsnet train-teacher``, ``tsnet train-student`` and ``tsnet distill``; the run
folder holds the resolved settings, a JSON-lines metrics log, ``last.pt`` (model, optimizer,
scheduler, epoch, RNG) and ``best/`` (the weights folder with the best validation accuracy).
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from core.classifier import Classifier, load_classifier
from core.data import augment_batch, load_gray_images, preprocess_batch, read_labelled_folder
from core.distillation import DEFAULT_ALPHA, DEFAULT_TEMPERATURE, distillation_loss, hard_loss
from core.labels import default_labels
from core.metrics import classification_metrics, count_flops, count_parameters
from core.weights import ModelConfig, save_weights

__all__ = [
    "TrainConfig",
    "run_training",
    "Dataset",
    "load_dataset",
    "TrainingCancelled",
    "distributed_context",
    "read_history",
    "training_hours",
    "recorded_training_hours",
]

CHECKPOINT_NAME = "last.pt"
BEST_DIR = "best"
METRICS_LOG = "metrics.jsonl"
INPUT_MEAN, INPUT_STD = 0.5, 0.5  # grayscale normalisation of the models trained here
_QUIET = not sys.stderr.isatty()  # progress bars only on a terminal; logs get one line per epoch


@dataclass
class TrainConfig:
    """Every knob of a run; defaults are the paper's recipe (Section IV.B)."""

    architecture: str
    train_data: str
    out: str
    val_data: str | None = None
    labels: list[str] = field(default_factory=lambda: list(default_labels()))
    epochs: int = 150
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "plateau"
    plateau_patience: int = 3
    plateau_factor: float = 0.1
    warmup_epochs: int = 0
    input_size: int = 64
    stem: str = "imagenet"
    dropout: float = 0.5
    target_mode: str = "majority"
    teacher: str | None = None
    temperature: float = DEFAULT_TEMPERATURE
    alpha: float = DEFAULT_ALPHA
    teacher_cache: bool = False
    seed: int = 0
    threads: int | None = None
    max_train_samples: int | None = None
    flip_tta: bool = False
    channels_last: bool = True
    half_weights: bool = True
    label_smoothing: float = 0.0
    augment: bool = True
    init_from: str | None = None
    device: str = "auto"


class TrainingCancelled(RuntimeError):
    """Raised between batches when the caller's ``should_stop`` says so; the last checkpoint stays valid."""


@dataclass
class Dataset:
    images: torch.Tensor  # uint8 (N, 1, 48, 48)
    label_indices: torch.Tensor  # int64 (N,)
    soft_targets: torch.Tensor  # float32 (N, C)

    def __len__(self) -> int:
        return len(self.images)


def load_dataset(folder: str, labels: list[str], mode: str, limit: int | None = None, seed: int = 0) -> Dataset:
    samples = read_labelled_folder(folder, labels, mode)
    order = np.arange(len(samples))
    if limit is not None and limit < len(order):
        order = np.sort(np.random.default_rng(seed).permutation(len(order))[:limit])
    paths = [samples.paths[i] for i in order]
    return Dataset(
        load_gray_images(paths),
        torch.from_numpy(samples.label_indices[order]),
        torch.from_numpy(samples.soft_targets[order]),
    )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _lr_at(config: TrainConfig, epoch: int, step: int, steps: int) -> float | None:
    """Learning rate for warmup / cosine schedules (None: leave it to ReduceLROnPlateau)."""
    progress = epoch + step / max(steps, 1)
    if config.warmup_epochs and progress < config.warmup_epochs:
        return config.lr * (progress + 1e-3) / config.warmup_epochs
    if config.schedule == "cosine":
        span = max(config.epochs - config.warmup_epochs, 1)
        return 0.5 * config.lr * (1 + math.cos(math.pi * min((progress - config.warmup_epochs) / span, 1.0)))
    return None


class _TeacherTargets:
    """Teacher logits for a batch: computed online on the augmented batch, or cached once on clean images."""

    def __init__(self, config: TrainConfig, train: Dataset, run_dir: Path, save_cache: bool = True) -> None:
        self.teacher: Classifier = load_classifier(config.teacher)
        if list(self.teacher.labels) != list(config.labels):
            raise ValueError(f"teacher labels {self.teacher.labels} differ from the run's {config.labels}")
        self.config = config
        self.cache: torch.Tensor | None = None
        if config.teacher_cache:
            cache_file = run_dir / "teacher_logits.pt"
            if cache_file.is_file():
                self.cache = torch.load(cache_file)
            else:
                self.cache = self._clean_logits(train.images)
                if save_cache:
                    run_dir.mkdir(parents=True, exist_ok=True)
                    torch.save(self.cache, cache_file)

    @torch.inference_mode()
    def _clean_logits(self, images: torch.Tensor) -> torch.Tensor:
        cfg = self.teacher.config
        chunks = []
        for start in tqdm(range(0, len(images), 256), desc="teacher logits", leave=False, disable=_QUIET):
            batch = preprocess_batch(images[start : start + 256], cfg.input_size, cfg.mean, cfg.std)
            chunks.append(self.teacher.predict_logits(batch, flip_average=True))
        return torch.cat(chunks)

    @torch.inference_mode()
    def __call__(self, indices: torch.Tensor, student_batch: torch.Tensor) -> torch.Tensor:
        if self.cache is not None:
            return self.cache[indices]
        student_batch = student_batch.float().cpu()
        cfg = self.teacher.config
        batch = student_batch * INPUT_STD + INPUT_MEAN  # back to [0, 1], then the teacher's own normalisation
        if cfg.input_size != batch.shape[-1]:
            size = (cfg.input_size, cfg.input_size)
            batch = nn.functional.interpolate(batch, size=size, mode="bilinear", align_corners=False)
        return self.teacher.model((batch - cfg.mean) / cfg.std)


def _model_config(config: TrainConfig, extra: dict[str, Any]) -> ModelConfig:
    training = {key: value for key, value in asdict(config).items() if key not in ("out",)}
    training.update(extra)
    return ModelConfig(
        architecture=config.architecture,
        labels=list(config.labels),
        input_size=config.input_size,
        in_chans=1,
        mean=INPUT_MEAN,
        std=INPUT_STD,
        model_kwargs={"stem": config.stem, "dropout": config.dropout},
        training=training,
    )


def _evaluate(model: nn.Module, model_config: ModelConfig, data: Dataset) -> dict:
    classifier = Classifier(model, model_config)
    probs = classifier.predict_gray_batch(data.images)
    metrics = classification_metrics(probs, data.label_indices.numpy(), model_config.labels)
    log_probs = np.log(np.clip(probs, 1e-8, 1.0))
    metrics["loss"] = float(-log_probs[np.arange(len(probs)), data.label_indices.numpy()].mean()) if len(probs) else 0.0
    return metrics


def distributed_context() -> tuple[int, int]:
    """(rank, world size); starts the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def _device(config: TrainConfig, rank: int) -> torch.device:
    if config.device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", rank % torch.cuda.device_count())
        return torch.device("cpu")
    return torch.device(config.device)


def _load_initial_weights(model: nn.Module, config: TrainConfig) -> None:
    from core.weights import load_weights

    source, source_config = load_weights(config.init_from)
    if source_config.architecture != config.architecture or list(source_config.labels) != list(config.labels):
        raise ValueError(
            f"--init-from {config.init_from} is a {source_config.architecture} over {source_config.labels};"
            f" this run trains a {config.architecture} over {config.labels}"
        )
    model.load_state_dict(source.state_dict())


def run_training(
    config: TrainConfig,
    resume: bool = False,
    log: Callable[[str], None] = print,
    train_set: Dataset | None = None,
    val_set: Dataset | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Train (or distill, when ``config.teacher`` is set) and return the best weights folder.

    ``train_set`` / ``val_set`` replace reading ``config.train_data`` / ``config.val_data`` (the retrain
    job passes the annotation store's faces). Under ``torchrun`` each process takes its share of every
    batch and DistributedDataParallel averages the gradients; only rank 0 writes files.
    """
    rank, world = distributed_context()
    is_main = rank == 0
    if not is_main:
        log = _silent
    run_dir = Path(config.out)
    checkpoint_path = run_dir / CHECKPOINT_NAME
    if resume and checkpoint_path.is_file():
        saved = torch.load(checkpoint_path, weights_only=False)
        config = TrainConfig(**{**saved["config"], "epochs": config.epochs, "threads": config.threads})
    elif checkpoint_path.is_file() and not resume:
        raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    else:
        saved = None
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "train_config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    torch.set_num_threads(config.threads or max((os.cpu_count() or 1) // world, 1))
    _seed_everything(config.seed)
    device = _device(config, rank)

    started = time.time()
    train = train_set or load_dataset(
        config.train_data, config.labels, config.target_mode, config.max_train_samples, config.seed
    )
    val = (
        val_set
        if val_set is not None
        else (load_dataset(config.val_data, config.labels, "majority") if config.val_data else None)
    )
    log(f"loaded {len(train)} training and {len(val) if val else 0} validation faces in {time.time() - started:.1f}s")
    if len(train) == 0:
        raise ValueError(f"no training images found in {config.train_data} for labels {config.labels}")

    model_config = _model_config(config, {})
    model = model_config.build_model()
    if config.init_from and saved is None:
        _load_initial_weights(model, config)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.plateau_factor, patience=config.plateau_patience
    )
    teacher = _TeacherTargets(config, train, run_dir, save_cache=is_main) if config.teacher else None

    start_epoch, best_accuracy, history = 0, -1.0, []
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        plateau.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"])
        start_epoch, best_accuracy, history = saved["epoch"] + 1, saved["best_accuracy"], saved["history"]
        log(f"resumed {run_dir} at epoch {start_epoch + 1}")
    trained_model: nn.Module = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        trained_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    targets = train.soft_targets if config.target_mode == "distribution" else train.label_indices
    steps = math.ceil(len(train) / config.batch_size)
    for epoch in range(start_epoch, config.epochs):
        generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        order = torch.randperm(len(train), generator=generator)
        model.train()
        sums: dict[str, float] = {}
        epoch_start = time.time()
        bar = tqdm(
            range(steps),
            desc=f"epoch {epoch + 1}/{config.epochs}",
            leave=False,
            mininterval=5,
            disable=_QUIET or not is_main,
        )
        for step in bar:
            if should_stop is not None and should_stop():
                raise TrainingCancelled(f"stopped during epoch {epoch + 1}")
            lr = _lr_at(config, epoch, step, steps)
            if lr is not None:
                for group in optimizer.param_groups:
                    group["lr"] = lr
            indices = order[step * config.batch_size : (step + 1) * config.batch_size][rank::world]
            if len(indices) == 0:
                continue
            if config.augment:
                batch = augment_batch(train.images[indices], config.input_size, INPUT_MEAN, INPUT_STD, generator)
            else:
                batch = preprocess_batch(train.images[indices], config.input_size, INPUT_MEAN, INPUT_STD)
            batch = batch.to(device).contiguous(memory_format=memory_format)
            batch_targets = _smoothed(targets[indices], config).to(device)
            logits = trained_model(batch)
            if teacher is not None:
                teacher_logits = teacher(indices, batch).to(device)
                parts = distillation_loss(logits, teacher_logits, batch_targets, config.temperature, config.alpha)
            else:
                parts = {"loss": hard_loss(logits, batch_targets)}
            optimizer.zero_grad(set_to_none=True)
            parts["loss"].backward()
            optimizer.step()
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            bar.set_postfix(loss=f"{sums['loss'] / (step + 1):.3f}")
        train_seconds = time.time() - epoch_start
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "lr": optimizer.param_groups[0]["lr"],
            **{f"train_{key}": value / steps for key, value in sums.items()},
            "train_seconds": round(train_seconds, 1),
            "images_per_second": round(len(train) / train_seconds, 1),
        }
        model.eval()
        if val is not None and len(val):
            metrics = _evaluate(model, model_config, val)
            record.update(
                val_accuracy=metrics["accuracy"],
                val_macro_recall=metrics["macro_recall"],
                val_loss=metrics["loss"],
                val_per_class=metrics["per_class_accuracy"],
            )
            monitored_loss, accuracy = metrics["loss"], metrics["accuracy"]
        else:
            monitored_loss, accuracy = record["train_loss"], -record["train_loss"]
        if config.schedule == "plateau" and epoch + 1 >= config.warmup_epochs:
            plateau.step(monitored_loss)
        history.append(record)
        if is_main:
            _save_epoch(
                run_dir,
                config,
                model,
                optimizer,
                plateau,
                record,
                history,
                epoch,
                accuracy > best_accuracy,
                max(best_accuracy, accuracy),
            )
        best_accuracy = max(best_accuracy, accuracy)
        log(
            f"epoch {epoch + 1}/{config.epochs} loss {record['train_loss']:.4f}"
            + (
                f" val_acc {record['val_accuracy']:.4f} val_recall {record['val_macro_recall']:.4f}"
                if "val_accuracy" in record
                else ""
            )
            + f" {record['images_per_second']:.0f} img/s"
        )
        if on_epoch is not None:
            on_epoch(record)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
    flops = count_flops(model.cpu(), (1, 1, config.input_size, config.input_size))
    log(
        f"done: best validation accuracy {best_accuracy:.4f}; {count_parameters(model)} parameters,"
        f" {flops / 1e6:.1f} MFLOPs"
    )
    return run_dir / BEST_DIR


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


def _silent(message: str) -> None:
    """Log sink of the non-zero ranks of a distributed run: one process speaks for all."""


def _smoothed(batch_targets: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    if not config.label_smoothing:
        return batch_targets
    classes = len(config.labels)
    hard = batch_targets if batch_targets.dim() == 2 else nn.functional.one_hot(batch_targets, classes).float()
    return hard * (1 - config.label_smoothing) + config.label_smoothing / classes


def _save_epoch(
    run_dir: Path,
    config: TrainConfig,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    plateau: torch.optim.lr_scheduler.ReduceLROnPlateau,
    record: dict,
    history: list[dict],
    epoch: int,
    improved: bool,
    best_accuracy: float,
) -> None:
    """Append the metrics line, refresh best/ when validation improved, and checkpoint atomically."""
    with open(run_dir / METRICS_LOG, "a") as handle:
        handle.write(json.dumps(record) + "\n")
    if improved:
        best_config = _model_config(config, {"best_epoch": epoch + 1, "val_accuracy": record.get("val_accuracy")})
        best_config.metrics = {"val_accuracy": record.get("val_accuracy"), "params": count_parameters(model)}
        save_weights(model, best_config, run_dir / BEST_DIR, half=config.half_weights)
    state = {
        "config": asdict(config),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": plateau.state_dict(),
        "epoch": epoch,
        "best_accuracy": best_accuracy,
        "history": history,
        "torch_rng": torch.get_rng_state(),
    }
    temporary = run_dir / (CHECKPOINT_NAME + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, run_dir / CHECKPOINT_NAME)
