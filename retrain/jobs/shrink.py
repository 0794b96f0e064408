"""Shrink a candidate toward the current model until it keeps what the current model knew.

Fine-tuning on a user's photos trades accuracy on their people against the FER+ benchmark; interpolating the
weights between current and candidate (WiSE-FT: Wortsman et al., 2022) moves along that trade. The job picks the
largest step toward the candidate whose accuracy on *probe* faces stays within the benchmark's tolerance. The probe
is the benchmark itself (FER2013Valid: selecting on validation, as every choice in this project is; FER+'s test
split stays held out), else FER+ training faces outside the replay sample, which the current model was trained on,
so they overstate forgetting and the choice errs toward the current model. The store's test split, which decides
promotion with the benchmark, never takes part in the choice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.classifier import Classifier
from core.weights import load_weights, save_weights

from ..training import Dataset

__all__ = ["ShrinkProbe", "ShrinkResult", "BISECTIONS", "largest_fraction", "probe_accuracy", "shrink_toward"]

BISECTIONS = 4  # after the full candidate fails: halvings of [0, 1], so the fraction kept is a multiple of 1/16


@dataclass(frozen=True)
class ShrinkProbe:
    """Faces a candidate must not get worse on (the benchmark, else FER+ training faces outside the replay sample)."""

    faces: Dataset
    source: str  # how the log and the job's record name them
    tolerance: float  # the accuracy the candidate may cost on them


@dataclass
class ShrinkResult:
    """The weights kept, the fraction of the candidate they hold, and every step's probe accuracy."""

    folder: Path
    fraction: float
    probe_accuracy: dict[str, float]  # "current" and each tried fraction, e.g. "0.8"


def probe_accuracy(model: torch.nn.Module, config, probe: Dataset) -> float:
    """The model's accuracy on the probe faces, read as the classifier reads them."""
    probabilities = Classifier(model, config).predict_gray_batch(probe.images)
    return float((probabilities.argmax(axis=1) == np.asarray(probe.label_indices)).mean())


def _blend(current: dict, candidate: dict, fraction: float) -> dict:
    """The weights ``fraction`` of the way to the candidate, rounded to half precision as they will be saved, so
    the probe judges exactly the model that ships."""
    return {
        key: (current[key] + fraction * (value - current[key])).half().float() if value.is_floating_point() else value
        for key, value in candidate.items()
    }


def largest_fraction(
    accuracy: Callable[[float], float], table: dict[str, float], tolerance: float, bisections: int = BISECTIONS
) -> float:
    """The largest fraction in [0, 1] whose ``accuracy`` is within ``tolerance`` of ``table["current"]``: 1 when the
    candidate itself holds, else found by bisection (assuming accuracy falls as the fraction grows); every try is
    recorded in ``table``."""

    def holds(fraction: float) -> bool:
        table[f"{fraction:g}"] = accuracy(fraction)
        return table["current"] - table[f"{fraction:g}"] <= tolerance

    if holds(1.0):
        return 1.0
    low, high = 0.0, 1.0
    for _ in range(bisections):
        middle = (low + high) / 2
        low, high = (middle, high) if holds(middle) else (low, middle)
    return low


def shrink_toward(
    current_folder: Path,
    candidate_folder: Path,
    probe: Dataset,
    tolerance: float,
    out: Path,
    bisections: int = BISECTIONS,
) -> ShrinkResult:
    """The largest fraction of the way to the candidate whose probe accuracy is within ``tolerance`` of the current
    model's (the candidate itself when it already is; found by bisection, assuming accuracy falls as the fraction
    grows), saved to ``out``. With no fraction above zero within tolerance, the result is the current model."""
    current_model, _ = load_weights(current_folder)
    candidate_model, config = load_weights(candidate_folder)
    current_state = current_model.state_dict()
    candidate_state = {key: value.clone() for key, value in candidate_model.state_dict().items()}
    table = {"current": probe_accuracy(current_model, config, probe)}

    def accuracy(fraction: float) -> float:
        candidate_model.load_state_dict(_blend(current_state, candidate_state, fraction))
        return probe_accuracy(candidate_model, config, probe)

    low = largest_fraction(accuracy, table, tolerance, bisections)
    if low == 1.0:
        return ShrinkResult(candidate_folder, 1.0, table)
    candidate_model.load_state_dict(_blend(current_state, candidate_state, low))
    config.training["shrunk_toward_current"] = low
    save_weights(candidate_model, config, out, half=True)
    return ShrinkResult(out, low, table)
