"""Model architectures, built by name (``create_model("eff_face_resnet")``; ``list_models()`` names them all)."""

from . import baseline, face_head, face_teacher, student, teacher  # noqa: F401  (registers the builders)
from ._registry import create_model, list_models, register_model
from .dlib_resnet import DlibFaceResNet
from .face_head import StudentWithFaceHead
from .face_teacher import EFFFaceResNet
from .teacher import EFFResNet18, FFEModule

__all__ = [
    "create_model",
    "list_models",
    "register_model",
    "EFFResNet18",
    "EFFFaceResNet",
    "DlibFaceResNet",
    "FFEModule",
    "StudentWithFaceHead",
]
