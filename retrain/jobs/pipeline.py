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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from core.classifier import Classifier
from core.data import faces_at
from core.data.tensors import SHARP_SIZE
from core.distillation import DEFAULT_ALPHA, DEFAULT_TEMPERATURE
from core.weights import CONFIG_NAME, ModelConfig, load_weights, read_config
from labeling import AnnotationStore

from .._files import write_json_atomically
from ..hub.version_push import PENDING, card_metrics, push_pending
from ..registry import ModelRegistry
from ..registry.model_card import write_model_card
from ..settings import RetrainSettings
from ..training import Dataset, TrainConfig, TrainingCancelled, distributed_context, run_training
from ..training.face_head import FACE_HEAD_ARCHITECTURE, FACE_HEAD_INPUT
from ..training.feature_replay import FeatureStatistics, statistics_for
from . import promotion
from .datasets import (
    benchmark_set,
    concat,
    probe_sample,
    replay_sample,
    store_split,
    stored_face_side,
    with_model_targets,
)
from .face_head_stage import train_face_head
from .shrink import ShrinkProbe, ShrinkResult, shrink_toward
from .state import JobCancelled, JobHandle

__all__ = ["run_retrain", "distributed_context"]

Log = Callable[[str], None]
FACE_HEAD_STAGE = "face-head"  # TSNET_RETRAIN_STAGES: the student gains a head on dlib's face features


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
    source: ModelConfig, source_dir: Path, out: Path, settings: RetrainSettings, epochs: int, face_size: int
) -> TrainConfig:
    """A fine-tuning run of ``source`` on the job's faces (read at ``face_size``) with the recipe's schedule."""
    kwargs = source.model_kwargs
    return TrainConfig(
        architecture=source.architecture,
        train_data="",
        out=str(out),
        labels=list(source.labels),
        epochs=epochs,
        batch_size=settings.batch_size,
        lr=settings.student_lr,
        schedule="cosine",
        input_size=source.input_size,
        face_size=face_size,
        stem=kwargs.get("stem", "imagenet"),
        dropout=kwargs.get("dropout", 0.5),
        init_from=str(source_dir),
        seed=settings.seed,
        threads=settings.threads,
        flip_tta=bool(source.training.get("flip_tta", False)),
        device="cpu",
        target_mode="majority" if settings.replay_targets == "majority" else "distribution",
        ema_decay=settings.ema_decay,
        logit_adjust=settings.logit_adjust,
        photo_augment=settings.photo_augment,
        anchor_weight=settings.anchor_weight,
        mixup=settings.mixup,
    )


def _stage(handle: JobHandle | None, log: Log, stage: str, message: str, check_cancel: bool = True) -> None:
    """Record the stage; between stages a single process honours cancel (under DDP only in-batch, all ranks agree)."""
    if handle is not None:
        if check_cancel and handle.cancel_requested():
            raise JobCancelled(f"cancelled before {stage}")
        handle.event(stage, None, message=message)
    log(message)


@dataclass
class _Sources:
    """The version the job starts from: its registry, name, weights folders and configs."""

    registry: ModelRegistry
    parent: str
    folders: dict[str, Path]
    student: ModelConfig
    teacher: ModelConfig
    feature_statistics: FeatureStatistics | None = None  # without replay faces: the shipped ones, if they fit

    @property
    def labels(self) -> list[str]:
        return list(self.student.labels)


@dataclass
class _JobData:
    """What the job trains and judges on, what it recorded of it, and what it had to do without."""

    train: Dataset
    validation: Dataset
    test: Dataset
    test_groups: list[str]
    snapshot: dict[str, Any]
    replay_faces: int
    face_size: int  # the side the candidate reads photo faces at (see _face_size)
    warnings: list[str] = field(default_factory=list)
    store_train: Dataset | None = None  # the store's training faces alone, once (the face head's fit)
    replay: Dataset | None = None  # the replay sample alone, at its own side


NO_REPLAY_WARNING = (
    "no replay data: the job could not rehearse FER+ faces, so it guarded against forgetting by distilling from the"
    " current model on your own images; set TSNET_REPLAY_DATA to a FER+ FER2013Train folder"
)
FEATURE_REPLAY_WARNING = (
    "no replay data: the job could not rehearse FER+ faces, so it kept the face head silent on the FER+ feature"
    " statistics shipped with the student instead (no faces, a weaker guard); set TSNET_REPLAY_DATA to a FER+"
    " FER2013Train folder"
)
NO_GUARD_WARNING = (
    "no replay data: the job could not rehearse FER+ faces, and the shipped FER+ feature statistics do not describe"
    " this version's student, so nothing kept the face head from forgetting what the student knew; set"
    " TSNET_REPLAY_DATA to a FER+ FER2013Train folder"
)
NO_BENCHMARK_WARNING = (
    "benchmark not run: no benchmark data, so forgetting of what the model knew was not measured; set"
    " TSNET_BENCHMARK_DATA to a FER+ FER2013Valid folder"
)


