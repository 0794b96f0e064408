"""Faces held in memory as uint8 tensors, and the per-batch tensor preprocessing and augmentation.

Decoding PNGs once and augmenting whole batches with tensor ops keeps both CPU cores busy on the
model instead of on Python-level per-image transforms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..images import to_eight_bit
from .photo_augment import degrade_like_photos, jpeg_batch

__all__ = ["load_gray_images", "to_gray_array", "faces_at", "preprocess_batch", "augment_batch"]

STORE_SIZE = 48  # FER+ native resolution: what FER+-trained weights read a face at
SHARP_SIZE = 96  # an aligned photo crop's own side: the store keeps faces this sharp, a model reduces them


def to_gray_array(image: Image.Image, size: int = STORE_SIZE) -> np.ndarray:
    """Any PIL image (any mode, any size) -> uint8 grayscale array of ``size`` x ``size``."""
    gray = to_eight_bit(image).convert("L")
    if gray.size != (size, size):
        gray = gray.resize((size, size), Image.BILINEAR)
    return np.asarray(gray, dtype=np.uint8)


def _read(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as image:
        return to_gray_array(image, size)


def faces_at(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 faces (N, 1, H, W) resized to ``size`` exactly as :func:`to_gray_array` resizes one photo crop."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    arrays = [to_gray_array(Image.fromarray(face), size) for face in images[:, 0].numpy()]
    if not arrays:
        return torch.zeros((0, 1, size, size), dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays))[:, None]


def load_gray_images(paths: Sequence[Path], size: int = STORE_SIZE, workers: int = 4) -> torch.Tensor:
    """Decode images into one uint8 tensor of shape (N, 1, size, size)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        arrays = list(pool.map(lambda p: _read(p, size), paths, chunksize=256))
    if not arrays:
        return torch.zeros((0, 1, size, size), dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays))[:, None]


def preprocess_batch(
    images: torch.Tensor, input_size: int, mean: float, std: float, enlarge: str = "bilinear"
) -> torch.Tensor:
    """uint8 (B, 1, H, W) -> normalised float (B, 1, input_size, input_size).

    ``enlarge="nearest"`` enlarges a face by a whole factor by repeating pixels, for a model that reduces it
    again inside (its 2x2 average gives back the very face: a 48 px FER+ face reaches its student unchanged)."""
    x = images.float().div_(255.0)
    side = x.shape[-1]
    if enlarge == "nearest" and side == x.shape[-2] and side < input_size and input_size % side == 0:
        x = F.interpolate(x, scale_factor=input_size // side, mode="nearest")
    elif x.shape[-1] != input_size or x.shape[-2] != input_size:
        x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False, antialias=True)
    return x.sub_(mean).div_(std)


def augment_batch(
    images: torch.Tensor,
    input_size: int,
    mean: float,
    std: float,
    generator: torch.Generator,
    rotate_deg: float = 10.0,
    scale: tuple[float, float] = (0.85, 1.15),
    translate: float = 0.1,
    flip: bool = True,
    jitter: float = 0.3,
    erase_prob: float = 0.25,
    photo: bool = False,
) -> torch.Tensor:
    """Random affine (rotation, scale, shift, mirror), brightness/contrast jitter and erasing, per image; with
    ``photo`` also JPEG, blur, resolution, gamma, side light and noise (:mod:`.photo_augment`)."""
    if photo:
        images = jpeg_batch(images, generator)
    x = images.float().div_(255.0)
    batch = x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(batch, generator=generator) * (high - low) + low

    angle = uniform(-rotate_deg, rotate_deg) * math.pi / 180.0
    zoom = uniform(*scale)
    mirror = torch.where(torch.rand(batch, generator=generator) < 0.5, -1.0, 1.0) if flip else torch.ones(batch)
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = cos * mirror
    theta[:, 0, 1] = -sin
    theta[:, 1, 0] = sin * mirror
    theta[:, 1, 1] = cos
    theta[:, 0, 2] = uniform(-translate, translate) * 2
    theta[:, 1, 2] = uniform(-translate, translate) * 2
    grid = F.affine_grid(theta, [batch, 1, input_size, input_size], align_corners=False)
    if x.shape[-1] != input_size:
        x = F.interpolate(x, size=(input_size, input_size), mode="bilinear", align_corners=False, antialias=True)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    brightness = uniform(1 - jitter, 1 + jitter).view(-1, 1, 1, 1)
    contrast = uniform(1 - jitter, 1 + jitter).view(-1, 1, 1, 1)
    average = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - average) * contrast + average) * brightness
    x = x.clamp_(0.0, 1.0)
    if photo:
        x = degrade_like_photos(x, generator)
    if erase_prob > 0:
        erase = torch.rand(batch, generator=generator) < erase_prob
        side = (uniform(0.15, 0.4) * input_size).long()
        top = (torch.rand(batch, generator=generator) * (input_size - side)).long()
        left = (torch.rand(batch, generator=generator) * (input_size - side)).long()
        rows = torch.arange(input_size).view(1, -1, 1)
        cols = torch.arange(input_size).view(1, 1, -1)
        box = (
            (rows >= top.view(-1, 1, 1))
            & (rows < (top + side).view(-1, 1, 1))
            & (cols >= left.view(-1, 1, 1))
            & (cols < (left + side).view(-1, 1, 1))
            & erase.view(-1, 1, 1)
        )
        x = torch.where(box[:, None], torch.rand(x.shape, generator=generator), x)
    return x.sub_(mean).div_(std)
