"""Degrade training faces the way real photos differ from FER+'s web crops: JPEG artefacts, soft focus, lost
resolution, exposure (gamma), light from one side and sensor noise. Each is drawn per image, on whole batches.

A model that only saw FER+ learns its look; these keep the expression the signal and the rendering noise.
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

__all__ = ["jpeg_batch", "degrade_like_photos"]


def jpeg_batch(
    images: torch.Tensor, generator: torch.Generator, prob: float = 0.3, quality: tuple[int, int] = (25, 85)
) -> torch.Tensor:
    """uint8 (B, 1, H, W) with a random ``prob`` of them JPEG-compressed at a random quality (PIL round trip)."""
    chosen = torch.nonzero(torch.rand(len(images), generator=generator) < prob).flatten().tolist()
    if not chosen:
        return images
    qualities = torch.randint(quality[0], quality[1] + 1, (len(chosen),), generator=generator).tolist()
    out = images.clone()
    for index, level in zip(chosen, qualities):
        buffer = io.BytesIO()
        Image.fromarray(images[index, 0].numpy()).save(buffer, format="JPEG", quality=int(level))
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            out[index, 0] = torch.from_numpy(np.array(decoded.convert("L"), dtype=np.uint8))
    return out


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image separable Gaussian blur of (B, 1, H, W); sigma (B,) in pixels, 0 leaves an image unchanged."""
    radius = 3
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernels = torch.exp(-(offsets[None] ** 2) / (2 * sigma.clamp(min=1e-3)[:, None] ** 2))
    kernels = kernels / kernels.sum(dim=1, keepdim=True)  # (B, 7)
    batch = x.shape[0]
    grouped = x.view(1, batch, *x.shape[-2:])
    padded = F.pad(grouped, (radius, radius, 0, 0), mode="replicate")
    rows = F.conv2d(padded, kernels.view(batch, 1, 1, -1), groups=batch)
    padded = F.pad(rows, (0, 0, radius, radius), mode="replicate")
    return F.conv2d(padded, kernels.view(batch, 1, -1, 1), groups=batch).view_as(x)


def degrade_like_photos(x: torch.Tensor, generator: torch.Generator, prob: float = 0.5) -> torch.Tensor:
    """Float faces in [0, 1], (B, 1, S, S): each image independently gets, with probability ``prob`` each, blur
    (sigma 0.3-1.2 px at 48 px scale), a resolution loss (down to 40-80 % and back up; one size per batch),
    gamma 0.6-1.6, a light gradient from a random side (up to +-30 %) and Gaussian noise (sigma up to 0.04)."""
    batch, size = x.shape[0], x.shape[-1]

    def pick() -> torch.Tensor:
        return (torch.rand(batch, generator=generator) < prob).float()

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(batch, generator=generator) * (high - low) + low

    scale = size / 48.0
    sigma = uniform(0.3, 1.2) * scale * pick()
    x = torch.where((sigma > 0).view(-1, 1, 1, 1), _gaussian_blur(x, sigma), x)
    low_res = pick().bool()
    if low_res.any():
        side = max(int(size * float(uniform(0.4, 0.8)[0])), 8)
        small = F.interpolate(x[low_res], size=(side, side), mode="bilinear", align_corners=False, antialias=True)
        x = x.clone()
        x[low_res] = F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
    gamma = torch.where(pick().bool(), uniform(0.6, 1.6), torch.ones(batch)).view(-1, 1, 1, 1)
    x = x.clamp(1e-4, 1.0) ** gamma
    angle = uniform(0, 2 * np.pi)
    strength = uniform(-0.3, 0.3) * pick()
    ramp = torch.linspace(-1, 1, size)
    gradient = torch.cos(angle).view(-1, 1, 1) * ramp.view(1, 1, -1) + torch.sin(angle).view(-1, 1, 1) * ramp.view(
        1, -1, 1
    )
    x = x * (1 + strength.view(-1, 1, 1) * gradient)[:, None]
    noise = uniform(0.0, 0.04) * pick()
    x = x + torch.randn(x.shape, generator=generator) * noise.view(-1, 1, 1, 1)
    return x.clamp_(0.0, 1.0)