def _replay_at_hand(settings: RetrainSettings) -> bool:
    return settings.resolved_replay() is not None and settings.replay_size > 0


def _sources(settings: RetrainSettings) -> _Sources:
    registry = ModelRegistry.from_settings(settings)
    parent = registry.current()
    folders = {name: registry.weights_folder(parent, name) for name in ("student", "teacher")}
    for name, folder in folders.items():
        if not (folder / CONFIG_NAME).is_file():
            raise FileNotFoundError(f"no current {name} weights at {folder} (version {parent})")
    sources = _Sources(
        registry,
        parent,
        folders,
        read_config(folders["student"]),
        read_config(folders["teacher"]),
        None if _replay_at_hand(settings) else statistics_for(folders["student"]),  # only read when needed
    )
    if list(sources.teacher.labels) != sources.labels:
        raise ValueError(f"teacher labels {sources.teacher.labels} differ from the student's {sources.labels}")
    return sources


def _resolved_stages(settings: RetrainSettings, sources: _Sources, log: Log | None) -> RetrainSettings:
    """``auto``: the face head when FER+ replay faces, or else the FER+ feature statistics shipped with the student,
    can keep it silent on what the student knew (or the current version already has one); else the student
    fine-tune, which guards itself on the user's own images."""
    if settings.stages != "auto":
        return settings
    has_head = sources.student.architecture == FACE_HEAD_ARCHITECTURE
    replay = _replay_at_hand(settings)
    statistics = sources.feature_statistics is not None
    stages = FACE_HEAD_STAGE if replay or has_head or statistics else "student"
    if log is not None:
        why = (
            "FER+ replay faces at hand"
            if replay
            else "no FER+ replay faces: the FER+ feature statistics shipped with the student stand in"
            if statistics
            else ("the current version has one" if has_head else "no replay")
        )
        log(f"recipe: {stages} ({why}; TSNET_RETRAIN_STAGES chooses)")
    return replace(settings, stages=stages)


def _face_size(settings: RetrainSettings, current: ModelConfig, stored_side: int) -> int:
    """The side the candidate reads photo faces at: its input size when the store keeps them at least that sharp
    (photo faces are kept at 96 px), else the current model's (FER+'s 48 px for the shipped student)."""
    if settings.stages == FACE_HEAD_STAGE:
        return FACE_HEAD_INPUT
    if settings.sharp_faces and stored_side >= current.input_size:
        return max(current.input_size, current.face_size)
    return current.face_size


def _job_data(
    store: AnnotationStore,
    labels: list[str],
    settings: RetrainSettings,
    log: Log,
    current_student: Classifier,
    feature_replay: bool = False,
) -> _JobData:
    """The store's splits, the user's faces repeated ``store_repeat`` times, and the replay sample when there is one."""
    stored_side = stored_face_side(store, "train")
    face_size = _face_size(settings, current_student.config, stored_side)
    train_new = store_split(store, "train", labels, face_size)
    if not len(train_new.data):
        raise ValueError(f"{store.path} has no labelled training faces yet: label some images first")
    # Judged as kept when the candidate reads sharper faces: each model reduces them to its own face_size.
    judge_size = min(SHARP_SIZE, stored_side) if face_size > current_student.config.face_size else face_size
    validation, test = (store_split(store, split, labels, judge_size) for split in ("validation", "test"))
    replay_folder = settings.resolved_replay()
    replay_names: list[str] = []
    fine_tune = settings.stages != FACE_HEAD_STAGE  # the face head fits store and replay faces apart, read once
    train = concat(*[train_new.data] * max(settings.store_repeat, 1)) if fine_tune else train_new.data
    warnings = []
    replay = None
    if _replay_at_hand(settings):
        replay, replay_names = replay_sample(
            replay_folder, labels, settings.replay_size, settings.seed, settings.replay_targets
        )
        if settings.replay_targets == "model":
            replay = with_model_targets(replay, current_student)
        train = concat(train, replay) if fine_tune else train
    elif not fine_tune:
        warnings.append(FEATURE_REPLAY_WARNING if feature_replay else NO_GUARD_WARNING)
    else:
        warnings.append(NO_REPLAY_WARNING)
    if settings.resolved_benchmark() is None:
        warnings.append(NO_BENCHMARK_WARNING)
    snapshot = {
        "store": str(store.path),
        "splits": {"train": train_new.ids, "validation": validation.ids, "test": test.ids},
        "replay": {"folder": str(replay_folder) if replay_folder else None, "files": replay_names},
    }
    log(
        f"{len(train_new.data)} store faces (x{max(settings.store_repeat, 1)}, read at {face_size} px) +"
        f" {len(replay_names)} replay faces; {len(validation.data)} validation, {len(test.data)} test"
    )
    for warning in warnings:
        log(f"warning: {warning}")
    return _JobData(
        train,
        validation.data,
        test.data,
        test.groups,
        snapshot,
        len(replay_names),
        face_size,
        warnings,
        store_train=train_new.data,
        replay=replay,
    )


