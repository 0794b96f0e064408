"""Everything the handlers need, built once: models, the annotation store, the retrain service, settings.

``Services`` is passed to :func:`webapp.app.build_demo`; tests build it around random-init weights in a
temporary data directory, ``tsnet serve`` and the Space build it from the environment with
:func:`load_services`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from core import Classifier, load_classifier
from core.classifier import shipped_weights_folder
from labeling import AnnotationStore
from labeling.faces import store_face_finder

from .access import SessionBook
from .settings import Settings

__all__ = ["ModelUnavailable", "Services", "load_services", "weights_folder", "write_examples"]

log = logging.getLogger(__name__)


class ModelUnavailable(FileNotFoundError):
    """No weights to serve: the message says where the app looked and how to get a model."""


def weights_folder(home: Path, name: str, explicit: Path | None = None) -> Path | None:
    """An explicit folder, else the registry's served version (``home/served/<name>``), else the shipped one."""
    for folder in (explicit, home / "served" / name, shipped_weights_folder(name)):
        if folder is not None and (Path(folder) / "config.json").is_file():
            return Path(folder)
    if explicit is not None:
        raise ModelUnavailable(f"{explicit} is not a weights folder (no config.json)")
    return None


def write_examples(folder: Path) -> list[Path]:
    """Example photos generated from scikit-image's astronaut (public domain), never dataset images."""
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    astronaut = Image.fromarray(data.astronaut())
    paths = [folder / "astronaut.jpg", folder / "astronaut-mirrored-small.jpg"]
    if not paths[0].is_file():
        astronaut.save(paths[0], quality=90)
    if not paths[1].is_file():
        astronaut.transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize((320, 320)).save(paths[1], quality=90)
    return paths


@dataclass
class Services:
    """The app's collaborators. Models are swapped in place after a promote or rollback (``reload_models``)."""

    settings: Settings
    store: AnnotationStore
    student: Classifier
    teacher: Classifier | None = None
    retrain: Any = None  # retrain.RetrainService when the retrain package is available
    examples: list[Path] = field(default_factory=list)
    sessions: SessionBook = field(default_factory=SessionBook)
    # pytorch-grad-cam keeps activations on the CAM object between hook and backward: one explanation at a time
    cam_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def registry(self) -> Any:
        return getattr(self.retrain, "registry", None)

    def model_version(self) -> str:
        """The version that answers predictions: the registry's current one when it serves ours, else the folder's."""
        current = None
        if self.registry is not None and Path(self.student.source).parent.name == "served":
            try:
                current = self.registry.current()
            except Exception:  # an unreadable registry must not break prediction
                log.exception("registry.current() failed")
        return str(current or self.student.version)

    def reload_models(self) -> None:
        """Serve what the registry now publishes (after promote or rollback); explicit paths stay pinned."""
        home = self.settings.home
        student_folder = weights_folder(home, "student", self.settings.student_path)
        if student_folder is not None:
            self.student = load_classifier(student_folder)
            self.store.classifier = self.student
        teacher_folder = weights_folder(home, "teacher", self.settings.teacher_path)
        if teacher_folder is not None:
            self.teacher = load_classifier(teacher_folder)
            self.store.teacher = self.teacher


def _retrain_service(home: Path, store: AnnotationStore) -> Any:
    """The retrain package's service, or None (with a log line) while it is not installed."""
    try:
        from retrain import RetrainService
    except ImportError:
        log.warning("retrain.RetrainService is not available: the Retrain tab will be read-only")
        return None
    return RetrainService(home=home, store=store)


def load_services(settings: Settings | None = None, with_retrain: bool = True) -> Services:
    """Open the data directory: models (served, else shipped), the SQLite store, the retrain service, examples."""
    settings = settings or Settings.from_env()
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    student_folder = weights_folder(home, "student", settings.student_path)
    if student_folder is None:
        raise ModelUnavailable(
            f"no student model to serve: neither {home / 'served' / 'student'} nor "
            f"{shipped_weights_folder('student')} holds a weights folder (config.json + model.safetensors). "
            "Train one (tsnet train ...), point TSNET_STUDENT at a folder, or install a package with shipped weights."
        )
    student = load_classifier(student_folder)
    teacher_folder = weights_folder(home, "teacher", settings.teacher_path)
    teacher = load_classifier(teacher_folder) if teacher_folder is not None else None
    store = AnnotationStore(
        home / "annotations.db",
        detect_faces=store_face_finder(student.face_detector),
        classifier=student,
        teacher=teacher,
    )
    retrain = _retrain_service(home, store) if with_retrain else None
    return Services(settings, store, student, teacher, retrain, write_examples(home / "examples"))
