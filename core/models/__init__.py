"""Model architectures, built by name: ``create_model("eff_resnet18" | "shufflenet_v2" | "resnet18")``."""

from . import baseline, student, teacher  # noqa: F401  (registers the builders)
from ._registry import create_model, list_models, register_model
from .teacher import EFFResNet18, FFEModule

__all__ = ["create_model", "list_models", "register_model", "EFFResNet18", "FFEModule"]
