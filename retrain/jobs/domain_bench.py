"""``tsnet retrain --bench``: the product's promise, measured end to end on a folder of real photos of people.

The photos' people are split by subject into the user's own (imported into a scratch store exactly as
``tsnet label import DIR --labels-from-folders`` does: faces detected, near-duplicates grouped) and unseen people,
who are only ever predicted on. One retrain job then runs on the configured defaults, and the figures are the
ones a user gets: job seconds, accuracy on the unseen people through the photo pipeline (detect, align,
classify) before and after, the FER+ benchmark before and after, and whether the job promoted its candidate.

The data folder needs ``labels.csv`` with ``path,label,subject`` (and optionally ``raters_agree``: only photos
whose raters agreed with the posed label are scored), like ``../shared/data/taiwanese-dev``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.classifier import Classifier
from core.weights import load_weights, read_config
from labeling import AnnotationStore
from labeling.faces import store_face_finder

from ..layout import DataLayout
from ..registry import ModelRegistry
from ..settings import DEFAULT_SHARED_FERPLUS, RetrainSettings
from ..training.photos import DomainPhoto, evaluate_photos, photo_set, read_domain_photos
from .bench import timed_job
from .datasets import benchmark_set
from .promotion import BASE_BENCHMARK, format_comparison

__all__ = ["DEFAULT_DOMAIN_DATA", "DomainPhoto", "read_domain_photos", "split_people", "run_domain_bench"]

DEFAULT_DOMAIN_DATA = DEFAULT_SHARED_FERPLUS.parent / "taiwanese-dev"


def split_people(photos: Sequence[DomainPhoto], store_people: int, seed: int) -> tuple[list[str], list[str]]:
    """A seeded split of the subjects: ``store_people`` whose photos the user labels, the rest unseen."""
    subjects = sorted({photo.subject for photo in photos})
    if not 0 < store_people < len(subjects):
        raise ValueError(f"--bench-store-people must be between 1 and {len(subjects) - 1} ({len(subjects)} people)")
    order = list(np.random.default_rng(seed).permutation(subjects))
    return sorted(order[:store_people]), sorted(order[store_people:])


def _import_people(store: AnnotationStore, photos: Sequence[DomainPhoto], scratch: Path) -> dict[str, Any]:
    """The store people's photos laid out as class folders and imported the way ``tsnet label import`` does."""
    tree = scratch / "photos"
    for photo in photos:
        link = tree / photo.label / f"{photo.subject}-{photo.path.name}"
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(photo.path.resolve(), link)
    report = store.import_paths([tree], labels_from_folders=True, annotator="bench")
    return {"photos": len(photos), "faces": report.faces, "no_face": report.no_face, "seconds": report.seconds}


def _benchmark(outcome: dict[str, Any], models: tuple[Classifier, Classifier | None], labels: list[str]) -> dict:
    """The job's own benchmark row when it ran one; else the bench measures FER2013Valid itself when it can."""
    row = (outcome.get("comparison") or {}).get(BASE_BENCHMARK)
    if row:
        return {"before": row["current_accuracy"], "after": row["candidate_accuracy"], "measured_by": "the job"}
    folder = DEFAULT_SHARED_FERPLUS / "FER2013Valid"
    if not folder.is_dir() or models[1] is None:
        return {"before": None, "after": None, "measured_by": "nobody: no FER+ benchmark at hand"}
    data = benchmark_set(folder, labels)
    truth = data.label_indices.numpy()
    before, after = (float((m.predict_gray_batch(data.images).argmax(1) == truth).mean()) for m in models)
    return {"before": before, "after": after, "measured_by": "the bench (the job ran without a benchmark)"}


