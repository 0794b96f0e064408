"""Weights folders, Hugging Face style: ``config.json`` (everything needed to rebuild and preprocess)
plus ``model.safetensors``. Preprocessing is derived from the config, so nothing can drift from it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch.nn as nn
from safetensors.torch import load_file, save_file

from .atomic import replacing, write_bytes_atomically
from .models import create_model

__all__ = ["ModelConfig", "save_weights", "load_weights", "read_config", "CONFIG_NAME", "WEIGHTS_NAME"]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class ModelConfig:
    """What a weights folder holds: architecture, label order, input geometry and how it was made."""

    architecture: str
    labels: list[str]
    input_size: int = 64
    # The side a photo's aligned face is reduced to before input_size: 48 repeats FER+'s own downsampling (what
    # FER+-trained weights expect); a model retrained on sharp photo crops reads them at its input size.
    face_size: int = 48
    # How a face smaller than input_size is enlarged: "nearest" for a model that reduces it again inside.
    enlarge: str = "bilinear"
    in_chans: int = 1
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    mean: float = 0.5
    std: float = 0.5
    grayscale: bool = True
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    format_version: int = 1

    def build_model(self) -> nn.Module:
        return create_model(
            self.architecture, num_classes=len(self.labels), in_chans=self.in_chans, **self.model_kwargs
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in data.items() if key in known})


def read_config(folder: str | Path) -> ModelConfig:
    return ModelConfig.from_dict(json.loads((Path(folder) / CONFIG_NAME).read_text()))


def save_weights(model: nn.Module, config: ModelConfig, folder: str | Path, half: bool = False) -> Path:
    """Write config.json and model.safetensors (float16 when ``half``; loading restores float32)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        state[key] = tensor
    with replacing(folder / WEIGHTS_NAME) as temporary:
        save_file(state, str(temporary), metadata={"format": "pt"})
    write_bytes_atomically(folder / CONFIG_NAME, (json.dumps(asdict(config), indent=2, sort_keys=True) + "\n").encode())
    return folder


def load_weights(folder: str | Path) -> tuple[nn.Module, ModelConfig]:
    """Rebuild the model from config.json and load its weights in float32, in eval mode."""
    folder = Path(folder)
    if not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(f"{folder} is not a weights folder (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    config = read_config(folder)
    model = config.build_model()
    state = {
        key: value.float() if value.is_floating_point() else value
        for key, value in load_file(folder / WEIGHTS_NAME).items()
    }
    model.load_state_dict(state)
    model.eval()
    return model, config
