"""The retrain stage ``face-head`` (``TSNET_RETRAIN_STAGES=face-head``): the current student gains a head on dlib's
face features, fitted on the store's faces with FER+ replay (see :mod:`retrain.training.face_head`), and the
head's strength is then shrunk until the benchmark holds, as :mod:`.shrink` does for fine-tuned weights. Several
heads are fitted on different seeds and shrunk so; the job keeps the one that holds at the most strength, then
reads the store's validation faces best, then most confidently (all before the store's test split judges it).

Without replay faces, rows drawn from the FER+ feature statistics shipped with the student stand in for them
(:mod:`retrain.training.feature_replay`), when the current student is the shipped one.

A current version that already has a head is refitted from its own student: the store holds every face the
earlier head was fitted on, so nothing learnt is lost, and heads never stack.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from core.models.face_head import StudentWithFaceHead
from core.weights import load_weights

from ..training import Dataset
from ..training.face_head import (
    FaceHeadRecipe,
    HeadInputs,
    face_head_model,
    fit_head,
    head_accuracy,
    head_inputs,
    save_face_head,
    student_of,
)
from ..training.feature_replay import FeatureStatistics, synthetic_replay
from .shrink import BISECTIONS, ShrinkProbe, ShrinkResult, largest_fraction, probe_accuracy

__all__ = ["train_face_head"]

Log = Callable[[str], None]


@dataclass
class _Fit:
    """One candidate head: its fit seed, its weights, the strength the probe kept and its validation accuracy."""

    seed: int
    head: dict[str, torch.Tensor]
    fraction: float
    probe_table: dict[str, float]
    val_accuracy: float | None
    val_loss: float | None  # the mean negative log-likelihood of the right class: tells equal accuracies apart
    fit: dict[str, float]

    def rank(self) -> tuple[float, float, float]:
        if self.val_accuracy is None or self.val_loss is None:  # no validation faces: the training fit decides
            return self.fraction, self.fit["train_accuracy"], -self.fit["loss"]
        return self.fraction, self.val_accuracy, -self.val_loss


def _fit_candidate(
    model: StudentWithFaceHead,
    inputs: tuple[HeadInputs, HeadInputs | None, HeadInputs | None, HeadInputs | None],
    recipe: FaceHeadRecipe,
    seed: int,
    current_accuracy: float | None,
    tolerance: float,
    fit_gate: bool,
) -> _Fit:
    """Fit the head on ``seed`` (and its gate, when ``fit_gate``) and find its strength: the largest whose probe
    accuracy is within ``tolerance``."""
    faces, replayed, held_out, probe = inputs
    fit = fit_head(model, faces, replayed, recipe, seed, fit_gate=fit_gate)
    table: dict[str, float] = {}
    fraction = 1.0
    if probe is not None and current_accuracy is not None:
        table["current"] = current_accuracy
        fraction = largest_fraction(lambda value: head_accuracy(model, probe, value), table, tolerance, BISECTIONS)
    val_accuracy, val_loss = None, None
    if held_out is not None:
        val_accuracy, val_loss = head_accuracy(model, held_out, fraction), _head_loss(model, held_out, fraction)
    head = {key: value.clone() for key, value in model.head.state_dict().items()}
    return _Fit(seed, head, fraction, table, val_accuracy, val_loss, fit)


@torch.no_grad()
def _head_loss(model: StudentWithFaceHead, inputs: HeadInputs, scale: float) -> float:
    """The right class's negative log-probability under the student plus ``scale`` x the head, averaged over each
    face's views."""
    logits = inputs.logits + scale * model.head(inputs.features)
    log_probs = F.log_softmax(logits, dim=1).view(-1, inputs.views, logits.shape[1]).mean(1)
    return float(-log_probs.gather(1, inputs.labels[:: inputs.views, None]).mean())


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
    probe: ShrinkProbe | None = None,
) -> tuple[Path, dict[str, Any], ShrinkResult | None]:
    """Fit ``recipe.candidates`` heads for the current version's student on the store's training faces and replay
    faces (else rows of ``statistics``, the shipped FER+ feature statistics, when given), each shrunk against
    ``probe`` when there is one, and keep the one that holds it at the most strength, then reads the store's
    validation faces best (then most confidently). Returns the weights folder, the stage's record (seconds, faces,
    each candidate, and the kept one's training loss and accuracy and validation accuracy, as an epoch of the
    student fine-tune records them), and the shrink's result (None without a probe)."""
    recipe = recipe or FaceHeadRecipe()
    started = time.perf_counter()
    served = load_weights(current)
    student, student_config = student_of(*served)
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
    held_out = None
    if validation is not None and len(validation):
        held_out = head_inputs(model, config, validation.images, validation.label_indices)
    probed, current_accuracy = None, None
    if probe is not None and len(probe.faces):
        current_accuracy = probe_accuracy(*served, probe.faces)  # the served model, head and all
        probed = head_inputs(model, config, probe.faces.images, probe.faces.label_indices)
    features_seconds = time.perf_counter() - started
    inputs = (faces, replayed, held_out, probed)
    tolerance = probe.tolerance if probe is not None else 0.0
    fits = [  # the gate's fit has no seed: fitted with the first head, kept for the others
        _fit_candidate(model, inputs, recipe, fit_seed, current_accuracy, tolerance, fit_gate=index == 0)
        for index, fit_seed in enumerate(recipe.candidate_seeds(seed))
    ]
    opened = {key: value for key, value in fits[0].fit.items() if key.startswith("gate_")}
    kept = max(fits, key=_Fit.rank)  # the first of equals: the job seed's own fit when nothing tells them apart
    model.head.load_state_dict(kept.head)
    if kept.fraction < 1.0:
        with torch.no_grad():
            model.head.out.weight.mul_(kept.fraction)
            model.head.out.bias.mul_(kept.fraction)
    record = {
        "epoch": 1,
        "store_faces": len(store_train),
        "replay_faces": len(replay) if replay is not None else 0,
        "feature_replay_rows": feature_rows,
        "features_seconds": round(features_seconds, 1),
        "train_loss": kept.fit["loss"],
        "train_accuracy": kept.fit["train_accuracy"],
        **{key: round(value, 4) for key, value in opened.items()},
        "kept_seed": kept.seed,
        "candidates": [
            {"seed": f.seed, "kept_strength": f.fraction, "val_accuracy": f.val_accuracy, "val_loss": f.val_loss}
            for f in fits
        ],
    }
    if kept.val_accuracy is not None:
        record["val_accuracy"] = kept.val_accuracy
    record["seconds"] = round(time.perf_counter() - started, 1)
    rehearsed = f"{record['replay_faces']} replay faces"
    if record["feature_replay_rows"]:
        rehearsed += f" (and {record['feature_replay_rows']} rows of the shipped FER+ feature statistics)"
    log(
        f"face head: dlib's features of {len(store_train)} store faces, {rehearsed}, in {features_seconds:.0f} s;"
        f" fitted to {100 * kept.fit['train_accuracy']:.1f} % on the store's training faces"
    )
    log(_choice_line(fits, kept, probe))
    if "gate_store_faces" in opened:
        log(
            f"face head: its domain gate is {100 * opened['gate_store_faces']:.0f} % open on your training faces"
            f" and {100 * opened['gate_replay_faces']:.0f} % on the replay faces, so it corrects your kind of photo"
            " and leaves FER+'s kind of face to the student"
        )
    training = {"face_head_fit": record}
    if probed is not None:
        training["shrunk_toward_current"] = kept.fraction
    folder = save_face_head(model, config, out, recipe, **training)
    shrink = ShrinkResult(folder, kept.fraction, kept.probe_table) if probed is not None else None
    return folder, record, shrink


def _choice_line(fits: list[_Fit], kept: _Fit, probe: ShrinkProbe | None) -> str:
    """Which of the heads the job kept, and why, in plain words."""
    if len(fits) == 1:
        return f"face head: one fit (seed {kept.seed})"
    held = f"holds {probe.source} at {kept.fraction:g} of its strength" if probe is not None else ""
    read = f"reads {100 * kept.val_accuracy:.1f} % of your validation faces" if kept.val_accuracy is not None else ""
    why = " and ".join(part for part in (held, read) if part) or "the first of equals"
    others = ", ".join(
        f"seed {fit.seed}: {fit.fraction:g}"
        + (f", {100 * fit.val_accuracy:.1f} %" if fit.val_accuracy is not None else "")
        for fit in fits
        if fit is not kept
    )
    return f"face head: {len(fits)} fits, kept seed {kept.seed}'s, which {why} ({others})"
