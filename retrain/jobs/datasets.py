"""The faces a retrain job trains and evaluates on: the store's splits, a replay sample of the base training data
(so the model does not forget what it knew) and the base benchmark, all as in-memory ``training.Dataset``s."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.classifier import Classifier
from core.data import faces_at, is_ferplus_folder, load_gray_images, read_labelled_folder
from core.data.tensors import STORE_SIZE
from labeling import AnnotationStore

from ..training import Dataset

__all__ = [
    "StoreSplit",
    "store_split",
    "stored_face_side",
    "with_model_targets",
    "replay_sample",
    "benchmark_set",
    "concat",
    "replay_files",
]


def _empty(classes: int) -> Dataset:
    return Dataset(
        torch.zeros((0, 1, 48, 48), dtype=torch.uint8),
        torch.zeros(0, dtype=torch.int64),
        torch.zeros((0, classes), dtype=torch.float32),
    )


@dataclass
class StoreSplit:
    """One split of the store as training data, with each face's image id and split group (for the bootstrap)."""

    data: Dataset
    ids: list[str]
    groups: list[str]


def stored_face_side(store: AnnotationStore, split: str) -> int:
    """How sharp the store keeps ``split``'s faces: their median side (96 for photos' faces, 48 for FER+ crops;
    PIL reads only each PNG's header)."""
    sides = []
    for sample in store.samples(split):
        with Image.open(sample.crop) as image:
            sides.append(min(image.size))
    return int(np.median(sides)) if sides else 0


def store_split(store: AnnotationStore, split: str, labels: Sequence[str], size: int = STORE_SIZE) -> StoreSplit:
    """The store's labelled ``split`` in the model's label order, its faces at ``size`` px."""
    labels = list(labels)
    missing = [name for name in store.labels if name not in labels]
    if missing:
        raise ValueError(f"the store's labels {missing} are not classes of the model ({labels})")
    to_model = np.array([labels.index(name) for name in store.labels])
    samples = store.samples(split)
    if not samples:
        return StoreSplit(_empty(len(labels)), [], [])
    soft = np.zeros((len(samples), len(labels)), dtype=np.float32)
    for row, sample in enumerate(samples):
        soft[row, to_model] = sample.soft_target
    crops = [sample.crop for sample in samples]
    data = Dataset(
        load_gray_images(crops, size),
        torch.from_numpy(to_model[[sample.label_index for sample in samples]].astype(np.int64)),
        torch.from_numpy(soft),
    )
    ids, groups = [sample.image_id for sample in samples], [sample.group or sample.image_id for sample in samples]
    return StoreSplit(data, ids, groups)


def replay_files(folder: Path, labels: Sequence[str], size: int, seed: int) -> list[Path]:
    """The fixed replay sample: the same ``size`` faces for a given seed, so runs are comparable."""
    samples = read_labelled_folder(folder, list(labels), "majority")
    order = np.random.default_rng(seed).permutation(len(samples))[: max(size, 0)]
    return [samples.paths[i] for i in np.sort(order)]


def replay_sample(
    folder: Path, labels: Sequence[str], size: int, seed: int, targets: str = "votes"
) -> tuple[Dataset, list[str]]:
    """``size`` faces of the base training data (those with a majority label, the same ones as
    :func:`replay_files`); their targets are the FER+ vote shares (``targets="votes"``, what the base model was
    trained on) or one-hot majority labels. Returns the dataset and the file names."""
    samples = read_labelled_folder(folder, list(labels), "majority")
    order = np.sort(np.random.default_rng(seed).permutation(len(samples))[: max(size, 0)])
    if len(order) == 0:
        return _empty(len(labels)), []
    soft = samples.soft_targets[order]
    if targets == "votes" and is_ferplus_folder(folder):
        shares = read_labelled_folder(folder, list(labels), "distribution")
        row_of = {path: row for row, path in enumerate(shares.paths)}
        soft = np.stack([shares.soft_targets[row_of[samples.paths[i]]] for i in order])
    return (
        Dataset(
            load_gray_images([samples.paths[i] for i in order]),
            torch.from_numpy(samples.label_indices[order]),
            torch.from_numpy(soft.astype(np.float32)),
        ),
        [samples.paths[i].name for i in order],
    )


def with_model_targets(data: Dataset, model: Classifier) -> Dataset:
    """``data`` with ``model``'s own probabilities as its soft targets: rehearsing what the current model answers on
    replay faces (learning without forgetting) instead of FER+'s labels, which it never fitted exactly."""
    if not len(data):
        return data
    probabilities = model.predict_gray_batch(data.images).astype(np.float32)
    return Dataset(data.images, data.label_indices, torch.from_numpy(probabilities))


def probe_sample(folder: Path, labels: Sequence[str], size: int, seed: int, replay_size: int) -> Dataset:
    """``size`` base training faces outside the replay sample (majority labels): what the job checks forgetting on
    before the promotion rule judges on the benchmark."""
    samples = read_labelled_folder(folder, list(labels), "majority")
    replayed = set(replay_files(folder, labels, replay_size, seed))
    others = [i for i, path in enumerate(samples.paths) if path not in replayed]
    chosen = np.sort(np.random.default_rng(seed + 2).permutation(others)[: max(size, 0)]) if others else []
    if len(chosen) == 0:
        return _empty(len(labels))
    return Dataset(
        load_gray_images([samples.paths[i] for i in chosen]),
        torch.from_numpy(samples.label_indices[chosen]),
        torch.from_numpy(samples.soft_targets[chosen].astype(np.float32)),
    )


def benchmark_set(folder: Path, labels: Sequence[str]) -> Dataset:
    """The base benchmark under the majority rule (FER+ FER2013Valid by default)."""
    samples = read_labelled_folder(folder, list(labels), "majority")
    return Dataset(
        load_gray_images(samples.paths),
        torch.from_numpy(samples.label_indices),
        torch.from_numpy(samples.soft_targets.astype(np.float32)),
    )


def concat(*parts: Dataset) -> Dataset:
    """One dataset of ``parts``, its faces at the first part's side (48 px replay faces beside sharper photo
    faces are enlarged to them, as the model's preprocessing would)."""
    parts = tuple(part for part in parts if len(part))
    side = parts[0].images.shape[-1]
    return Dataset(
        torch.cat([faces_at(part.images, side) for part in parts]),
        torch.cat([part.label_indices for part in parts]),
        torch.cat([part.soft_targets for part in parts]),
    )
