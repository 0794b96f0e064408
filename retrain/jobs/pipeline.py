"""The retrain job, stage by stage: data -> fine-tune teacher -> distill student -> evaluate -> decide ->
register -> publish. Under torchrun every rank trains (DistributedDataParallel); rank 0 alone writes.

Crash safety: the job reads the store, trains in its own ``jobs/<id>/work`` folder and builds the new version in
a staging folder that enters the registry by one rename; the served model switches by one symlink replace.
Killing it at any point therefore leaves the database, the registry and the served model as they were.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.classifier import Classifier
from core.distillation import DEFAULT_ALPHA, DEFAULT_TEMPERATURE
from core.weights import CONFIG_NAME, ModelConfig, load_weights, read_config
from labeling import AnnotationStore

from .._files import write_json_atomically
from ..hub.version_push import card_metrics, push_pending
from ..registry import ModelRegistry
from ..registry.model_card import write_model_card
from ..settings import RetrainSettings
from ..training import Dataset, TrainConfig, TrainingCancelled, distributed_context, run_training
from . import promotion
from .datasets import benchmark_set, concat, replay_sample, store_split
from .state import JobCancelled, JobHandle

__all__ = ["run_retrain", "distributed_context"]

Log = Callable[[str], None]


def _stop_check(handle: JobHandle, world: int) -> Callable[[], bool]:
    """Cancel flag check; under DDP the ranks agree (all-reduce) so they stop at the same batch, not deadlock."""
    if world <= 1:
        return handle.cancel_requested
    import torch
    import torch.distributed as dist

    def should_stop() -> bool:
        flag = torch.tensor([1.0 if handle.cancel_requested() else 0.0])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item() > 0)

    return should_stop


def _train_config(
    source: ModelConfig, source_dir: Path, out: Path, settings: RetrainSettings, epochs: int, lr: float
) -> TrainConfig:
    kwargs = source.model_kwargs
    return TrainConfig(
        architecture=source.architecture,
        train_data="",
        out=str(out),
        labels=list(source.labels),
        epochs=epochs,
        batch_size=settings.batch_size,
        lr=lr,
        schedule="cosine",
        input_size=source.input_size,
        stem=kwargs.get("stem", "imagenet"),
        dropout=kwargs.get("dropout", 0.5),
        init_from=str(source_dir),
        seed=settings.seed,
        threads=settings.threads,
        flip_tta=bool(source.training.get("flip_tta", False)),
        device="cpu",
    )


def _stage(handle: JobHandle | None, log: Log, stage: str, message: str, check_cancel: bool = True) -> None:
    """Record the stage; between stages a single process honours cancel (under DDP only in-batch, all ranks agree)."""
    if handle is not None:
        if check_cancel and handle.cancel_requested():
            raise JobCancelled(f"cancelled before {stage}")
        handle.event(stage, None, message=message)
    log(message)


def run_retrain(
    settings: RetrainSettings,
    store: AnnotationStore,
    handle: JobHandle,
    *,
    epochs: int | None = None,
    push_repo: str | None = None,
    log: Log = print,
    rank: int = 0,
    world: int = 1,
) -> dict[str, Any]:
    """Run the job; returns the result fields of the job state (rank 0) or {} (other ranks)."""
    is_main = rank == 0
    main_handle = handle if is_main else None
    epochs = epochs or settings.epochs
    registry = ModelRegistry(settings.home, {"student": settings.base_student, "teacher": settings.base_teacher})
    parent = registry.current()
    sources = {name: registry.weights_folder(parent, name) for name in ("student", "teacher")}
    for name, folder in sources.items():
        if not (folder / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"no current {name} weights at {folder} (version {parent})")
    student_cfg, teacher_cfg = read_config(sources["student"]), read_config(sources["teacher"])
    labels = list(student_cfg.labels)
    if list(teacher_cfg.labels) != labels:
        raise ValueError(f"teacher labels {teacher_cfg.labels} differ from the student's {labels}")

    _stage(main_handle, log, "prepare", f"loading data (current version {parent})", world == 1)
    train_new, train_ids = store_split(store, "train", labels)
    if not len(train_new):
        raise ValueError(f"{store.path} has no labelled training faces yet: label some images first")
    val_set, val_ids = store_split(store, "validation", labels)
    test_set, test_ids = store_split(store, "test", labels)
    replay_folder = settings.resolved_replay()
    replay_names: list[str] = []
    train = train_new
    if replay_folder is not None and settings.replay_size > 0:
        replay, replay_names = replay_sample(replay_folder, labels, settings.replay_size, settings.seed)
        train = concat(train_new, replay)
    snapshot = {
        "store": str(store.path),
        "splits": {"train": train_ids, "validation": val_ids, "test": test_ids},
        "replay": {"folder": str(replay_folder) if replay_folder else None, "files": replay_names},
    }
    log(
        f"{len(train_new)} store faces + {len(replay_names)} replay faces;"
        f" {len(val_set)} validation, {len(test_set)} test"
    )

    should_stop = _stop_check(handle, world)
    work = handle.work_dir
    curves: dict[str, list[dict]] = {"teacher": [], "student": []}

    def train_stage(stage: str, config: TrainConfig) -> Path:
        """One training stage with its epochs recorded as curves and job events."""

        def record(metrics: dict) -> None:
            curves[stage].append(metrics)
            if main_handle is not None:
                main_handle.event(stage, metrics["epoch"], epochs=epochs, metrics=metrics)

        return run_training(config, log=log, train_set=train, val_set=val, on_epoch=record, should_stop=should_stop)

    val = val_set if len(val_set) else None
    try:
        _stage(main_handle, log, "teacher", f"fine-tuning the teacher for {epochs} epoch(s)", world == 1)
        teacher_config = _train_config(
            teacher_cfg, sources["teacher"], work / "teacher", settings, epochs, settings.teacher_lr
        )
        teacher_best = train_stage("teacher", teacher_config)
        _stage(main_handle, log, "student", f"distilling the student for {epochs} epoch(s)", world == 1)
        student_config = _train_config(
            student_cfg, sources["student"], work / "student", settings, epochs, settings.student_lr
        )
        student_config.teacher = str(teacher_best)
        student_config.teacher_cache = True
        student_config.temperature = settings.temperature or student_cfg.training.get(
            "temperature", DEFAULT_TEMPERATURE
        )
        student_config.alpha = (
            settings.alpha if settings.alpha is not None else student_cfg.training.get("alpha", DEFAULT_ALPHA)
        )
        student_best = train_stage("student", student_config)
    except TrainingCancelled as error:
        raise JobCancelled(str(error)) from error
    if not is_main:
        return {}

    _stage(main_handle, log, "evaluate", "evaluating candidate and current student")
    sets: dict[str, Dataset] = {}
    if len(test_set):
        sets[promotion.STORE_TEST] = test_set
    benchmark_folder = settings.resolved_benchmark()
    if benchmark_folder is not None:
        sets[promotion.BASE_BENCHMARK] = benchmark_set(benchmark_folder, labels)
    candidate = Classifier(*load_weights(student_best), source=str(student_best))
    current = Classifier(*load_weights(sources["student"]), source=str(sources["student"]))
    candidate_evals = {name: promotion.evaluate(candidate, data) for name, data in sets.items()}
    current_evals = {name: promotion.evaluate(current, data) for name, data in sets.items()}
    comparison = promotion.compare(candidate_evals, current_evals, settings.rules)
    promote, reasons = promotion.decide(comparison)
    handle.update(comparison=comparison, decision=reasons)
    handle.event("evaluate", None, comparison=comparison, decision=reasons)
    for reason in reasons:
        log(reason)

    _stage(main_handle, log, "register", "registering the candidate")
    staging = registry.staging_dir(handle.id)
    metrics = {
        "evaluations": candidate_evals,
        "current_evaluations": current_evals,
        "comparison": comparison,
        "training_curves": curves,
    }
    _copy_weights(teacher_best, staging / "teacher")
    _copy_weights(student_best, staging / "student")
    record = {
        "parent": parent,
        "job": handle.id,
        "snapshot": snapshot,
        "decision": {"promote": promote, "reasons": reasons},
        "settings": {"epochs": epochs, "replay_size": len(replay_names), "rules": asdict(settings.rules)},
    }

    def prepare(folder: Path, version: str) -> None:
        _stamp_version(folder / "teacher", version, {})
        _stamp_version(folder / "student", version, metrics)
        write_model_card(
            folder / "student", metrics=card_metrics(metrics), description=f"T-SNet Studio student {version}."
        )

    version = registry.register(staging, record, metrics, prepare)
    if promote:
        registry.promote(version)
        log(f"promoted {version}; it is now served")
    else:
        log(f"registered {version} without promoting it")
    result: dict[str, Any] = {"version": version, "promoted": promote, "comparison": comparison, "decision": reasons}
    handle.update(**result)

    repo = push_repo or settings.push_repo
    push_outcome = None
    if repo or any(registry.record(v).get("pushed") == "pending push" for v in registry.versions()):
        _stage(main_handle, log, "publish", "publishing to the Hugging Face Hub", check_cancel=False)
        if promote and repo:
            registry.update_record(version, pushed="pending push", push_repo=repo)
        for pushed_version, outcome in push_pending(registry, settings):
            log(f"{pushed_version}: {outcome}")
            if pushed_version == version or push_outcome is None:
                push_outcome = outcome
    result["push"] = push_outcome
    shutil.rmtree(work, ignore_errors=True)
    return result


def _copy_weights(source: Path, destination: Path) -> None:
    destination.mkdir(parents=True)
    for name in (CONFIG_NAME, "model.safetensors"):
        shutil.copy2(source / name, destination / name)


def _stamp_version(folder: Path, version: str, metrics: dict[str, Any]) -> None:
    """Record the version (``Classifier.version`` reads it) and the headline metrics in config.json."""

    def edit(config: ModelConfig) -> None:
        config.training["version"] = version
        config.metrics.update(card_metrics(metrics))

    _edit_config(folder, edit)


def _edit_config(folder: Path, edit: Callable[[ModelConfig], None]) -> None:
    config = read_config(folder)
    edit(config)
    write_json_atomically(folder / CONFIG_NAME, json.loads(json.dumps(asdict(config))))
    os.chmod(folder / CONFIG_NAME, 0o644)
