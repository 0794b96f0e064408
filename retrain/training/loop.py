"""Supervised training and teacher->student distillation on in-memory faces, resumable per epoch.

One loop serves ``tsnet train-teacher``, ``tsnet train-student``, ``tsnet distill`` and the retrain job; each
stage of a run is a function below, and what it leaves on disk is described in :mod:`.run_folder`.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from core.classifier import Classifier
from core.data import augment_batch, preprocess_batch
from core.distillation import distillation_loss, hard_loss
from core.metrics import count_flops, count_parameters
from core.weights import ModelConfig, load_weights

from ..layout import DataLayout
from .config import INPUT_MEAN, INPUT_STD, TrainConfig
from .data import Dataset, load_dataset
from .evaluation import evaluate_dataset
from .photos import PhotoSet, evaluate_photos, load_photo_set
from .run_folder import BEST_DIR, append_record, open_run, save_best, save_checkpoint, write_settings
from .teacher import TeacherTargets

__all__ = ["run_training", "TrainingCancelled", "TrainingDiverged", "distributed_context"]

_PROGRESS = sys.stderr.isatty()  # progress bars only on a terminal; logs get one line per epoch


class TrainingCancelled(RuntimeError):
    """Raised between batches when the caller's ``should_stop`` says so; the last checkpoint stays valid."""


class TrainingDiverged(RuntimeError):
    """Raised when a batch's loss is not finite: the weights are ruined, so nothing more is trained or saved."""


@dataclass
class _Session:
    """What a run trains with, built once: the model (and its DDP wrapper), optimizer, scheduler and teacher."""

    config: TrainConfig
    model_config: ModelConfig
    model: nn.Module
    optimizer: torch.optim.Optimizer
    plateau: torch.optim.lr_scheduler.ReduceLROnPlateau
    teacher: TeacherTargets | None
    device: torch.device
    memory_format: torch.memory_format
    rank: int = 0
    world: int = 1
    ema: AveragedModel | None = None  # the weights' moving average when ``config.ema_decay`` is set
    log_prior: torch.Tensor | None = None  # log class frequencies of the training set, with ``config.logit_adjust``
    anchor: list[tuple[nn.Parameter, torch.Tensor]] | None = None  # (weight, its initial value), with anchor_weight
    trained_model: nn.Module = field(init=False)  # the model, or its DistributedDataParallel wrapper

    def __post_init__(self) -> None:
        self.trained_model = self.model

    @property
    def selected_model(self) -> nn.Module:
        """What is validated and saved: the moving average when kept, else the trained weights."""
        return self.ema.module if self.ema is not None else self.model


