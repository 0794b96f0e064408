"""Everything the handlers need, built once: models, the annotation store, the retrain service, settings.

``Services`` is passed to :func:`webapp.app.build_demo`; tests build it around random-init weights in a
temporary data directory, ``tsnet serve`` and the Space build it from the environment with
:func:`load_services`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from core import Classifier
from labeling import AnnotationStore
from labeling.faces import store_face_finder
from retrain.layout import DataLayout

from .access import SessionBook, SignInThrottle
from .models import ModelSnapshot, ModelUnavailable, ServedModels, weights_folder
from .settings import Settings

__all__ = ["ModelUnavailable", "Services", "load_services", "weights_folder", "write_examples"]

log = logging.getLogger(__name__)


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
    """The app's collaborators. ``models`` hands out immutable snapshots; a swap replaces the snapshot."""

    settings: Settings
    store: AnnotationStore
    models: ServedModels
    retrain: Any = None  # retrain.RetrainService when the retrain package is available
    examples: list[Path] = field(default_factory=list)
    sessions: SessionBook = field(default_factory=SessionBook)
    sign_ins: SignInThrottle = field(default_factory=SignInThrottle)  # failed sign-ins per name and address
    # Grad-CAM needs no lock here: each classifier's explainer serialises its own calls (core.explain)

    @property
    def registry(self) -> Any:
        return getattr(self.retrain, "registry", None)

    def snapshot(self) -> ModelSnapshot:
        """What answers now (take it once per request): student, teacher and their version together."""
        return self.models.current()

    @property
    def student(self) -> Classifier:
        return self.snapshot().student

    @property
    def teacher(self) -> Classifier | None:
        return self.snapshot().teacher

    def model_version(self) -> str:
        """The version whose weights answer: the registry's version that was loaded, else the folder's own."""
        return self.snapshot().version

    def reload_models(self) -> ModelSnapshot:
        """Serve what the registry now publishes (after promote or rollback); explicit paths stay pinned."""
        return self.models.reload()


def _retrain_service(home: Path, store: AnnotationStore) -> Any:
    """The retrain package's service, or None (with a log line) while it is not installed."""
    try:
        from retrain import RetrainService
    except ImportError:
        log.warning("retrain.RetrainService is not available: the Retrain tab will be read-only")
        return None
    return RetrainService(home=home, store=store)


def load_services(settings: Settings | None = None, with_retrain: bool = True) -> Services:
    """Open the data directory: the SQLite store, the retrain service, the served models, examples."""
    settings = settings or Settings.from_env()
    _one_torch_thread_per_request()
    home = settings.home
    home.mkdir(parents=True, exist_ok=True)
    layout = DataLayout(home)
    store = AnnotationStore(layout.database, detect_faces=store_face_finder())
    try:
        retrain = _retrain_service(home, store) if with_retrain else None  # repairs the served link first
        models = ServedModels(settings, getattr(retrain, "registry", None), on_swap=_store_follows(store))
    except BaseException:
        store.close()
        raise
    return Services(settings, store, models, retrain, write_examples(layout.examples))


def _one_torch_thread_per_request() -> None:
    """Requests already run side by side on the cores, and a photo's few 64 px faces gain nothing from a second
    intra-op thread that spins beside them: ``tsnet bench-serve`` (20 concurrent two-face predictions, 2 cores,
    A B A B) gave 2.42-2.44 requests/s with one thread against 2.18-2.20 with torch's default, and one prediction
    alone 641-652 ms against 781-861 ms. Retrain jobs run in their own worker process with their own threads."""
    import torch

    torch.set_num_threads(1)


def _store_follows(store: AnnotationStore) -> Callable[[ModelSnapshot], None]:
    """Keep the store's default queue models on the served snapshot (handlers pass theirs explicitly)."""

    def follow(snapshot: ModelSnapshot) -> None:
        store.classifier, store.teacher = snapshot.student, snapshot.teacher

    return follow
