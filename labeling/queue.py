"""The annotation queue: which images a person should label next, and what the model suggests.

Order: images nobody has labelled first, then images whose labels are contested (annotators
disagree, or the teacher and the student disagree), each group sorted by the student's uncertainty
(smallest top-1/top-2 margin first), so every label is spent where the model learns the most.
Images the asking annotator already labelled are left out.

Predictions are cached in the database per (image, model version); a model version is the SHA-256
of the weights file when the classifier has one (so retraining invalidates the cache on its own),
else its ``version`` attribute, else its class name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from core.labels import normalise_label
from core.weights import WEIGHTS_NAME

from .records import QueueItem

if TYPE_CHECKING:
    from .queries import StoreQueries

__all__ = ["model_version", "cached_predictions", "next_to_label"]

PREDICT_BATCH = 128


def model_version(classifier: Any) -> str:
    """A key that changes whenever the model's weights change."""
    source = getattr(classifier, "source", None)
    if source:
        weights = Path(source) / WEIGHTS_NAME
        if weights.is_file():
            return "sha256:" + hashlib.sha256(weights.read_bytes()).hexdigest()
    version = getattr(classifier, "version", None)
    return str(version) if version else f"{type(classifier).__module__}.{type(classifier).__qualname__}"


def _to_store_order(probabilities: np.ndarray, model_labels: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Re-index the model's columns by class name; classes the store lacks are dropped."""
    out = np.zeros((len(probabilities), len(labels)), dtype=np.float32)
    for column, name in enumerate(model_labels):
        canonical = normalise_label(name)
        if canonical in labels:
            out[:, labels.index(canonical)] = probabilities[:, column]
    return out


def cached_predictions(
    store: StoreQueries, classifier: Any, image_ids: Sequence[str] | None = None, version: str | None = None
) -> dict[str, np.ndarray]:
    """Probabilities in the store's label order for ``image_ids`` (default: all), computing only what is missing."""
    version = version or model_version(classifier)
    crops = store.crop_paths(image_ids)
    cached = {image_id: row for image_id, row in store.stored_predictions(version).items() if image_id in crops}
    missing = [image_id for image_id in crops if image_id not in cached]
    for start in range(0, len(missing), PREDICT_BATCH):
        batch = missing[start : start + PREDICT_BATCH]
        images = []
        for image_id in batch:
            with Image.open(crops[image_id]) as crop:
                images.append(crop.convert("L"))
        probabilities = _to_store_order(np.asarray(classifier.predict_crops(images)), classifier.labels, store.labels)
        store.save_predictions(version, dict(zip(batch, probabilities)))
        cached.update(zip(batch, probabilities))
    return cached


def _margin(probabilities: np.ndarray) -> float:
    top = np.sort(probabilities)[::-1]
    return float(top[0] - top[1]) if len(top) > 1 else float(top[0])


def next_to_label(
    store: StoreQueries, n: int, classifier: Any = None, annotator: str | None = None, teacher: Any = None
) -> list[QueueItem]:
    """Up to ``n`` images to label next, most useful first (see the module docstring)."""
    ids = store.image_ids()
    tallies = store.tallies()
    if annotator is not None:
        mine = {event.image_id for event in store.history(annotator=annotator) if event.undone_at is None}
        ids = [image_id for image_id in ids if image_id not in mine]
    student = cached_predictions(store, classifier, ids) if classifier is not None else {}
    teacher_probs = cached_predictions(store, teacher, ids) if teacher is not None else {}
    crops = store.crop_paths(ids)
    ranked: list[tuple[int, float, int, QueueItem]] = []
    for order, image_id in enumerate(ids):
        result = tallies.get(image_id)
        probs = student.get(image_id)
        if result is None:
            group, reason = 0, "unlabelled"
        elif not result.unanimous:
            group, reason = 1, "annotators disagree"
        elif (
            probs is not None
            and image_id in teacher_probs
            and int(np.argmax(probs)) != int(np.argmax(teacher_probs[image_id]))
        ):
            group, reason = 1, "teacher and student disagree"
        else:
            continue
        margin = _margin(probs) if probs is not None else None
        item = QueueItem(
            image_id=image_id,
            reason=reason,
            crop=crops[image_id],
            suggested_label=store.labels[int(np.argmax(probs))] if probs is not None else None,
            confidence=float(np.max(probs)) if probs is not None else None,
            margin=margin,
            votes=result.votes if result else {},
        )
        ranked.append((group, margin if margin is not None else 0.0, order, item))
    ranked.sort(key=lambda entry: entry[:3])
    return [entry[3] for entry in ranked[:n]]
