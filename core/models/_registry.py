"""Name -> builder registry, so models are created from a string kept in config.json."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn as nn

__all__ = ["register_model", "create_model", "list_models"]

_MODEL_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make a builder reachable as ``create_model(name, ...)``."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODEL_BUILDERS:
            raise ValueError(f"model {name!r} registered twice")
        _MODEL_BUILDERS[name] = builder
        return builder

    return decorate


def list_models() -> list[str]:
    return sorted(_MODEL_BUILDERS)


def create_model(name: str, num_classes: int = 7, **kwargs: Any) -> nn.Module:
    """Build a registered model; ``None`` keyword values are dropped so CLI defaults never override model defaults."""
    try:
        builder = _MODEL_BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {list_models()}") from None
    options = {key: value for key, value in kwargs.items() if value is not None}
    return builder(num_classes=num_classes, **options)
