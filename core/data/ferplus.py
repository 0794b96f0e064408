"""FER+ reader: the standard ``FER2013*/label.csv`` + PNG layout, with the FER+ authors' label rules.

Each label.csv row is ``image name, face box, 10 vote counts`` in :data:`FERPLUS_COLUMNS` order.
Two modes, following Barsoum et al. (ICMI 2016) and their ``generate_training_data`` code:

* ``majority``: drop single votes (outliers), keep the image only when one column holds more than
  half of the remaining votes and that column is an emotion (not ``unknown`` / ``NF``).
* ``distribution``: drop single votes, keep the image when its top column is an emotion, and use
  the vote shares as a soft target.

FER+ emotions are then mapped onto the configured label set; an image whose top emotion is outside
the set (e.g. ``fear`` for the paper's seven) is dropped, and out-of-set votes are removed from the
soft targets before they are renormalised.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..labels import normalise_label

__all__ = ["FERPLUS_COLUMNS", "FerPlusSamples", "read_ferplus", "read_ferplus_votes", "is_ferplus_folder"]

FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
_EMOTION_COLUMNS = 8
MODES = ("majority", "distribution")


@dataclass(frozen=True)
class FerPlusSamples:
    """Image paths with their hard labels (index into ``labels``) and soft targets (rows sum to 1)."""

    paths: list[Path]
    label_indices: np.ndarray
    soft_targets: np.ndarray
    labels: tuple[str, ...]
    skipped: dict[str, int]

    def __len__(self) -> int:
        return len(self.paths)


def is_ferplus_folder(folder: str | Path) -> bool:
    return (Path(folder) / "label.csv").is_file()


def read_ferplus_votes(folder: str | Path) -> dict[str, np.ndarray]:
    """The one parser of ``label.csv``: image name (as written, relative to ``folder``) -> its 10 raw vote counts."""
    with open(Path(folder) / "label.csv", newline="") as handle:
        return {
            row[0].strip(): np.asarray([float(v) for v in row[2:12]], dtype=np.float64)
            for row in csv.reader(handle)
            if row and row[0].strip()
        }


def _column_to_label_index(labels: Sequence[str]) -> dict[int, int]:
    mapping = {}
    for column, name in enumerate(FERPLUS_COLUMNS[:_EMOTION_COLUMNS]):
        canonical = normalise_label(name)
        if canonical in labels:
            mapping[column] = labels.index(canonical)
    return mapping


def read_ferplus(folder: str | Path, labels: Sequence[str], mode: str = "majority") -> FerPlusSamples:
    """Read one FER+ split folder; ``skipped`` counts the images each rule dropped."""
    if mode not in MODES:
        raise ValueError(f"unknown FER+ mode {mode!r}; choose one of {MODES}")
    folder = Path(folder)
    labels = tuple(labels)
    to_label = _column_to_label_index(labels)
    skipped = {"no_majority": 0, "unknown_or_not_face": 0, "outside_label_set": 0, "missing_file": 0}
    paths: list[Path] = []
    indices: list[int] = []
    soft_rows: list[np.ndarray] = []
    for name, counts in read_ferplus_votes(folder).items():
        votes = counts.copy()
        votes[votes <= 1.0] = 0.0  # single votes are outliers in the FER+ protocol
        total = votes.sum()
        top = int(np.argmax(votes))
        if total <= 0:
            skipped["no_majority"] += 1
            continue
        if mode == "majority" and votes[top] <= 0.5 * total:
            skipped["no_majority"] += 1
            continue
        if top >= _EMOTION_COLUMNS:
            skipped["unknown_or_not_face"] += 1
            continue
        if top not in to_label:
            skipped["outside_label_set"] += 1
            continue
        path = folder / name
        if not path.is_file():
            skipped["missing_file"] += 1
            continue
        soft = np.zeros(len(labels), dtype=np.float32)
        if mode == "majority":
            soft[to_label[top]] = 1.0
        else:
            for column, label_index in to_label.items():
                soft[label_index] += votes[column]
            soft /= soft.sum()
        paths.append(path)
        indices.append(to_label[top])
        soft_rows.append(soft)
    soft_targets = np.stack(soft_rows) if soft_rows else np.zeros((0, len(labels)), dtype=np.float32)
    return FerPlusSamples(paths, np.asarray(indices, dtype=np.int64), soft_targets, labels, skipped)
