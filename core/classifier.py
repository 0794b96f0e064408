"""A loaded model plus the preprocessing its config describes: the one way the product classifies faces.

A :class:`Classifier` wraps an :class:`Engine`, the one small interface a forward pass sits behind: PyTorch
(:class:`TorchEngine`, here), ONNX Runtime (:mod:`.onnx_backend`) or LiteRT (:mod:`.litert_backend`), so callers
never care which engine classifies. The engines know nothing of the classifier; Grad-CAM is built over a
classifier from outside (:func:`core.explain.explainer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from .data.tensors import faces_at, preprocess_batch, to_gray_array
from .weights import ModelConfig, load_weights

if TYPE_CHECKING:
    from .faces import Face, FaceDetector

__all__ = [
    "BACKENDS",
    "SHIPPED_MODELS",
    "Classifier",
    "Engine",
    "TorchEngine",
    "compile_classifier",
    "load_classifier",
    "shipped_weights_folder",
]

SHIPPED_MODELS = ("student", "teacher")
BACKENDS = ("torch", "onnx", "litert")
_PRETRAINED_DIR = Path(__file__).parent / "pretrained"


def shipped_weights_folder(name: str) -> Path:
    """Where the weights shipped with the package live (``core/pretrained/<name>``)."""
    return _PRETRAINED_DIR / name


class Engine(Protocol):
    """What runs a classifier's forward pass."""

    name: str  # one of BACKENDS (reported by ``tsnet predict --json``)

    def logits(self, batch: torch.Tensor, flip_average: bool = False) -> torch.Tensor:
        """Logits for a preprocessed batch (N, in_chans, input_size, input_size), optionally mirror-averaged."""
        ...

    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        """Class probabilities for uint8 grayscale faces (N, H, W), preprocessed as the config says."""
        ...


class TorchEngine:
    """The PyTorch model itself."""

    name = "torch"

    def __init__(self, model: nn.Module, config: ModelConfig) -> None:
        self.model = model
        self.config = config

    @torch.inference_mode()
    def logits(self, batch: torch.Tensor, flip_average: bool = False) -> torch.Tensor:
        logits = self.model(batch)
        if flip_average:
            logits = (logits + self.model(torch.flip(batch, dims=[3]))) / 2
        return logits

    def probabilities(self, faces: np.ndarray) -> np.ndarray:
        config = self.config
        batch = preprocess_batch(
            torch.from_numpy(faces)[:, None], config.input_size, config.mean, config.std, config.enlarge
        )
        logits = self.logits(batch, bool(config.training.get("flip_tta", False)))
        return torch.softmax(logits, dim=1).numpy()


class Classifier:
    """Face-crop classifier: ``predict_crops`` takes PIL face crops of any size or mode.

    ``model`` is the PyTorch model (``None`` for a classifier loaded from an exported file: it cannot explain);
    ``engine`` runs the forward pass, PyTorch's own unless another is given.
    """

    def __init__(
        self, model: nn.Module | None, config: ModelConfig, source: str = "", engine: Engine | None = None
    ) -> None:
        self.model = model.eval() if model is not None else None
        self.config = config
        self.source = source
        self.labels: tuple[str, ...] = tuple(config.labels)
        if engine is None:
            if model is None:
                raise ValueError("a classifier needs a PyTorch model or an engine")
            engine = TorchEngine(self.model, config)
        self.engine = engine

    @property
    def backend(self) -> str:
        """The engine that classifies, one of BACKENDS."""
        return self.engine.name

    @property
    def version(self) -> str:
        return str(self.config.training.get("version", Path(self.source).name or "unknown"))

    def crops_to_tensor(self, images: Sequence[Image.Image]) -> torch.Tensor:
        arrays = np.stack([to_gray_array(image, self.config.face_size) for image in images])
        batch = torch.from_numpy(arrays)[:, None]
        config = self.config
        return preprocess_batch(batch, config.input_size, config.mean, config.std, config.enlarge)

    def predict_logits(self, batch: torch.Tensor, flip_average: bool = False) -> torch.Tensor:
        return self.engine.logits(batch, flip_average)

    def predict_gray_batch(self, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Probabilities for uint8 grayscale faces (N, 1, H, W), e.g. a dataset held in memory; faces sharper than
        the model's ``face_size`` (photo crops) are first reduced to it, as a photo's crop is."""
        if images.shape[-1] > self.config.face_size:
            images = faces_at(images, self.config.face_size)
        outputs = []
        config = self.config
        flip = bool(config.training.get("flip_tta", False))
        for start in range(0, len(images), batch_size):
            batch = preprocess_batch(
                images[start : start + batch_size], config.input_size, config.mean, config.std, config.enlarge
            )
            outputs.append(torch.softmax(self.predict_logits(batch, flip), dim=1))
        if not outputs:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return torch.cat(outputs).numpy()

    def predict_crops(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Probabilities of shape (N, len(labels)) for face crops, in ``labels`` order."""
        if len(images) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return self.engine.probabilities(np.stack([to_gray_array(image, self.config.face_size) for image in images]))

    @cached_property
    def face_detector(self) -> FaceDetector:
        """The detector ``predict_image`` uses by default, created on first use."""
        from .faces import FaceDetector

        return FaceDetector()

    def predict_image(self, image: Image.Image, detector: FaceDetector | None = None) -> list[Face]:
        """Every confident face in a photo, classified; boxes are in the upright (EXIF-applied) photo's pixels."""
        faces = (detector or self.face_detector).detect(image)
        probabilities = self.predict_crops([face.aligned_crop for face in faces])
        return [face.with_probs(self.labels, row) for face, row in zip(faces, probabilities)]


def _compiled_engine(backend: str) -> type:
    if backend == "onnx":
        from .onnx_backend import OnnxEngine

        return OnnxEngine
    if backend == "litert":
        from .litert_backend import LiteRtEngine

        return LiteRtEngine
    raise ValueError(f"{backend!r} is no compiled backend; choose onnx or litert")


def compile_classifier(classifier: Classifier, backend: str, calibration: np.ndarray | None = None) -> Classifier:
    """The same model served by ONNX Runtime or LiteRT; int8 when ``calibration`` faces (uint8 N, 1, H, W) are
    given. The PyTorch model stays, for Grad-CAM."""
    if classifier.model is None:
        raise ValueError("only a classifier with its PyTorch model can be compiled")
    engine = _compiled_engine(backend).from_model(classifier.model, classifier.config, calibration)
    return Classifier(classifier.model, classifier.config, classifier.source, engine)


def load_classifier(name_or_path: str | Path = "student", backend: str = "torch") -> Classifier:
    """``"student"`` / ``"teacher"`` (the shipped weights), a weights folder, an ``.onnx`` or a ``.tflite``.

    The data folder's served version is a weights folder: ``retrain.layout.DataLayout.weights_folder`` finds it.

    ``backend="onnx"`` serves a weights folder through ONNX Runtime, ``backend="litert"`` (student only)
    through LiteRT with XNNPACK: same API, a fraction of the latency.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    text = str(name_or_path)
    for suffix, kind in ((".onnx", "onnx"), (".tflite", "litert")):
        if text.endswith(suffix):
            engine, config = _compiled_engine(kind).from_file(text)
            return Classifier(None, config, source=text, engine=engine)
    folder = shipped_weights_folder(text) if text in SHIPPED_MODELS else Path(text)
    if text in SHIPPED_MODELS and not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no shipped {text!r} weights found at {folder}")
    model, config = load_weights(folder)
    classifier = Classifier(model, config, source=str(folder))
    return classifier if backend == "torch" else compile_classifier(classifier, backend)
