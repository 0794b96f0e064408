"""T-SNet core: models, distillation loss, label set, data, metrics, weights and inference."""

from .classifier import Classifier, load_classifier
from .distillation import distillation_loss, hard_loss
from .faces import Face, FaceDetector, FaceStream
from .images import ImageError, open_image
from .labels import FERPLUS8_LABELS, PAPER_LABELS, default_labels, resolve_labels
from .models import create_model, list_models
from .weights import ModelConfig, load_weights, save_weights

__all__ = [
    "Classifier",
    "FERPLUS8_LABELS",
    "Face",
    "FaceDetector",
    "FaceStream",
    "ImageError",
    "ModelConfig",
    "PAPER_LABELS",
    "create_model",
    "default_labels",
    "distillation_loss",
    "hard_loss",
    "list_models",
    "load_classifier",
    "load_weights",
    "open_image",
    "resolve_labels",
    "save_weights",
]
