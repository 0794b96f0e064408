"""``tsnet retrain --bench``: time a whole retrain job on N "newly labelled" FER+ faces, with real models.

The N faces come from FER+ FER2013Train but outside the job's replay sample, are imported with their majority
label into a scratch store under a temporary TSNET_HOME, and the job then runs with the configured defaults, so the
figure is the one the app's users get: data loading, teacher fine-tune, distillation, evaluation on the store's test
split and on the base benchmark, and registration. The scratch home is removed afterwards.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from core.data import read_labelled_folder
from core.weights import read_config
from labeling import AnnotationStore

from ..layout import DataLayout
from ..registry import BASE_VERSION, ModelRegistry
from ..settings import RetrainSettings
from .datasets import replay_files
from .execute import execute_job
from .promotion import format_comparison
from .state import JobStore

__all__ = ["run_bench", "timed_job"]


def _import_faces(store: AnnotationStore, settings: RetrainSettings, labels: list[str], count: int) -> int:
    folder = settings.resolved_replay()
    if folder is None:
        raise FileNotFoundError("--bench needs the FER+ training folder (../shared or TSNET_REPLAY_DATA)")
    samples = read_labelled_folder(folder, labels, "majority")
    replayed = set(replay_files(folder, labels, settings.replay_size, settings.seed))
    candidates = [i for i, path in enumerate(samples.paths) if path not in replayed]
    chosen = np.random.default_rng(settings.seed + 1).choice(candidates, size=count, replace=False)
    for index in chosen:
        path = samples.paths[index]
        label = labels[int(samples.label_indices[index])]
        store.ingest(path.read_bytes(), str(path), path.name, votes=[(label, "ferplus-bench")])
    return len(chosen)


def timed_job(settings: RetrainSettings, home: Path) -> tuple[dict[str, Any], float, dict[str, float]]:
    """One job on a scratch store under ``home``: its outcome, its seconds and the seconds of each stage."""
    handle = JobStore(home).create({"bench": True})
    marks: list[tuple[str, float]] = []
    handle.listeners.append(
        lambda event: marks.append((event["stage"], time.perf_counter())) if "message" in event else None
    )
    started = time.perf_counter()
    outcome = execute_job(settings, DataLayout(home).database, handle, log=lambda message: None)
    seconds = time.perf_counter() - started
    ends = [*marks[1:], ("end", started + seconds)]
    return outcome, seconds, {stage: round(end - begin, 1) for (stage, begin), (_, end) in zip(marks, ends)}


def run_bench(settings: RetrainSettings, images: int = 500, report: Path | None = None) -> int:
    registry = ModelRegistry.from_settings(settings)
    current = registry.current()
    base = {name: str(registry.weights_folder(current, name)) for name in ("student", "teacher")}
    labels = list(read_config(base["student"]).labels)
    with tempfile.TemporaryDirectory(prefix="tsnet-bench-") as temporary:
        home = Path(temporary)
        bench_settings = replace(settings, home=home, base_student=base["student"], base_teacher=base["teacher"])
        bench_settings.push_repo = None
        started = time.perf_counter()
        with AnnotationStore(DataLayout(home).database, labels=labels) as store:
            imported = _import_faces(store, bench_settings, labels, images)
        import_seconds = time.perf_counter() - started

        outcome, seconds, stages = timed_job(bench_settings, home)
    result = {
        "images": imported,
        "import_seconds": round(import_seconds, 1),
        "job_seconds": round(seconds, 1),
        "stage_seconds": stages,
        "base": base,
        "current_version": current if current != BASE_VERSION else "base",
        "epochs": settings.epochs,
        "replay_size": settings.replay_size,
        "state": outcome["state"],
        "error": outcome.get("error"),
        "comparison": outcome.get("comparison"),
        "promoted": outcome.get("promoted"),
    }
    print(f"imported {imported} newly labelled faces in {import_seconds:.1f}s (not part of the job)")
    print(f"retrain job: {outcome['state']} in {seconds:.1f}s; stages: {stages}")
    if outcome["state"] == "succeeded":
        print(format_comparison(outcome))
    if report is not None:
        report.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if outcome["state"] == "succeeded" else 1
