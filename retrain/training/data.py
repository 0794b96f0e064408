"""The faces a run trains on, held in memory as uint8 tensors (FER+'s 48 px grayscale)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.data import load_gray_images, read_labelled_folder

__all__ = ["Dataset", "load_dataset"]


@dataclass
class Dataset:
    """Faces with their class indices and soft targets (FER+ vote shares, or one-hot)."""

    images: torch.Tensor  # uint8 (N, 1, 48, 48)
    label_indices: torch.Tensor  # int64 (N,)
    soft_targets: torch.Tensor  # float32 (N, C)

    def __len__(self) -> int:
        return len(self.images)

    def class_shares(self) -> torch.Tensor:
        """Each class's share of the targets (vote shares summed): the class prior a model learns from them."""
        totals = self.soft_targets.sum(dim=0)
        return totals / totals.sum()


def load_dataset(folder: str, labels: list[str], mode: str, limit: int | None = None, seed: int = 0) -> Dataset:
    """A labelled folder's faces under ``mode``; ``limit`` keeps a fixed random subset (same for one seed)."""
    samples = read_labelled_folder(folder, labels, mode)
    order = np.arange(len(samples))
    if limit is not None and limit < len(order):
        order = np.sort(np.random.default_rng(seed).permutation(len(order))[:limit])
    paths = [samples.paths[i] for i in order]
    return Dataset(
        load_gray_images(paths),
        torch.from_numpy(samples.label_indices[order]),
        torch.from_numpy(samples.soft_targets[order]),
    )
