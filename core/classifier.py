"""A loaded model plus the preprocessing its config describes: the one way the product classifies faces."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from .data.tensors import preprocess_batch, to_gray_array
from .weights import ModelConfig, load_weights

if TYPE_CHECKING:
    from .explain import GradCamExplainer
    from .faces import Face, FaceDetector

__all__ = ["Classifier", "load_classifier", "shipped_weights_folder", "SHIPPED_MODELS", "BACKENDS"]

SHIPPED_MODELS = ("student", "teacher")
BACKENDS = ("torch", "onnx", "litert")
_PRETRAINED_DIR = Path(__file__).parent / "pretrained"


def shipped_weights_folder(name: str) -> Path:
    """Where the weights shipped with the package live (``core/pretrained/<name>``)."""
    return _PRETRAINED_DIR / name


class Classifier:
    """Face-crop classifier: ``predict_crops`` takes PIL face crops of any size or mode."""

    backend = "torch"  # the engine that classifies, one of BACKENDS (reported by ``tsnet predict --json``)

    def __init__(self, model: nn.Module, config: ModelConfig, source: str = "") -> None:
        self.model = model.eval()
        self.config = config
        self.source = source
        self.labels: tuple[str, ...] = tuple(config.labels)

    @property
    def version(self) -> str:
        return str(self.config.training.get("version", Path(self.source).name or "unknown"))

    def crops_to_tensor(self, images: Sequence[Image.Image]) -> torch.Tensor:
        arrays = np.stack([to_gray_array(image) for image in images])
        batch = torch.from_numpy(arrays)[:, None]
        return preprocess_batch(batch, self.config.input_size, self.config.mean, self.config.std)

    @torch.inference_mode()
    def predict_logits(self, batch: torch.Tensor, flip_average: bool = False) -> torch.Tensor:
        logits = self.model(batch)
        if flip_average:
            logits = (logits + self.model(torch.flip(batch, dims=[3]))) / 2
        return logits

    def predict_gray_batch(self, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Probabilities for uint8 grayscale faces (N, 1, H, W), e.g. a dataset held in memory."""
        outputs = []
        flip = bool(self.config.training.get("flip_tta", False))
        for start in range(0, len(images), batch_size):
            batch = preprocess_batch(
                images[start : start + batch_size], self.config.input_size, self.config.mean, self.config.std
            )
            outputs.append(torch.softmax(self.predict_logits(batch, flip), dim=1))
        if not outputs:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return torch.cat(outputs).numpy()

    def predict_crops(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Probabilities of shape (N, len(labels)) for face crops, in ``labels`` order."""
        if len(images) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        logits = self.predict_logits(self.crops_to_tensor(images), self.config.training.get("flip_tta", False))
        return torch.softmax(logits, dim=1).numpy()

    @cached_property
    def face_detector(self) -> FaceDetector:
        """The detector ``predict_image`` uses by default, created on first use."""
        from .faces import FaceDetector

        return FaceDetector()

    @cached_property
    def gradcam(self) -> GradCamExplainer:
        """Grad-CAM for this model, built once (see :mod:`core.explain`)."""
        from .explain import GradCamExplainer

        return GradCamExplainer(self)

    def predict_image(self, image: Image.Image, detector: FaceDetector | None = None) -> list[Face]:
        """Every confident face in a photo, classified; boxes are in the upright (EXIF-applied) photo's pixels."""
        faces = (detector or self.face_detector).detect(image)
        probabilities = self.predict_crops([face.aligned_crop for face in faces])
        return [face.with_probs(self.labels, row) for face, row in zip(faces, probabilities)]


def load_classifier(name_or_path: str | Path = "student", backend: str = "torch") -> Classifier:
    """``"student"`` / ``"teacher"`` (the shipped weights), a weights folder, an ``.onnx`` or a ``.tflite``.

    The data folder's served version is a weights folder: ``retrain.layout.DataLayout.weights_folder`` finds it.

    ``backend="onnx"`` serves a weights folder through ONNX Runtime, ``backend="litert"`` (student only)
    through LiteRT with XNNPACK: same API, a fraction of the latency.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    text = str(name_or_path)
    if text.endswith(".onnx"):
        from .onnx_backend import OnnxClassifier

        return OnnxClassifier.from_file(text)
    if text.endswith(".tflite"):
        from .litert_backend import LiteRtClassifier

        return LiteRtClassifier.from_file(text)
    folder = shipped_weights_folder(text) if text in SHIPPED_MODELS else Path(text)
    if text in SHIPPED_MODELS and not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no shipped {text!r} weights found at {folder}")
    model, config = load_weights(folder)
    classifier = Classifier(model, config, source=str(folder))
    if backend == "onnx":
        from .onnx_backend import OnnxClassifier

        return OnnxClassifier.from_classifier(classifier)
    if backend == "litert":
        from .litert_backend import LiteRtClassifier

        return LiteRtClassifier.from_classifier(classifier)
    return classifier
