"""Which weights answer a prediction: one immutable snapshot, replaced by reference when the registry moves.

A request takes the snapshot once (:meth:`ServedModels.current`) and uses its student, teacher and version
for everything it does, so the version it reports is the version whose weights answered, even when a
promote, a rollback or a background retrain switches the registry mid-request. Weights are loaded from the
registry's version folder itself (``registry/versions/<v>``, never changed once registered), not through the
``served`` link, so the version name and the weights cannot come from two different moments.

The registry may be moved by another process (``tsnet models promote``, the retrain worker): every
:meth:`current` compares the registry's current version with the snapshot's and loads the new one when they
differ. One loader at a time; requests already holding the old snapshot finish on it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import Classifier, load_classifier
from core.classifier import shipped_weights_folder
from core.explain import explainer
from retrain.layout import DataLayout

from .settings import Settings

__all__ = ["RETRY_SECONDS", "ModelSnapshot", "ModelUnavailable", "ServedModels", "card_metrics", "weights_folder"]

log = logging.getLogger(__name__)
_LOAD_ATTEMPTS = 3  # a promote may rename the hand-placed base folder while we read it: look again
RETRY_SECONDS = 30.0  # how often a version that failed to load is tried again


class ModelUnavailable(FileNotFoundError):
    """No weights to serve: the message says where the app looked and how to get a model."""


def card_metrics(folder: str | Path) -> dict[str, Any]:
    """The metrics a weights folder's config.json (its model card's source) records, in a registry version's
    shape: the scalars as they are, and the validation set under ``evaluations`` with its confusion matrix and
    labels. ``{}`` when the folder records none. The shipped base version has no metrics.json: this is its."""
    from core.weights import read_config

    try:
        config = read_config(folder)
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    metrics = dict(config.metrics or {})
    matrix = metrics.pop("val_confusion_matrix", None)
    if not matrix:
        return metrics
    evaluation = {
        "accuracy": metrics.get("val_accuracy"),
        "macro_recall": metrics.get("val_macro_recall"),
        "samples": metrics.get("val_samples"),
        "per_class_accuracy": metrics.get("val_per_class_accuracy"),
        "confusion_matrix": matrix,
        "labels": list(config.labels),
    }
    name = str(config.training.get("val_data") or "validation")
    return {**metrics, "evaluations": {name: evaluation}}


def weights_folder(home: Path, name: str, explicit: Path | None = None) -> Path | None:
    """An explicit folder, else the registry's served version (``home/served/<name>``), else the shipped one."""
    for folder in (explicit, DataLayout(home).weights_folder(name)):
        if folder is not None and (Path(folder) / "config.json").is_file():
            return Path(folder)
    if explicit is not None:
        raise ModelUnavailable(f"{explicit} is not a weights folder (no config.json)")
    return None


@dataclass(frozen=True)
class ModelSnapshot:
    """Student, teacher and the version they are; never changed after it is built."""

    student: Classifier
    teacher: Classifier | None
    version: str


def _warm(classifier: Classifier) -> None:
    """Build the student's lazily created detector and Grad-CAM (every prediction uses both) before it serves.

    The teacher's Grad-CAM is left to its first use: only "explain with the teacher" needs it, and building
    it (a private model copy) is the slow part of a swap. Two requests building one at once waste work only.
    """
    _ = classifier.face_detector, explainer(classifier)


def _load(folder: Path | None) -> Classifier | None:
    return load_classifier(folder) if folder is not None and (folder / "config.json").is_file() else None


class ServedModels:
    """The current :class:`ModelSnapshot`, following ``registry`` unless the settings pin a student folder."""

    def __init__(
        self, settings: Settings, registry: Any = None, on_swap: Callable[[ModelSnapshot], None] | None = None
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.on_swap = on_swap
        self._lock = threading.Lock()
        self._failed: tuple[str, float] | None = None  # a version that would not load, and when it was tried
        self._snapshot = self._build(self._registry_version())
        if on_swap is not None:
            on_swap(self._snapshot)

    @property
    def follows_registry(self) -> bool:
        return self.registry is not None and self.settings.student_path is None

    def _registry_version(self) -> str | None:
        if not self.follows_registry:
            return None
        try:
            return str(self.registry.current())
        except Exception:  # an unreadable registry must not stop prediction: keep serving what is loaded
            log.warning("the model registry could not be read; serving the loaded version", exc_info=True)
            return None

    def _folders(self, version: str | None) -> tuple[Path | None, Path | None]:
        settings, home = self.settings, self.settings.home
        if version is None:  # pinned, or no registry: explicit folder, served link, shipped default
            student = weights_folder(home, "student", settings.student_path)
            return student, weights_folder(home, "teacher", settings.teacher_path)
        teacher = settings.teacher_path or self.registry.weights_folder(version, "teacher")
        return Path(self.registry.weights_folder(version, "student")), Path(teacher)

    def _load(self, version: str | None) -> ModelSnapshot:
        student_folder, teacher_folder = self._folders(version)
        student = _load(student_folder)
        if student is None:
            raise ModelUnavailable(
                f"no student model to serve: neither {self.settings.home / 'served' / 'student'} nor "
                f"{shipped_weights_folder('student')} holds a weights folder (config.json + model.safetensors). "
                "Train one (tsnet train ...), point TSNET_STUDENT at a folder, or install a package with shipped "
                "weights."
            )
        teacher = _load(teacher_folder)
        _warm(student)
        return ModelSnapshot(student, teacher, version or student.version)

    def _build(self, version: str | None) -> ModelSnapshot:
        """Load ``version``; when its folder moves mid-load (a promote adopting the base folder), ask again."""
        for _ in range(_LOAD_ATTEMPTS - 1):
            try:
                return self._load(version)
            except ModelUnavailable:
                raise
            except FileNotFoundError:
                if version is None:
                    raise
                version = self._registry_version() or version
        return self._load(version)

    def current(self) -> ModelSnapshot:
        """The snapshot to answer with, reloaded first when the registry now serves another version.

        A version that fails to load is retried at most every ``RETRY_SECONDS``; meanwhile the loaded snapshot
        keeps answering (and reports its own version, so answers stay truthful).
        """
        snapshot = self._snapshot
        wanted = self._registry_version()
        if wanted is None or wanted == snapshot.version:
            return snapshot
        failed = self._failed
        if failed is not None and failed[0] == wanted and time.monotonic() - failed[1] < RETRY_SECONDS:
            return snapshot
        try:
            return self._swap(wanted)
        except Exception:
            log.exception("model version %s could not be loaded; still serving %s", wanted, snapshot.version)
            self._failed = (wanted, time.monotonic())
            return self._snapshot

    def reload(self) -> ModelSnapshot:
        """Load what the registry (or the pinned folders) serve now, even when the version looks unchanged."""
        return self._swap(self._registry_version(), force=True)

    def _swap(self, wanted: str | None, force: bool = False) -> ModelSnapshot:
        with self._lock:  # one loader; the others wait and then find the new snapshot
            if not force and self._snapshot.version == wanted:
                return self._snapshot
            snapshot = self._build(wanted)
            self._snapshot = snapshot  # one reference assignment: readers see the old or the new, never a mix
            self._failed = None
            log.info("serving model version %s", snapshot.version)
        if self.on_swap is not None:
            self.on_swap(snapshot)
        return snapshot
