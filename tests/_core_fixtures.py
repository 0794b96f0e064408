"""Tiny generated datasets for core and training tests: learnable patterns, no ../shared needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# FER+ label.csv vote order: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
FERPLUS_VOTE_COLUMN = {
    "neutral": 0,
    "happy": 1,
    "surprise": 2,
    "sad": 3,
    "angry": 4,
    "disgust": 5,
    "fear": 6,
    "contempt": 7,
}


def pattern_image(class_index: int, rng: np.random.Generator, size: int = 48) -> Image.Image:
    """A noisy image whose bright band position encodes the class, so a model can learn it fast."""
    array = rng.normal(70, 20, (size, size))
    band = size // 8
    top = (class_index * band) % (size - band)
    array[top : top + band, :] += 140
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), mode="L")


def write_ferplus_folder(folder: Path, labels: tuple[str, ...], per_class: int = 12, seed: int = 0) -> Path:
    """A FER+-layout folder whose majority labels are ``labels`` cycled, 10 votes each."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for class_index, label in enumerate(labels):
        for n in range(per_class):
            name = f"fer{class_index:02d}{n:05d}.png"
            pattern_image(class_index, rng).save(folder / name)
            votes = [0] * 10
            votes[FERPLUS_VOTE_COLUMN[label]] = 8
            votes[(FERPLUS_VOTE_COLUMN[label] + 1) % 8] = 2
            rows.append(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
    (folder / "label.csv").write_text("\n".join(rows) + "\n")
    return folder


def tiny_training_settings(root: Path, labels: tuple[str, ...], train_per_class: int, val_per_class: int) -> dict:
    """Generated FER+ train/val folders under ``root`` and the TrainConfig settings for second-long runs."""
    train = write_ferplus_folder(root / "train", labels, per_class=train_per_class)
    val = write_ferplus_folder(root / "val", labels, per_class=val_per_class, seed=1)
    return dict(train_data=str(train), val_data=str(val), labels=list(labels), batch_size=16, input_size=32, threads=1)
