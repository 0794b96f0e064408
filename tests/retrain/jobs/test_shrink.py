"""Shrinking a candidate toward the current model: the full candidate when it already holds, a blend otherwise."""

from __future__ import annotations

from pathlib import Path

import torch

from core.weights import load_weights
from retrain.jobs.shrink import shrink_toward
from retrain.training import Dataset
from tests._retrain_fixtures import LABELS, tiny_weights


def _probe(count: int = 12) -> Dataset:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 1, 48, 48), dtype=torch.uint8, generator=generator)
    labels = torch.arange(count) % len(LABELS)
    return Dataset(images, labels, torch.nn.functional.one_hot(labels, len(LABELS)).float())


def test_a_candidate_within_tolerance_is_kept_whole(tmp_path: Path) -> None:
    current, candidate = (
        tiny_weights(tmp_path / "a", "shufflenet_v2", 0),
        tiny_weights(tmp_path / "b", "shufflenet_v2", 1),
    )
    result = shrink_toward(current, candidate, _probe(), tolerance=1.0, out=tmp_path / "out")
    assert result.folder == candidate and result.fraction == 1.0
    assert set(result.probe_accuracy) == {"current", "1"}


def test_a_candidate_that_forgets_is_blended_toward_the_current_model(tmp_path: Path) -> None:
    current, candidate = (
        tiny_weights(tmp_path / "a", "shufflenet_v2", 0),
        tiny_weights(tmp_path / "b", "shufflenet_v2", 1),
    )
    result = shrink_toward(current, candidate, _probe(), tolerance=-1.0, out=tmp_path / "out", bisections=1)
    assert result.folder == tmp_path / "out" and result.fraction == 0.0  # nothing holds: the current model's weights
    assert set(result.probe_accuracy) == {"current", "1", "0.5"}
    result = shrink_toward(current, candidate, _probe(), tolerance=1.0 - 1e-9, out=tmp_path / "half", bisections=1)
    assert result.fraction in (0.5, 1.0)
    blended, config = load_weights(shrink_toward(current, candidate, _probe(), -1.0, tmp_path / "zero", 1).folder)
    assert config.training["shrunk_toward_current"] == 0.0
    name, value = next((k, v) for k, v in blended.state_dict().items() if v.is_floating_point() and v.numel() > 1)
    assert torch.allclose(value, load_weights(current)[0].state_dict()[name], atol=2e-3)  # half-precision storage