def run_domain_bench(
    settings: RetrainSettings, data: Path = DEFAULT_DOMAIN_DATA, store_people: int = 11, seed: int = 0
) -> dict[str, Any]:
    """Run the scenario and return its figures (see the module docstring)."""
    registry = ModelRegistry.from_settings(settings)
    base = {name: registry.weights_folder(registry.current(), name) for name in ("student", "teacher")}
    labels = list(read_config(base["student"]).labels)
    photos = read_domain_photos(Path(data), labels)
    store_subjects, unseen_subjects = split_people(photos, store_people, seed)
    unseen = [p for p in photos if p.subject in unseen_subjects and p.raters_agree]
    unseen_faces = photo_set(unseen, labels, str(data))
    before_model = Classifier(*load_weights(base["student"]), source=str(base["student"]))
    with tempfile.TemporaryDirectory(prefix="tsnet-domain-bench-") as temporary:
        home = Path(temporary) / "home"
        job_settings = replace(
            settings, home=home, base_student=str(base["student"]), base_teacher=str(base["teacher"])
        )
        job_settings.push_repo = None
        finder = store_face_finder()  # what tsnet label import and the app use: faces found, aligned
        with AnnotationStore(DataLayout(home).database, labels=labels, detect_faces=finder) as store:
            imported = _import_people(store, [p for p in photos if p.subject in store_subjects], Path(temporary))
        outcome, seconds, stages = timed_job(job_settings, home)
        after_model = None
        if outcome.get("version"):
            folder = ModelRegistry(home).weights_folder(outcome["version"], "student")
            after_model = Classifier(*load_weights(folder), source=str(folder))
        unseen_after = evaluate_photos(after_model, unseen_faces)["accuracy"] if after_model is not None else None
        benchmark = _benchmark(outcome, (before_model, after_model), labels)
    return {
        "data": str(data),
        "store_people": store_subjects,
        "unseen_people": unseen_subjects,
        "imported": imported,
        "unseen_photos": len(unseen),
        "unseen_no_face": unseen_faces.no_face,
        "job_seconds": round(seconds, 1),
        "stage_seconds": stages,
        "unseen_before": evaluate_photos(before_model, unseen_faces)["accuracy"],
        "unseen_after": unseen_after,
        "benchmark_before": benchmark["before"],
        "benchmark_after": benchmark["after"],
        "benchmark_measured_by": benchmark["measured_by"],
        "state": outcome["state"],
        "error": outcome.get("error"),
        "promoted": outcome.get("promoted"),
        "version": outcome.get("version"),
        "decision": outcome.get("decision"),
        "warnings": outcome.get("warnings") or [],
        "shrink": outcome.get("shrink"),
        "comparison": outcome.get("comparison"),
        "recipe": {key: value for key, value in asdict(settings).items() if key not in ("home", "rules")},
    }


def _points(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return "not measured"
    return f"{100 * before:.2f}% -> {100 * after:.2f}% ({100 * (after - before):+.2f} points)"


def format_domain_bench(result: dict[str, Any]) -> str:
    """The figures as a user reads them."""
    imported = result["imported"]
    lines = [
        f"people: {len(result['store_people'])} in your store ({imported['photos']} photos, {imported['faces']} faces"
        f" found, import {imported['seconds']:.1f}s, not part of the job), {len(result['unseen_people'])} unseen"
        f" ({result['unseen_photos']} photos, {result['unseen_no_face']} without a face found)",
        f"retrain job: {result['state']} in {result['job_seconds']:.1f}s; stages: {result['stage_seconds']}",
        f"unseen people (photo pipeline): {_points(result['unseen_before'], result['unseen_after'])}",
        f"benchmark FER2013Valid: {_points(result['benchmark_before'], result['benchmark_after'])}"
        f" (measured by {result['benchmark_measured_by']})",
    ]
    if result.get("shrink"):
        lines.append(f"candidate kept {result['shrink']['fraction']:g} of the way from the current model (probe faces)")
    if result["state"] == "succeeded":
        lines.append(format_comparison(result))
    elif result.get("error"):
        lines.append(f"error: {result['error']}")
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(result, indent=2) + "\n")
