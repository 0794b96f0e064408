"""Input stems shared by the models: the paper's 224 px stem and a low-resolution one for 48-64 px faces."""

from __future__ import annotations

STEMS = ("imagenet", "lowres")


def check_stem(stem: str) -> str:
    """``imagenet`` keeps the stride-2 conv and the max-pool; ``lowres`` drops the max-pool (4x the spatial detail)."""
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; choose one of {STEMS}")
    return stem
