"""The faces a retrain job trains and evaluates on: the store's splits, a replay sample of the base training data
(so the model does not forget what it knew) and the base benchmark, all as in-memory ``training.Dataset``s."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from core.data import load_gray_images, read_labelled_folder
from labeling import AnnotationStore

from ..training import Dataset

__all__ = ["store_split", "replay_sample", "benchmark_set", "concat", "replay_files"]


def _empty(classes: int) -> Dataset:
    return Dataset(
        torch.zeros((0, 1, 48, 48), dtype=torch.uint8),
        torch.zeros(0, dtype=torch.int64),
        torch.zeros((0, classes), dtype=torch.float32),
    )


def store_split(store: AnnotationStore, split: str, labels: Sequence[str]) -> tuple[Dataset, list[str]]:
    """The store's labelled ``split`` in the model's label order; returns the dataset and its image ids."""
    labels = list(labels)
    missing = [name for name in store.labels if name not in labels]
    if missing:
        raise ValueError(f"the store's labels {missing} are not classes of the model ({labels})")
    to_model = np.array([labels.index(name) for name in store.labels])
    samples = store.samples(split)
    if not samples:
        return _empty(len(labels)), []
    soft = np.zeros((len(samples), len(labels)), dtype=np.float32)
    for row, sample in enumerate(samples):
        soft[row, to_model] = sample.soft_target
    return (
        Dataset(
            load_gray_images([sample.crop for sample in samples]),
            torch.from_numpy(to_model[[sample.label_index for sample in samples]].astype(np.int64)),
            torch.from_numpy(soft),
        ),
        [sample.image_id for sample in samples],
    )


def replay_files(folder: Path, labels: Sequence[str], size: int, seed: int) -> list[Path]:
    """The fixed replay sample: the same ``size`` faces for a given seed, so runs are comparable."""
    samples = read_labelled_folder(folder, list(labels), "majority")
    order = np.random.default_rng(seed).permutation(len(samples))[: max(size, 0)]
    return [samples.paths[i] for i in np.sort(order)]


def replay_sample(folder: Path, labels: Sequence[str], size: int, seed: int) -> tuple[Dataset, list[str]]:
    """``size`` faces of the base training data with their FER+ vote shares; returns dataset and file names."""
    samples = read_labelled_folder(folder, list(labels), "majority")
    order = np.sort(np.random.default_rng(seed).permutation(len(samples))[: max(size, 0)])
    if len(order) == 0:
        return _empty(len(labels)), []
    return (
        Dataset(
            load_gray_images([samples.paths[i] for i in order]),
            torch.from_numpy(samples.label_indices[order]),
            torch.from_numpy(samples.soft_targets[order].astype(np.float32)),
        ),
        [samples.paths[i].name for i in order],
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
    parts = tuple(part for part in parts if len(part))
    return Dataset(
        torch.cat([part.images for part in parts]),
        torch.cat([part.label_indices for part in parts]),
        torch.cat([part.soft_targets for part in parts]),
    )
