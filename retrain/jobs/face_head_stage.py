"""The retrain stage ``face-head`` (``TSNET_RETRAIN_STAGES=face-head``): the current student gains a head on dlib's
face features, fitted on the store's faces with FER+ replay (see :mod:`retrain.training.face_head`), and the
head's strength is then shrunk until the benchmark holds, as :mod:`.shrink` does for fine-tuned weights.

Without replay faces, rows drawn from the FER+ feature statistics shipped with the student stand in for them
(:mod:`retrain.training.feature_replay`), when the current student is the shipped one.

A current version that already has a head is refitted from its own student: the store holds every face the
earlier head was fitted on, so nothing learnt is lost, and heads never stack.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from core.models.face_head import StudentWithFaceHead
from core.weights import load_weights, save_weights

from ..training import Dataset
from ..training.face_head import (
    FaceHeadRecipe,
    face_head_model,
    fit_head,
    head_accuracy,
    head_inputs,
    plain_student,
    save_face_head,
)
from ..training.feature_replay import FeatureStatistics, synthetic_replay
from .shrink import BISECTIONS, ShrinkResult, largest_fraction, probe_accuracy

__all__ = ["train_face_head", "shrink_face_head"]

Log = Callable[[str], None]


def train_face_head(
    current: Path,
    store_train: Dataset,
    replay: Dataset | None,
    validation: Dataset | None,
    out: Path,
    seed: int,
    log: Log,
    recipe: FaceHeadRecipe | None = None,
    statistics: FeatureStatistics | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Fit a head for the current version's student on the store's training faces and replay faces (else rows of
    ``statistics``, the shipped FER+ feature statistics, when given); returns the weights folder and the stage's
    record (seconds, faces, training loss and accuracy, and the store's validation accuracy, as an epoch of the
    student fine-tune records them)."""
    recipe = recipe or FaceHeadRecipe()
    started = time.perf_counter()
    student, student_config = plain_student(current)
    real_replay = replay is not None and len(replay) > 0
    gated = recipe.domain_gate == "always" or (
        recipe.domain_gate == "feature-statistics" and not real_replay and statistics is not None
    )
    model, config = face_head_model(student, student_config, recipe.hidden, gated)
    faces = head_inputs(model, config, store_train.images, store_train.label_indices)
    replayed, feature_rows = None, 0
    if real_replay:
        replayed = head_inputs(model, config, replay.images, replay.label_indices, mirrored=False)
    elif statistics is not None:
        replayed = synthetic_replay(model, statistics, recipe.synthetic_rows, seed)
        feature_rows = len(replayed)
    features_seconds = time.perf_counter() - started
    fit = fit_head(model, faces, replayed, recipe, seed)
    record = {
        "epoch": 1,
        "store_faces": len(store_train),
        "replay_faces": len(replay) if replay is not None else 0,
        "feature_replay_rows": feature_rows,
        "features_seconds": round(features_seconds, 1),
        "train_loss": fit["loss"],
        "train_accuracy": fit["train_accuracy"],
        **{key: round(value, 4) for key, value in fit.items() if key.startswith("gate_")},
    }
    if validation is not None and len(validation):
        held_out = head_inputs(model, config, validation.images, validation.label_indices)
        record["val_accuracy"] = head_accuracy(model, held_out)
    record["seconds"] = round(time.perf_counter() - started, 1)
    rehearsed = f"{record['replay_faces']} replay faces"
    if record["feature_replay_rows"]:
        rehearsed += f" (and {record['feature_replay_rows']} rows of the shipped FER+ feature statistics)"
    log(
        f"face head: dlib's features of {len(store_train)} store faces, {rehearsed}, in {features_seconds:.0f} s;"
        f" fitted to {100 * fit['train_accuracy']:.1f} % on the store's training faces"
    )
    if "gate_store_faces" in fit:
        log(
            f"face head: its domain gate is {100 * fit['gate_store_faces']:.0f} % open on your training faces and"
            f" {100 * fit['gate_replay_faces']:.0f} % on the replay faces, so it corrects your kind of photo and"
            " leaves FER+'s kind of face to the student"
        )
    return save_face_head(model, config, out, recipe, face_head_fit=record), record


def shrink_face_head(
    current: Path, candidate: Path, probe: Dataset, tolerance: float, out: Path, bisections: int = BISECTIONS
) -> ShrinkResult:
    """:func:`.shrink.shrink_toward` for a face head: the largest strength of the head (its output scaled by a
    fraction in [0, 1]; 0 is the current student) whose probe accuracy is within ``tolerance`` of the current
    model's. The frozen parts run on the probe once, so each try costs nothing."""
    model, config = load_weights(candidate)
    if not isinstance(model, StudentWithFaceHead):
        raise ValueError(f"{candidate} has no face head to shrink")
    table = {"current": probe_accuracy(*load_weights(current), probe)}
    inputs = head_inputs(model, config, probe.images, probe.label_indices)
    low = largest_fraction(lambda fraction: head_accuracy(model, inputs, fraction), table, tolerance, bisections)
    if low == 1.0:
        return ShrinkResult(candidate, 1.0, table)
    with torch.no_grad():
        model.head.out.weight.mul_(low)
        model.head.out.bias.mul_(low)
    config.training["shrunk_toward_current"] = low
    save_weights(model, config, out, half=True)
    return ShrinkResult(out, low, table)
