"""The model registry: versions of the student/teacher pair on disk, the ``served`` link, and their model cards."""

from .versions import BASE_VERSION, METRICS_FILE, MODEL_NAMES, VERSION_FILE, ModelRegistry

__all__ = ["BASE_VERSION", "METRICS_FILE", "MODEL_NAMES", "VERSION_FILE", "ModelRegistry"]
