"""Photo-like degradation of training faces: JPEG, blur, resolution, gamma, side light, noise."""

from __future__ import annotations

import numpy as np
import torch

from core.data import augment_batch
from core.data.photo_augment import degrade_like_photos, jpeg_batch
from tests._core_fixtures import pattern_image


def _faces(count: int = 16, size: int = 48) -> torch.Tensor:
    rng = np.random.default_rng(0)
    return torch.from_numpy(np.stack([np.asarray(pattern_image(i % 7, rng, size)) for i in range(count)]))[:, None]


def test_jpeg_changes_about_the_chosen_share_and_keeps_shape_and_type() -> None:
    faces = _faces(64)
    out = jpeg_batch(faces, torch.Generator().manual_seed(0), prob=0.5)
    changed = (out != faces).flatten(1).any(dim=1)
    assert out.shape == faces.shape and out.dtype == torch.uint8
    assert 16 <= int(changed.sum()) <= 48
    assert torch.equal(jpeg_batch(faces, torch.Generator().manual_seed(0), prob=0.0), faces)


def test_degradation_is_seeded_bounded_and_off_at_zero_probability() -> None:
    x = _faces().float() / 255
    a = degrade_like_photos(x.clone(), torch.Generator().manual_seed(1))
    b = degrade_like_photos(x.clone(), torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)
    same = degrade_like_photos(x.clone(), torch.Generator().manual_seed(1), prob=0.0)
    assert torch.allclose(same, x.clamp(1e-4, 1.0), atol=1e-6)


def test_augment_batch_with_photo_keeps_the_model_input_contract() -> None:
    batch = augment_batch(_faces(), 64, 0.5, 0.5, torch.Generator().manual_seed(3), photo=True)
    assert batch.shape == (16, 1, 64, 64) and torch.isfinite(batch).all()
    assert batch.min() >= -1.0 and batch.max() <= 1.0
