"""Shared fixtures for the face-pipeline tests: a random-init student weights folder and real photos."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests._weights import write_random_weights

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ferplus"


def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def tiled_astronauts(columns: int, rows: int) -> Image.Image:
    """Several copies of the astronaut side by side: one face per tile."""
    tile = astronaut()
    canvas = Image.new("RGB", (tile.width * columns, tile.height * rows))
    for row in range(rows):
        for column in range(columns):
            canvas.paste(tile, (column * tile.width, row * tile.height))
    return canvas


def encode(image: Image.Image, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


@pytest.fixture(scope="session", name="student_folder")
def student_folder_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A student weights folder with random (seeded) weights: the shipped models are not needed."""
    return write_random_weights(tmp_path_factory.mktemp("weights") / "student", varied_batchnorm=True)


@pytest.fixture(scope="session", name="student")
def student_fixture(student_folder: Path):
    from core import load_classifier

    return load_classifier(student_folder)


def sixteen_bit(image: Image.Image) -> Image.Image:
    """A 16-bit grayscale ("I;16") version of an image, as scanners and medical cameras write them."""
    return Image.fromarray(np.asarray(image.convert("L"), dtype=np.uint16) * 257)


def gray_faces(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 48, 48), dtype=np.uint8)