@dataclass
class _Progress:
    """Where a run stands: the next epoch, the best monitored accuracy so far and the per-epoch records."""

    start_epoch: int = 0
    best_accuracy: float = -math.inf  # without validation faces the monitored "accuracy" is -train_loss
    history: list[dict] = field(default_factory=list)


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
    config, saved = open_run(config, resume)
    if is_main:
        write_settings(run_dir, config)
    torch.set_num_threads(config.threads or max((os.cpu_count() or 1) // world, 1))
    _seed_everything(config.seed)
    device = _device(config, rank)
    train, val = _load_data(config, train_set, val_set, log)
    photos = _load_photos(config, log)
    session = _build_session(config, train, run_dir, device, rank, world, fresh=saved is None)
    progress = _restore(session, saved, log, run_dir)
    _wrap_distributed(session)
    for epoch in range(progress.start_epoch, config.epochs):
        record = _train_epoch(session, train, epoch, should_stop)
        _end_epoch(session, progress, record, (val, photos), epoch, run_dir if is_main else None)
        log(_epoch_line(record, config))
        if on_epoch is not None:
            on_epoch(record)
    _finish(session, progress, log)
    return run_dir / BEST_DIR


def distributed_context() -> tuple[int, int]:
    """(rank, world size); starts the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def _load_data(
    config: TrainConfig, train_set: Dataset | None, val_set: Dataset | None, log: Callable[[str], None]
) -> tuple[Dataset, Dataset | None]:
    """The training and validation faces: the caller's, else read from the run's folders."""
    started = time.time()
    train = train_set or load_dataset(
        config.train_data, config.labels, config.target_mode, config.max_train_samples, config.seed
    )
    if val_set is not None:
        val = val_set
    else:
        val = load_dataset(config.val_data, config.labels, "majority") if config.val_data else None
    log(f"loaded {len(train)} training and {len(val) if val else 0} validation faces in {time.time() - started:.1f}s")
    if len(train) == 0:
        raise ValueError(f"no training images found in {config.train_data} for labels {config.labels}")
    return train, val


def _load_photos(config: TrainConfig, log: Callable[[str], None]) -> PhotoSet | None:
    """``config.photo_val``'s faces, found and aligned once for the whole run."""
    if not config.photo_val:
        return None
    started = time.time()
    photos = load_photo_set(config.photo_val, config.labels)
    log(f"found {len(photos.images)} faces in {photos.photos} validation photos in {time.time() - started:.1f}s")
    return photos


def _build_session(
    config: TrainConfig, train: Dataset, run_dir: Path, device: torch.device, rank: int, world: int, fresh: bool
) -> _Session:
    """The model (from ``init_from`` on a fresh run), SGD with ReduceLROnPlateau, and the teacher if distilling."""
    model_config = config.model_config()
    model = model_config.build_model()
    if config.init_from and fresh:
        _load_initial_weights(model, config)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(device=device, memory_format=memory_format)
    _freeze_all_but(model, config.train_only)
    optimizer = torch.optim.SGD(
        [parameter for parameter in model.parameters() if parameter.requires_grad],
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=config.plateau_factor, patience=config.plateau_patience
    )
    teacher = None
    if config.teacher:
        teacher = TeacherTargets(config, train, run_dir, save_cache=rank == 0, progress=_PROGRESS)
    ema = None
    if config.ema_decay is not None:  # not resumed: a resumed run restarts the average from its weights
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
    log_prior = _log_prior(train).to(device) if config.logit_adjust else None
    return _Session(
        config,
        model_config,
        model,
        optimizer,
        plateau,
        teacher,
        device,
        memory_format,
        rank,
        world,
        ema=ema,
        log_prior=log_prior,
        anchor=_anchor(model) if config.anchor_weight else None,
    )


def _anchor(model: nn.Module) -> list[tuple[nn.Parameter, torch.Tensor]]:
    """The trained weights beside a frozen copy of their starting values (L2-SP's anchor, Li et al. 2018)."""
    return [(parameter, parameter.detach().clone()) for parameter in model.parameters() if parameter.requires_grad]


def _anchor_penalty(anchor: list[tuple[nn.Parameter, torch.Tensor]], weight: float) -> torch.Tensor:
    """``weight / 2`` times the squared distance of the weights from where they started."""
    return 0.5 * weight * sum((parameter - start).pow(2).sum() for parameter, start in anchor)


def _frozen_children(model: nn.Module, train_only: list[str] | None) -> list[nn.Module]:
    """The top-level modules outside ``train_only`` (none when it is unset); an unknown name is a plain error."""
    if not train_only:
        return []
    children = dict(model.named_children())
    unknown = sorted(set(train_only) - set(children))
    if unknown:
        raise ValueError(f"train_only names {unknown}, which the model does not have (it has {sorted(children)})")
    return [module for name, module in children.items() if name not in train_only]


def _freeze_all_but(model: nn.Module, train_only: list[str] | None) -> None:
    """Keep every top-level module outside ``train_only`` as it is: no gradient (batch-norm: see _set_train_mode)."""
    for module in _frozen_children(model, train_only):
        module.requires_grad_(False)


def _set_train_mode(model: nn.Module, train_only: list[str] | None) -> None:
    """Train mode for the trained modules only, so frozen ones keep their batch-norm statistics."""
    model.train()
    for module in _frozen_children(model, train_only):
        module.eval()


def _log_prior(train: Dataset) -> torch.Tensor:
    """Log of each class's share of the training targets (vote shares summed), floored so no class is -inf."""
    return torch.log(train.class_shares().clamp(min=1e-4))


def _restore(session: _Session, saved: dict | None, log: Callable[[str], None], run_dir: Path) -> _Progress:
    """Load a resumed run's model, optimizer, scheduler and RNG state; a fresh run starts at epoch 0."""
    if saved is None:
        return _Progress()
    session.model.load_state_dict(saved["model"])
    session.optimizer.load_state_dict(saved["optimizer"])
    session.plateau.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["torch_rng"])
    progress = _Progress(saved["epoch"] + 1, saved["best_accuracy"], saved["history"])
    log(f"resumed {run_dir} at epoch {progress.start_epoch + 1}")
    return progress


def _wrap_distributed(session: _Session) -> None:
    if session.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        device = session.device
        device_ids = [device.index] if device.type == "cuda" else None
        session.trained_model = DistributedDataParallel(session.model, device_ids=device_ids)


def _train_epoch(
    session: _Session, train: Dataset, epoch: int, should_stop: Callable[[], bool] | None
) -> dict[str, Any]:
    """One pass over the shuffled training set (this rank's share of each batch); returns the epoch's record."""
    config = session.config
    targets = train.soft_targets if config.target_mode == "distribution" else train.label_indices
    steps = math.ceil(len(train) / config.batch_size)
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    order = torch.randperm(len(train), generator=generator)
    _set_train_mode(session.model, config.train_only)
    sums: dict[str, float] = {}
    epoch_start = time.time()
    desc = f"epoch {epoch + 1}/{config.epochs}"
    bar = tqdm(range(steps), desc=desc, leave=False, mininterval=5, disable=not _PROGRESS or session.rank != 0)
    for step in bar:
        if should_stop is not None and should_stop():
            raise TrainingCancelled(f"stopped during epoch {epoch + 1}")
        lr = _lr_at(config, epoch, step, steps)
        if lr is not None:
            for group in session.optimizer.param_groups:
                group["lr"] = lr
        indices = order[step * config.batch_size : (step + 1) * config.batch_size][session.rank :: session.world]
        if len(indices) == 0:
            continue
        for key, value in _train_step(session, train, targets, indices, generator).items():
            sums[key] = sums.get(key, 0.0) + value
        bar.set_postfix(loss=f"{sums['loss'] / (step + 1):.3f}")
    train_seconds = time.time() - epoch_start
    return {
        "epoch": epoch + 1,
        "lr": session.optimizer.param_groups[0]["lr"],
        **{f"train_{key}": value / steps for key, value in sums.items()},
        "train_seconds": round(train_seconds, 3),
        "images_per_second": round(len(train) / train_seconds, 1),
    }


def _train_step(
    session: _Session, train: Dataset, targets: torch.Tensor, indices: torch.Tensor, generator: torch.Generator
) -> dict[str, float]:
    """Forward, loss (its parts when distilling), backward and SGD step on one batch; returns the loss parts."""
    config = session.config
    if config.augment:
        batch = augment_batch(
            train.images[indices], config.input_size, INPUT_MEAN, INPUT_STD, generator, photo=config.photo_augment
        )
    else:
        batch = preprocess_batch(train.images[indices], config.input_size, INPUT_MEAN, INPUT_STD)
    batch_targets = _smoothed(targets[indices], config)
    if config.mixup > 0 and session.teacher is None:  # a teacher's answers are per face, so they are not blended
        batch, batch_targets = _mixup(batch, batch_targets, config.mixup, generator)
    batch = batch.to(session.device).contiguous(memory_format=session.memory_format)
    batch_targets = batch_targets.to(session.device)
    logits = session.trained_model(batch)
    if session.log_prior is not None:  # logit adjustment: the raw logits learn the class-balanced posterior
        logits = logits + config.logit_adjust * session.log_prior
    if session.teacher is not None:
        teacher_logits = session.teacher(indices, batch).to(session.device)
        parts = distillation_loss(logits, teacher_logits, batch_targets, config.temperature, config.alpha)
    else:
        parts = {"loss": hard_loss(logits, batch_targets)}
    if session.anchor is not None:  # L2-SP: stay near the starting weights, which hold what the model knew
        parts["anchor"] = _anchor_penalty(session.anchor, config.anchor_weight)
        parts["loss"] = parts["loss"] + parts["anchor"]
    if not torch.isfinite(parts["loss"]):
        raise TrainingDiverged(
            "training diverged (the loss is not a number): lower the learning rate, e.g. TSNET_RETRAIN_LR=0.002"
        )
    session.optimizer.zero_grad(set_to_none=True)
    parts["loss"].backward()
    session.optimizer.step()
    if session.ema is not None:
        session.ema.update_parameters(session.model)
    return {key: float(value.detach()) for key, value in parts.items()}


def _end_epoch(
    session: _Session,
    progress: _Progress,
    record: dict,
    validation: tuple[Dataset | None, PhotoSet | None],
    epoch: int,
    run_dir: Path | None,
) -> None:
    """Validate, step the plateau schedule, and (``run_dir`` given: rank 0) log the record and checkpoint.

    The best epoch is the one with the highest validation accuracy; with validation photos too, the highest mean
    of the two accuracies (what a model is for: FER+ faces and real photos)."""
    config = session.config
    val, photos = validation
    session.model.eval()
    selected = session.selected_model.eval()
    classifier = Classifier(selected, session.model_config)
    if val is not None and len(val):
        metrics = evaluate_dataset(classifier, val)
        record.update(
            val_accuracy=metrics["accuracy"],
            val_macro_recall=metrics["macro_recall"],
            val_loss=metrics["loss"],
            val_per_class=metrics["per_class_accuracy"],
        )
        monitored_loss, accuracy = metrics["loss"], metrics["accuracy"]
    else:  # no validation faces: select on the training loss
        monitored_loss, accuracy = record["train_loss"], -record["train_loss"]
    if photos is not None:
        photo_metrics = evaluate_photos(classifier, photos)
        record.update(
            photo_accuracy=photo_metrics["accuracy"],
            photo_macro_recall=photo_metrics["macro_recall"],
            photo_per_class=photo_metrics["per_class_accuracy"],
        )
        accuracy = (accuracy + photo_metrics["accuracy"]) / 2 if "val_accuracy" in record else photo_metrics["accuracy"]
        record["selection_score"] = accuracy
    if config.schedule == "plateau" and epoch + 1 >= config.warmup_epochs:
        session.plateau.step(monitored_loss)
    progress.history.append(record)
    improved = accuracy > progress.best_accuracy
    progress.best_accuracy = max(progress.best_accuracy, accuracy)
    if run_dir is not None:
        append_record(run_dir, record)
        if improved:
            save_best(run_dir, config, selected, epoch, record)
        save_checkpoint(
            run_dir,
            config,
            session.model,
            session.optimizer,
            session.plateau,
            epoch,
            progress.best_accuracy,
            progress.history,
        )


def _epoch_line(record: dict, config: TrainConfig) -> str:
    validation = ""
    if "val_accuracy" in record:
        validation = f" val_acc {record['val_accuracy']:.4f} val_recall {record['val_macro_recall']:.4f}"
    if "photo_accuracy" in record:
        validation += f" photo_acc {record['photo_accuracy']:.4f} photo_recall {record['photo_macro_recall']:.4f}"
    return (
        f"epoch {record['epoch']}/{config.epochs} loss {record['train_loss']:.4f}{validation}"
        f" {record['images_per_second']:.0f} img/s"
    )


def _finish(session: _Session, progress: _Progress, log: Callable[[str], None]) -> None:
    """Wait for every rank, then report the best accuracy and the model's size and cost."""
    if session.world > 1:
        import torch.distributed as dist

        dist.barrier()
    config = session.config
    flops = count_flops(session.model.cpu(), (1, 1, config.input_size, config.input_size))
    log(
        f"done: best validation accuracy {progress.best_accuracy:.4f}; {count_parameters(session.model)} parameters,"
        f" {flops / 1e6:.1f} MFLOPs"
    )


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _device(config: TrainConfig, rank: int) -> torch.device:
    if config.device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", rank % torch.cuda.device_count())
        return torch.device("cpu")
    return torch.device(config.device)


def _load_initial_weights(model: nn.Module, config: TrainConfig) -> None:
    source, source_config = load_weights(DataLayout.from_env().resolve_model(config.init_from))
    if source_config.architecture != config.architecture or list(source_config.labels) != list(config.labels):
        raise ValueError(
            f"--init-from {config.init_from} is a {source_config.architecture} over {source_config.labels};"
            f" this run trains a {config.architecture} over {config.labels}"
        )
    model.load_state_dict(source.state_dict())


def _lr_at(config: TrainConfig, epoch: int, step: int, steps: int) -> float | None:
    """Learning rate for warmup / cosine schedules (None: leave it to ReduceLROnPlateau)."""
    progress = epoch + step / max(steps, 1)
    if config.warmup_epochs and progress < config.warmup_epochs:
        return config.lr * (progress + 1e-3) / config.warmup_epochs
    if config.schedule == "cosine":
        span = max(config.epochs - config.warmup_epochs, 1)
        return 0.5 * config.lr * (1 + math.cos(math.pi * min((progress - config.warmup_epochs) / span, 1.0)))
    return None


def _mixup(
    batch: torch.Tensor, targets: torch.Tensor, alpha: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup (Zhang et al.): each face blended with another of the batch, targets likewise; the weight ~ Beta."""
    gamma = torch.distributions.Gamma(torch.tensor([alpha, alpha]), torch.tensor(1.0))
    first, second = gamma.sample()
    weight = float(first / (first + second))
    partner = torch.randperm(len(batch), generator=generator)
    return weight * batch + (1 - weight) * batch[partner], weight * targets + (1 - weight) * targets[partner]


def _smoothed(batch_targets: torch.Tensor, config: TrainConfig) -> torch.Tensor:
    if not config.label_smoothing:
        return batch_targets
    classes = len(config.labels)
    hard = batch_targets if batch_targets.dim() == 2 else nn.functional.one_hot(batch_targets, classes).float()
    return hard * (1 - config.label_smoothing) + config.label_smoothing / classes


def _silent(message: str) -> None:
    """Log sink of the non-zero ranks of a distributed run: one process speaks for all."""
