"""The paper's runs: which experiments ``tsnet report`` expects, training the missing ones with the recipes in
``recipes.py``, and evaluating each finished run's best weights.

A runs folder holds one run folder per experiment (see :mod:`.run_folder`): ``teacher``, ``face-teacher``, ``resnet18``,
``student-s<seed>``, ``distill-s<seed>``, ``grid-T<T>-a<alpha>``, the long ``tsnet-*`` runs and averages.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from core.classifier import load_classifier
from core.labels import default_labels
from core.weights import CONFIG_NAME

from .averaging import average_checkpoints
from .config import TrainConfig
from .evaluation import evaluate_classifier
from .loop import run_training
from .recipes import (
    AVERAGED_CHECKPOINTS,
    BASELINE_EPOCHS,
    DISTILL_RECIPE,
    FACE_TEACHER_RECIPE,
    FAST_48PX_RECIPE,
    GRID_ALPHAS,
    GRID_TEMPERATURES,
    LONG_DISTILL_RECIPE,
    RESTART_RECIPE,
    STUDENT_RECIPE,
    TEACHER_RECIPE,
)
from .run_folder import BEST_DIR, CHECKPOINT_NAME, read_history, recorded_training_hours

__all__ = ["experiment_plan", "train_missing", "evaluate_runs"]


def experiment_plan(seeds: int = 2, grid_epochs: int = 4) -> dict[str, dict[str, Any]]:
    """Experiment name -> recipe overrides; distillation runs name their teacher run."""
    plan: dict[str, dict[str, Any]] = {"teacher": dict(TEACHER_RECIPE), "face-teacher": dict(FACE_TEACHER_RECIPE)}
    plan["tsnet-s0"] = {**LONG_DISTILL_RECIPE, "seed": 0, "teacher": "teacher"}
    plan["tsnet-s0-restart"] = {**RESTART_RECIPE, "seed": 0, "teacher": "teacher", "init_from": "tsnet-s0"}
    plan["tsnet-a0.6-s0"] = {**LONG_DISTILL_RECIPE, "alpha": 0.6, "seed": 0, "teacher": "teacher"}
    restart = {**RESTART_RECIPE, "alpha": 0.6, "seed": 0, "teacher": "teacher", "init_from": "tsnet-s0"}
    plan["tsnet-s0-restart-a0.6"] = restart
    plan["tsnet48-ft"] = {**FAST_48PX_RECIPE, "seed": 0, "teacher": "teacher", "init_from": "tsnet-s0"}
    plan["tsnet-s0-avg"] = {"average_of": AVERAGED_CHECKPOINTS}
    plan["resnet18"] = {**TEACHER_RECIPE, "architecture": "resnet18", "epochs": BASELINE_EPOCHS}
    plan["eff_resnet18-short"] = {**TEACHER_RECIPE, "epochs": BASELINE_EPOCHS}
    for seed in range(seeds):
        plan[f"student-s{seed}"] = {**STUDENT_RECIPE, "seed": seed}
        plan[f"distill-s{seed}"] = {**DISTILL_RECIPE, "seed": seed, "teacher": "teacher"}
    # The grid's best alpha checked on the comparison schedule (seed 0), against distill-s0's alpha 0.4.
    plan["distill-a0.6-s0"] = {**DISTILL_RECIPE, "alpha": 0.6, "seed": 0, "teacher": "teacher"}
    for temperature in GRID_TEMPERATURES:
        for alpha in GRID_ALPHAS:
            plan[f"grid-T{temperature:g}-a{alpha:g}"] = {
                **DISTILL_RECIPE,
                "temperature": temperature,
                "alpha": alpha,
                "epochs": grid_epochs,
                "teacher": "teacher",
            }
    return plan


def train_missing(
    runs: Path, train_data: str, val_data: str, plan: dict[str, dict[str, Any]], threads: int | None
) -> None:
    """Train (or resume) every planned run whose best weights are missing; teachers first."""
    known = {f.name for f in fields(TrainConfig)}
    for name in sorted(plan, key=lambda n: ("teacher" in plan[n], "init_from" in plan[n], "average_of" in plan[n])):
        recipe = dict(plan[name])
        out = runs / name
        if "average_of" in recipe:  # checkpoints of other planned runs: "<run>/best" or "<run>/last.pt"
            if not (out / BEST_DIR / CONFIG_NAME).is_file():
                average_checkpoints([runs / source for source in recipe["average_of"]], out / BEST_DIR)
            continue
        if len(read_history(out)) >= recipe["epochs"]:
            continue
        for source in ("teacher", "init_from"):  # these name other runs of the plan
            if source in recipe:
                recipe[source] = str(runs / recipe[source] / BEST_DIR)
        config = TrainConfig(
            train_data=train_data,
            val_data=val_data,
            out=str(out),
            labels=list(default_labels()),
            threads=threads,
            **{key: value for key, value in recipe.items() if key in known},
        )
        run_training(config, resume=(out / CHECKPOINT_NAME).is_file())


def evaluate_runs(runs: Path, val_data: str, plan: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Evaluate each planned run's best weights on the validation folder (majority rule)."""
    results = {}
    for name in plan:
        summary = _run_summary(runs / name, val_data)
        if summary is not None:
            results[name] = summary
    return results


def _run_summary(run_dir: Path, val_data: str) -> dict[str, Any] | None:
    if not (run_dir / BEST_DIR / CONFIG_NAME).is_file():
        return None
    classifier = load_classifier(run_dir / BEST_DIR)
    report = evaluate_classifier(classifier, val_data)
    history = read_history(run_dir)
    report["epochs"] = len(history)
    report["train_hours"] = recorded_training_hours(history, classifier.config.training)
    report["history"] = history
    report["training"] = classifier.config.training
    return report
