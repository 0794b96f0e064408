"""Helpers for the labeling tests: tiny real images, FER+ folders and a real random-init classifier."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from labeling.bench import make_tiny_images
from tests._weights import write_random_weights

__all__ = ["png_bytes", "jpeg_bytes", "write_ferplus", "random_classifier", "make_tiny_images"]

# label.csv column order: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
FERPLUS_COLUMN = {"neutral": 0, "happy": 1, "surprise": 2, "sad": 3, "angry": 4, "disgust": 5, "fear": 6, "contempt": 7}


def png_bytes(seed: int, side: int = 24) -> bytes:
    return make_tiny_images(1, seed=seed, side=side)[0]


def jpeg_bytes(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()


def write_ferplus(folder: Path, rows: list[dict[str, int]], seed: int = 0) -> list[str]:
    """A FER+ folder with one PNG per row; ``rows`` map label names (or 'unknown'/'NF') to vote counts."""
    folder.mkdir(parents=True, exist_ok=True)
    lines, names = [], []
    for index, votes in enumerate(rows):
        name = f"fer{index:07d}.png"
        (folder / name).write_bytes(png_bytes(seed * 10_000 + index, side=48))
        counts = [0] * 10
        for label, n in votes.items():
            counts[{"unknown": 8, "NF": 9}.get(label, FERPLUS_COLUMN.get(label, -1))] = n
        lines.append(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, counts)))
        names.append(name)
    (folder / "label.csv").write_text("\n".join(lines) + "\n")
    return names


def random_classifier(folder: Path, labels: tuple[str, ...], seed: int = 0):
    """A real, untrained student saved and loaded the way shipped weights are."""
    from core import load_classifier

    write_random_weights(folder, labels=labels, input_size=48, seed=seed, model_kwargs={})
    return load_classifier(folder)
