"""What the compiled engines (ONNX Runtime, LiteRT) share: NumPy preprocessing, export and the engine interface.

A compiled engine only supplies :meth:`CompiledEngine.run` (logits for a preprocessed batch) and its file format;
this base gives it the :class:`~core.classifier.Engine` interface a :class:`~core.classifier.Classifier` wraps.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .weights import ModelConfig

__all__ = ["CompiledEngine", "Preprocessor", "CONFIG_METADATA_KEY"]

CONFIG_METADATA_KEY = "tsnet_config"  # config.json travels inside the exported file's metadata


class Preprocessor:
    """``preprocess_batch`` in NumPy: the bilinear resize as two small matrix products (exactly the same maps).

    Interpolation is linear and separable, so resizing an identity matrix with PyTorch yields the matrix
    that performs PyTorch's resize; this avoids ~0.1 ms of tensor overhead per single-face call.
    """

    def __init__(self, config: ModelConfig) -> None:
        self.size = config.input_size
        self.mean, self.std = config.mean, config.std
        self._resizes: dict[int, np.ndarray] = {}
        self._matrix(config.face_size)  # the side photo crops arrive at, ready before the first call

    def _matrix(self, source_size: int) -> np.ndarray:
        """(size, source) resize matrix, made once per source side (stored 48 px faces, sharp photo crops)."""
        if source_size not in self._resizes:
            # Resize along the width: PyTorch's antialiased kernel differs along a height of 1.
            basis = torch.eye(source_size).reshape(source_size, 1, 1, source_size)
            rows = F.interpolate(basis, size=(1, self.size), mode="bilinear", align_corners=False, antialias=True)
            self._resizes[source_size] = rows.reshape(source_size, self.size).T.numpy().astype(np.float32)
        return self._resizes[source_size]

    def __call__(self, faces: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W) -> normalised float32 (N, 1, size, size)."""
        pixels = faces.astype(np.float32) * (1.0 / 255.0)
        if pixels.shape[-1] != self.size:
            resize = self._matrix(pixels.shape[-1])
            pixels = resize @ pixels @ resize.T
        return ((pixels - self.mean) / self.std)[:, None].astype(np.float32, copy=False)


class CompiledEngine:
    """A forward pass in a compiled engine, from a file of its format (see :meth:`export`).

    Subclasses supply ``name``, ``file_kind``, the export steps (:meth:`_float_graph`, :meth:`_quantize`,
    :meth:`_with_metadata`, :meth:`read_metadata`), :meth:`_load` and :meth:`run`.
    """

    name = ""  # "onnx", "litert": the backend, as ``Classifier.backend`` reports it
    file_kind = ""  # "onnx", "tflite": the file suffix and the ``tsnet export-...`` command

    def __init__(self, graph: bytes, config: ModelConfig) -> None:
        self.labels = tuple(config.labels)
        # Mirror-image averaging as the model was validated; switch off to halve the per-face cost.
        self.flip_tta = bool(config.training.get("flip_tta", False))
        self._preprocess = Preprocessor(config)
        self._load(graph)

    def _load(self, graph: bytes) -> None:
        """Prepare the engine for ``graph`` (fail here, on load, if it is unusable)."""
        raise NotImplementedError

    @classmethod
    def export(
        cls,
        model: nn.Module,
        config: ModelConfig,
        path: str | Path | None = None,
        calibration: np.ndarray | None = None,
    ) -> bytes:
        """The engine's file for ``model`` (written to ``path`` when given); int8 when ``calibration`` faces are given.

        ``calibration``: uint8 grayscale faces (N, 1, H, W), preprocessed here exactly as at inference.
        """
        graph = cls._float_graph(model, config)
        if calibration is not None:
            if len(calibration) == 0:
                raise ValueError("int8 export needs at least one calibration face")
            graph = cls._quantize(graph, Preprocessor(config)(calibration[:, 0]))
        graph = cls._with_metadata(graph, {CONFIG_METADATA_KEY: json.dumps(asdict(config), sort_keys=True)})
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(graph)
        return graph

    @staticmethod
    def _float_graph(model: nn.Module, config: ModelConfig) -> bytes:
        """The engine's float32 file for ``model``."""
        raise NotImplementedError

    @staticmethod
    def _quantize(graph: bytes, faces: np.ndarray) -> bytes:
        """The int8 file, calibrated on preprocessed faces (N, 1, size, size)."""
        raise NotImplementedError

    @staticmethod
    def _with_metadata(graph: bytes, entries: dict[str, str]) -> bytes:
        """``graph`` with named text entries in its metadata."""
        raise NotImplementedError

    @staticmethod
    def read_metadata(graph: bytes) -> dict[str, str]:
        """The named text entries stored in an exported file."""
        raise NotImplementedError

    @classmethod
    def from_model(cls, model: nn.Module, config: ModelConfig, calibration: np.ndarray | None = None) -> CompiledEngine:
        """Export a PyTorch model and load the result (int8 when ``calibration`` faces are given)."""
        return cls(cls.export(model, config, calibration=calibration), config)

    @classmethod
    def from_file(cls, path: str | Path) -> tuple[CompiledEngine, ModelConfig]:
        """Load a file written by ``tsnet export-<file_kind>``, with the config that travels in its metadata."""
        graph = Path(path).read_bytes()
        metadata = cls.read_metadata(graph)
        if CONFIG_METADATA_KEY not in metadata:
            raise ValueError(
                f"{path} was not written by tsnet export-{cls.file_kind} (no {CONFIG_METADATA_KEY} metadata)"
            )
        config = ModelConfig.from_dict(json.loads(metadata[CONFIG_METADATA_KEY]))
        return cls(graph, config), config

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Logits for a preprocessed float32 batch (N, 1, input_size, input_size)."""
        raise NotImplementedError

    def logits(self, batch: torch.Tensor, flip_average: bool = False) -> torch.Tensor:
        array = np.ascontiguousarray(batch.detach().cpu().numpy(), dtype=np.float32)
        logits = self.run(array)
        if flip_average:
            logits = (logits + self.run(np.ascontiguousarray(array[..., ::-1]))) / 2
        return torch.from_numpy(logits)

    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        """Probabilities for uint8 grayscale faces (N, H, W) at the model's ``face_size``: the low-latency path."""
        batch = self._preprocess(faces)
        if self.flip_tta:
            # One call on the faces and their mirror images: cheaper than two calls at batch 1.
            both = self.run(np.concatenate([batch, batch[..., ::-1]]))
            logits = (both[: len(batch)] + both[len(batch) :]) / 2
        else:
            logits = self.run(batch)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
