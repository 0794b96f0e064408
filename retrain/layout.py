"""Where the app's data lives on disk: the one reader of ``$TSNET_HOME`` and the one owner of the folder layout.

Layout of the data folder (``$TSNET_HOME``, else ``./tsnet-data`` relative to the working directory)::

    annotations.db            the annotation store (SQLite, WAL)
    annotations-media/        its content-addressed images and crops
    registry/                 versions/<v>/student|teacher, base/, staging/, state.json (retrain.registry)
    served -> registry/...    the promoted version: served/student, served/teacher
    jobs/<id>/                one folder per retrain job: settings, state, events, log (retrain.jobs.state)
    examples/                 the app's example pictures

Everything else takes a :class:`DataLayout` (or its ``home``) from its caller. Core knows only its shipped
weights (``core.classifier.shipped_weights_folder``); "the served version, else the shipped one" is
:meth:`DataLayout.weights_folder`. This module imports only the standard library (core is imported when a
shipped folder is asked for), so the CLI and the Space start-up can use it before torch loads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DataLayout", "HOME_VARIABLE", "DEFAULT_HOME", "MODEL_NAMES"]

HOME_VARIABLE = "TSNET_HOME"
DEFAULT_HOME = Path("tsnet-data")
MODEL_NAMES = ("student", "teacher")  # the names that mean "the served version, else the shipped weights"


@dataclass(frozen=True)
class DataLayout:
    """The paths of one data folder; build it with :meth:`from_env` or ``DataLayout(home)``."""

    home: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DataLayout:
        """``$TSNET_HOME``, else ``./tsnet-data``."""
        return cls(Path((os.environ if environ is None else environ).get(HOME_VARIABLE) or DEFAULT_HOME))

    @staticmethod
    def home_is_set(environ: Mapping[str, str] | None = None) -> bool:
        """Whether ``$TSNET_HOME`` names a folder (``tsnet bench-serve`` uses a fresh one otherwise)."""
        return bool((os.environ if environ is None else environ).get(HOME_VARIABLE))

    @property
    def database(self) -> Path:
        return self.home / "annotations.db"

    @property
    def media(self) -> Path:
        """The store's media folder (``AnnotationStore`` derives the same name from its database)."""
        return self.home / "annotations-media"

    @property
    def registry(self) -> Path:
        return self.home / "registry"

    @property
    def served(self) -> Path:
        """The registry's symlink to the promoted version's folder."""
        return self.home / "served"

    @property
    def jobs(self) -> Path:
        return self.home / "jobs"

    @property
    def examples(self) -> Path:
        return self.home / "examples"

    def served_weights(self, name: str) -> Path | None:
        """``served/<name>`` when a version has been promoted (it holds a config.json), else None."""
        folder = self.served / name
        return folder if (folder / "config.json").is_file() else None  # core.weights.CONFIG_NAME, without torch

    def weights_folder(self, name: str) -> Path:
        """The served version of ``student`` / ``teacher`` when one is promoted, else the shipped weights."""
        served = self.served_weights(name)
        if served is not None:
            return served
        from core.classifier import shipped_weights_folder

        return shipped_weights_folder(name)

    def resolve_model(self, name_or_path: str | Path) -> str | Path:
        """``student`` / ``teacher`` -> :meth:`weights_folder`; any other name or path is returned as given."""
        return self.weights_folder(str(name_or_path)) if str(name_or_path) in MODEL_NAMES else name_or_path
