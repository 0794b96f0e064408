"""Shrink a candidate toward the current model until it keeps what the current model knew.

Fine-tuning on a user's photos trades accuracy on their people against the FER+ benchmark; interpolating the
weights between current and candidate (WiSE-FT: Wortsman et al., 2022) moves along that trade. The job picks the
largest step toward the candidate whose accuracy on *probe* faces (FER+ training faces outside the replay sample,
never the benchmark the promotion rule judges on) stays within the benchmark's tolerance, so the gate that follows
is still an honest test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.classifier import Classifier
from core.weights import load_weights, save_weights

from ..training import Dataset

__all__ = ["ShrinkResult", "SHRINK_STEPS", "shrink_toward"]

SHRINK_STEPS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)  # fractions of the way from current to candidate


@dataclass
class ShrinkResult:
    """The weights kept, the fraction of the candidate they hold, and every step's probe accuracy."""

    folder: Path
    fraction: float
    probe_accuracy: dict[str, float]  # "current" and each tried fraction, e.g. "0.8"


def _accuracy(model: torch.nn.Module, config, probe: Dataset) -> float:
    probabilities = Classifier(model, config).predict_gray_batch(probe.images)
    return float((probabilities.argmax(axis=1) == np.asarray(probe.label_indices)).mean())


def _blend(current: dict, candidate: dict, fraction: float) -> dict:
    return {
        key: current[key] + fraction * (value - current[key]) if value.is_floating_point() else value
        for key, value in candidate.items()
    }


def shrink_toward(
    current_folder: Path,
    candidate_folder: Path,
    probe: Dataset,
    tolerance: float,
    out: Path,
    steps: Sequence[float] = SHRINK_STEPS,
) -> ShrinkResult:
    """The first of ``steps`` whose probe accuracy is within ``tolerance`` of the current model's, saved to ``out``
    (the candidate itself when the full step already is); the smallest step when none is."""
    current_model, _ = load_weights(current_folder)
    candidate_model, config = load_weights(candidate_folder)
    current_state = current_model.state_dict()
    candidate_state = {key: value.clone() for key, value in candidate_model.state_dict().items()}
    table = {"current": _accuracy(current_model, config, probe)}
    chosen = steps[-1]
    for fraction in steps:
        candidate_model.load_state_dict(_blend(current_state, candidate_state, fraction))
        table[f"{fraction:g}"] = _accuracy(candidate_model, config, probe)
        if table["current"] - table[f"{fraction:g}"] <= tolerance:
            chosen = fraction
            break
    if chosen == 1.0:
        return ShrinkResult(candidate_folder, 1.0, table)
    candidate_model.load_state_dict(_blend(current_state, candidate_state, chosen))
    config.training["shrunk_toward_current"] = chosen
    save_weights(candidate_model, config, out, half=True)
    return ShrinkResult(out, chosen, table)