def _student_config(
    sources: _Sources,
    settings: RetrainSettings,
    work: Path,
    epochs: int,
    face_size: int,
    teacher: Path | None,
    guard: bool,
) -> TrainConfig:
    """The student's run: the recipe's schedule, distilled from ``teacher`` when one was fine-tuned, or from the
    current student itself (learning without forgetting) when ``guard`` stands in for missing replay data."""
    config = _train_config(sources.student, sources.folders["student"], work / "student", settings, epochs, face_size)
    config.lr = settings.student_lr
    config.train_only = [name.strip() for name in settings.trainable.split(",") if name.strip()] or None
    if teacher is not None or guard:
        config.teacher = str(teacher if teacher is not None else sources.folders["student"])
        config.teacher_cache = True
        config.temperature = settings.temperature or sources.student.training.get("temperature", DEFAULT_TEMPERATURE)
        default_alpha = sources.student.training.get("alpha", DEFAULT_ALPHA) if teacher is not None else None
        config.alpha = settings.alpha if settings.alpha is not None else (default_alpha or settings.guard_alpha)
    return config


def _train_models(
    sources: _Sources,
    data: _JobData,
    settings: RetrainSettings,
    handle: JobHandle,
    epochs: int,
    log: Log,
    distributed: tuple[int, int],
    shrink_probe: ShrinkProbe | None = None,
) -> tuple[Path, Path, dict[str, list[dict]], ShrinkResult | None]:
    """The recipe's training stages; returns the teacher and student weights folders, the curves, and the shrink's
    result when a stage already shrank its candidate against ``shrink_probe`` (the face head does)."""
    rank, world = distributed
    main_handle = handle if rank == 0 else None
    should_stop = _stop_check(handle, world)
    curves: dict[str, list[dict]] = {"teacher": [], "student": []}
    # The loop scores the validation faces as the candidate will read them.
    validation = (
        replace(data.validation, images=faces_at(data.validation.images, data.face_size))
        if len(data.validation)
        else None
    )

    def train_stage(stage: str, config: TrainConfig) -> Path:
        def record(metrics: dict) -> None:
            curves[stage].append(metrics)
            if main_handle is not None:
                main_handle.event(stage, metrics["epoch"], epochs=epochs, metrics=metrics)

        return run_training(
            config, log=log, train_set=data.train, val_set=validation, on_epoch=record, should_stop=should_stop
        )

    teacher = None
    if settings.stages == FACE_HEAD_STAGE:
        if rank != 0:  # the fit takes seconds on one process: the other ranks have nothing to do
            return sources.folders["teacher"], sources.folders["student"], curves, None
        _stage(main_handle, log, "student", "fitting a head on dlib's face features to the student", world == 1)
        student, record, shrunk = train_face_head(
            sources.folders["student"],
            data.store_train,
            data.replay,
            data.validation,
            handle.work_dir / "face-head",
            settings.seed,
            log,
            statistics=sources.feature_statistics,
            probe=shrink_probe,
        )
        curves["student"].append(record)
        return sources.folders["teacher"], student, curves, shrunk
    if sources.student.architecture == FACE_HEAD_ARCHITECTURE:
        raise ValueError(
            f"the current version {sources.parent} has a face-feature head: retrain it with"
            f" TSNET_RETRAIN_STAGES={FACE_HEAD_STAGE}, or roll back to a version without one"
        )
    try:
        if settings.stages == "teacher+student":
            _stage(main_handle, log, "teacher", f"fine-tuning the teacher for {epochs} epoch(s)", world == 1)
            work = handle.work_dir / "teacher"
            config = _train_config(sources.teacher, sources.folders["teacher"], work, settings, epochs, data.face_size)
            config.lr = settings.teacher_lr
            teacher = train_stage("teacher", config)
        _stage(main_handle, log, "student", f"training the student for {epochs} epoch(s)", world == 1)
        guard = data.replay_faces == 0
        config = _student_config(sources, settings, handle.work_dir, epochs, data.face_size, teacher, guard)
        student = train_stage("student", config)
    except TrainingCancelled as error:
        raise JobCancelled(str(error)) from error
    return teacher or sources.folders["teacher"], student, curves, None


