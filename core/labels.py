"""The label set: defined once here so every part of the product agrees on class names and order.

The default is the paper's seven classes (FER+ without fear). Another set is chosen by name
(``TSNET_LABELS=ferplus8``) or by a comma-separated list of names, without touching other code.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

__all__ = [
    "PAPER_LABELS",
    "FERPLUS8_LABELS",
    "LABEL_SETS",
    "LABEL_ALIASES",
    "default_labels",
    "resolve_labels",
    "normalise_label",
]

PAPER_LABELS: tuple[str, ...] = ("angry", "disgust", "happy", "sad", "surprise", "neutral", "contempt")
FERPLUS8_LABELS: tuple[str, ...] = PAPER_LABELS + ("fear",)

LABEL_SETS: dict[str, tuple[str, ...]] = {"paper7": PAPER_LABELS, "ferplus8": FERPLUS8_LABELS}

# Names used by FER+, AffectNet, RAF-DB and folder datasets for the same emotions.
LABEL_ALIASES: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "mad": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "happiness": "happy",
    "happy": "happy",
    "joy": "happy",
    "sadness": "sad",
    "sad": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
    "calm": "neutral",
    "contempt": "contempt",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
}


def normalise_label(name: str) -> str:
    """Map a user-facing or dataset-specific emotion name onto our canonical name."""
    key = name.strip().lower()
    return LABEL_ALIASES.get(key, key)


def resolve_labels(spec: str | Iterable[str] | None = None) -> tuple[str, ...]:
    """Turn a label-set name, a comma-separated list or a sequence of names into a label tuple."""
    if spec is None:
        return default_labels()
    if isinstance(spec, str):
        if spec in LABEL_SETS:
            return LABEL_SETS[spec]
        names: Sequence[str] = [part for part in spec.split(",") if part.strip()]
    else:
        names = list(spec)
    labels = tuple(normalise_label(name) for name in names)
    if len(labels) < 2:
        raise ValueError(f"a label set needs at least two classes, got {labels!r}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"duplicate class names in label set {labels!r}")
    return labels


def default_labels() -> tuple[str, ...]:
    """The configured label set: ``TSNET_LABELS`` (a set name or a list) or the paper's seven."""
    return resolve_labels(os.environ["TSNET_LABELS"]) if os.environ.get("TSNET_LABELS") else PAPER_LABELS
