"""Image-folder reader: one subfolder per class, folder names matched to the label set through aliases."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..labels import normalise_label
from .ferplus import FerPlusSamples

__all__ = ["IMAGE_SUFFIXES", "read_image_folder", "list_images"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def list_images(folder: str | Path) -> list[Path]:
    """All image files below ``folder``, sorted for reproducibility."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image_folder(folder: str | Path, labels: Sequence[str]) -> FerPlusSamples:
    """Read ``folder/<class>/*.png``; subfolders naming no class of the set are counted as skipped."""
    folder = Path(folder)
    labels = tuple(labels)
    paths: list[Path] = []
    indices: list[int] = []
    skipped = {"outside_label_set": 0}
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        name = normalise_label(class_dir.name)
        images = list_images(class_dir)
        if name not in labels:
            skipped["outside_label_set"] += len(images)
            continue
        paths.extend(images)
        indices.extend([labels.index(name)] * len(images))
    label_indices = np.asarray(indices, dtype=np.int64)
    soft = (
        np.eye(len(labels), dtype=np.float32)[label_indices] if len(indices) else np.zeros((0, len(labels)), np.float32)
    )
    return FerPlusSamples(paths, label_indices, soft, labels, skipped)