def _benchmark(settings: RetrainSettings, labels: list[str]) -> Dataset | None:
    """The base benchmark's faces, read once for the shrink step and the promotion rule; None without one."""
    folder = settings.resolved_benchmark()
    return benchmark_set(folder, labels) if folder is not None else None


def _shrink_probe(sources: _Sources, benchmark: Dataset | None, settings: RetrainSettings) -> ShrinkProbe | None:
    """The faces a candidate is shrunk against (see :mod:`.shrink`): the benchmark, else FER+ training faces outside
    the replay sample; None when the job shrinks nothing."""
    if not settings.shrink:
        return None
    replay = settings.resolved_replay()
    tolerance = settings.rules.max_benchmark_drop
    if benchmark is not None:
        probe = ShrinkProbe(benchmark, "the benchmark", tolerance)
    elif replay is not None:
        faces = probe_sample(replay, sources.labels, settings.probe_size, settings.seed, settings.replay_size)
        probe = ShrinkProbe(faces, "FER+ training faces outside the replay sample", tolerance)
    else:
        return None
    return probe if len(probe.faces) else None


def _keep_what_it_knew(
    sources: _Sources,
    student: Path,
    probe: ShrinkProbe | None,
    handle: JobHandle,
    log: Log,
    shrunk: ShrinkResult | None = None,
) -> tuple[Path, dict[str, Any] | None]:
    """Shrink the candidate toward the current student until it holds on the probe faces (see :mod:`.shrink`),
    unless its stage already did (``shrunk``)."""
    if probe is None:
        return student, None
    checked = "the kept head was checked" if shrunk is not None else "checking what the candidate still knows"
    _stage(handle, log, "shrink", f"{checked} on {probe.source}")
    result = shrunk or shrink_toward(
        sources.folders["student"], student, probe.faces, probe.tolerance, handle.work_dir / "shrunk"
    )
    accuracies = ", ".join(f"{name} {100 * value:.2f}%" for name, value in result.probe_accuracy.items())
    log(
        f"probe ({probe.source}, {len(probe.faces)} faces): {accuracies}; kept {result.fraction:g} of the way to"
        " the candidate"
    )
    return result.folder, {
        "fraction": result.fraction,
        "probe": probe.source,
        "probe_faces": len(probe.faces),
        **result.probe_accuracy,
    }


def _judge(
    current: Classifier,
    data: _JobData,
    benchmark: Dataset | None,
    student: Path,
    settings: RetrainSettings,
    handle: JobHandle,
    log: Log,
) -> tuple[bool, list[str], dict[str, Any]]:
    """Candidate vs current student on the store's test split and the benchmark; the decision and the metrics."""
    _stage(handle, log, "evaluate", "evaluating candidate and current student")
    sets: dict[str, Dataset] = {}
    if len(data.test):
        sets[promotion.STORE_TEST] = data.test
    if benchmark is not None:
        sets[promotion.BASE_BENCHMARK] = benchmark
    candidate = Classifier(*load_weights(student), source=str(student))
    candidate_evals = {name: promotion.evaluate(candidate, data_set) for name, data_set in sets.items()}
    current_evals = {name: promotion.evaluate(current, data_set) for name, data_set in sets.items()}
    groups = {promotion.STORE_TEST: data.test_groups}
    comparison = promotion.compare(candidate_evals, current_evals, settings.rules, groups)
    promote, reasons = promotion.decide(comparison, data.warnings)
    handle.update(comparison=comparison, decision=reasons, warnings=data.warnings)
    handle.event("evaluate", None, comparison=comparison, decision=reasons)
    for reason in reasons:
        log(reason)
    metrics = {
        "evaluations": _without_correct(candidate_evals),
        "current_evaluations": _without_correct(current_evals),
        "comparison": comparison,
        "warnings": data.warnings,
    }
    return promote, reasons, metrics


def _without_correct(evaluations: dict[str, dict]) -> dict[str, dict]:
    """Metrics as recorded with a version: the per-face ``correct`` list was for the bootstrap only."""
    return {name: {k: v for k, v in row.items() if k != "correct"} for name, row in evaluations.items()}


def _register(
    sources: _Sources,
    data: _JobData,
    trained: tuple[Path, Path],
    decision: tuple[bool, list[str]],
    metrics: dict[str, Any],
    settings: RetrainSettings,
    handle: JobHandle,
    epochs: int,
    log: Log,
) -> str:
    """Stage the candidate, enter it in the registry and serve it when the rule promoted it."""
    _stage(handle, log, "register", "registering the candidate")
    promote, reasons = decision
    staging = sources.registry.staging_dir(handle.id)
    _copy_weights(trained[0], staging / "teacher")
    _copy_weights(trained[1], staging / "student")
    record = {
        "parent": sources.parent,
        "job": handle.id,
        "snapshot": data.snapshot,
        "decision": {"promote": promote, "reasons": reasons},
        "warnings": data.warnings,
        "settings": {
            "epochs": epochs,
            "replay_size": data.replay_faces,
            "stages": settings.stages,
            "rules": asdict(settings.rules),
        },
    }

    def prepare(folder: Path, version: str) -> None:
        _stamp_version(folder / "teacher", version, {})
        _stamp_version(folder / "student", version, metrics)
        description = f"T-SNet Studio student {version}."
        if data.warnings:
            description += "\n\n" + "\n".join(f"**Warning:** {warning}." for warning in data.warnings)
        write_model_card(folder / "student", metrics=card_metrics(metrics), description=description)

    version = sources.registry.register(staging, record, metrics, prepare)
    if promote:
        sources.registry.promote(version)
        log(f"promoted {version}; it is now served")
    else:
        log(f"registered {version} without promoting it")
    return version


def _publish(
    registry: ModelRegistry,
    version: str,
    promote: bool,
    repo: str | None,
    settings: RetrainSettings,
    handle: JobHandle,
    log: Log,
) -> str | None:
    """Push the promoted version (and any earlier one still pending) to the Hub; returns this version's outcome."""
    if not (repo or any(registry.record(v).get("pushed") == PENDING for v in registry.versions())):
        return None
    _stage(handle, log, "publish", "publishing to the Hugging Face Hub", check_cancel=False)
    if promote and repo:
        registry.update_record(version, pushed=PENDING, push_repo=repo)
    outcome = None
    for pushed_version, pushed in push_pending(registry, settings):
        log(f"{pushed_version}: {pushed}")
        if pushed_version == version or outcome is None:
            outcome = pushed
    return outcome


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
    epochs = epochs or settings.epochs
    sources = _sources(settings)
    settings = _resolved_stages(settings, sources, log if rank == 0 else None)
    _stage(
        handle if rank == 0 else None, log, "prepare", f"loading data (current version {sources.parent})", world == 1
    )
    current = Classifier(*load_weights(sources.folders["student"]), source=str(sources.folders["student"]))
    data = _job_data(store, sources.labels, settings, log, current, sources.feature_statistics is not None)
    # read before training: the face head's stage shrinks each of its candidates against the probe
    benchmark = _benchmark(settings, sources.labels) if rank == 0 else None
    probe = _shrink_probe(sources, benchmark, settings) if rank == 0 else None
    trained = _train_models(sources, data, settings, handle, epochs, log, (rank, world), probe)
    if rank != 0:
        return {}
    teacher, student, curves, shrunk = trained
    student, shrink = _keep_what_it_knew(sources, student, probe, handle, log, shrunk)
    promote, reasons, metrics = _judge(current, data, benchmark, student, settings, handle, log)
    metrics["training_curves"] = curves
    metrics["shrink"] = shrink
    version = _register(sources, data, (teacher, student), (promote, reasons), metrics, settings, handle, epochs, log)
    result: dict[str, Any] = {
        "version": version,
        "promoted": promote,
        "comparison": metrics["comparison"],
        "decision": reasons,
        "warnings": data.warnings,
        "shrink": shrink,
    }
    handle.update(**result)
    result["push"] = _publish(
        sources.registry, version, promote, push_repo or settings.push_repo, settings, handle, log
    )
    shutil.rmtree(handle.work_dir, ignore_errors=True)
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
