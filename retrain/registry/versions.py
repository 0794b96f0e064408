"""The model registry: every retrained version as weights folders on disk, and which one is served.

Layout under ``$TSNET_HOME``::

    registry/state.json              {"current": "v2", "history": ["base", "v1", "v2"]} (atomic writes)
    registry/versions/<v>/           student/ and teacher/ weights folders (config.json, model.safetensors,
                                     README.md), version.json (parent, time, data snapshot, decision, push)
                                     and metrics.json (evaluations with confusion matrices, training curves)
    registry/base/                   the implicit "base" version; empty means the shipped default
    served -> registry/versions/<v>  one symlink, replaced with os.replace: student and teacher switch together

``retrain.layout.DataLayout.weights_folder`` reads ``served/<name>`` and falls back to the shipped weights, so
the app follows the registry without importing it. A version folder appears by renaming a finished staging folder,
so a killed job never leaves a half-written version behind.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.classifier import shipped_weights_folder
from core.weights import CONFIG_NAME

from .._files import FileLock, read_json, replace_symlink, write_json_atomically
from ..layout import MODEL_NAMES, DataLayout

if TYPE_CHECKING:
    from ..settings import RetrainSettings

__all__ = ["ModelRegistry", "BASE_VERSION", "MODEL_NAMES"]

BASE_VERSION = "base"
VERSION_FILE = "version.json"
METRICS_FILE = "metrics.json"
_VERSION_NAME = re.compile(r"v[1-9][0-9]{0,8}")  # what ``register`` names versions: v1, v2, ...


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ModelRegistry:
    """Versions of the student/teacher pair in ``$TSNET_HOME/registry``; promote, roll back, list."""

    def __init__(self, home: Path, base_weights: dict[str, str | None] | None = None) -> None:
        self.home = Path(home)
        layout = DataLayout(self.home)
        self.root = layout.registry
        self.versions_dir = self.root / "versions"
        self.base_dir = self.root / "base"
        self.served_link = layout.served
        self.state_file = self.root / "state.json"
        self._lock = FileLock(self.root / "registry.lock")
        self._base_weights = base_weights or {}

    @classmethod
    def from_settings(cls, settings: RetrainSettings) -> ModelRegistry:
        """The registry of ``settings.home`` with the configured base weights (``TSNET_BASE_STUDENT`` / ...)."""
        return cls(settings.home, {"student": settings.base_student, "teacher": settings.base_teacher})

    # -- reading ---------------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return read_json(self.state_file, {"current": BASE_VERSION, "history": [BASE_VERSION]})

    def current(self) -> str:
        """The served version ("base" when nothing was promoted)."""
        return self._state()["current"]

    def versions(self) -> list[str]:
        """Registered versions, oldest first (the base version not included)."""
        if not self.versions_dir.is_dir():
            return []
        found = [p.name for p in self.versions_dir.iterdir() if (p / VERSION_FILE).is_file()]
        return sorted(found, key=_version_number)

    def check_version(self, version: object) -> str:
        """``version`` when it names a registered version ("base", "v1", ...); a plain ValueError otherwise.

        Only registry names are accepted, never paths: a path would make the registry serve (and write
        into) a folder outside the data directory. The message never echoes a path back.
        """
        if not isinstance(version, str) or not version.strip():
            raise ValueError(f"no model version given; known versions: {self._known()}")
        version = version.strip()
        if version == BASE_VERSION:
            return version
        if not _VERSION_NAME.fullmatch(version):
            raise ValueError(f"a model version is a registry name such as v2, not a path; known: {self._known()}")
        if not (self.versions_dir / version / VERSION_FILE).is_file():
            raise ValueError(f"unknown model version {version!r}; known versions: {self._known()}")
        return version

    def _known(self) -> str:
        return ", ".join([BASE_VERSION, *self.versions()])

    def version_dir(self, version: str) -> Path:
        version = self.check_version(version)
        if version == BASE_VERSION:
            return self.base_dir
        return self.versions_dir / version

    def weights_folder(self, version: str, name: str) -> Path:
        """The ``name`` ("student"/"teacher") weights of ``version``; for "base" the configured or shipped default."""
        if self.check_version(version) != BASE_VERSION:
            return self.version_dir(version) / name
        configured = self._base_weights.get(name)
        if configured:
            return Path(configured)
        adopted = self.base_dir / name
        if (adopted / CONFIG_NAME).is_file():
            return adopted
        served = self.served_link / name
        if not self.served_link.is_symlink() and (served / CONFIG_NAME).is_file():
            return served  # a hand-placed served folder predating the registry counts as the base
        return shipped_weights_folder(name)

    def record(self, version: str) -> dict[str, Any]:
        if self.check_version(version) == BASE_VERSION:
            state = self._state()
            return {
                "version": BASE_VERSION,
                "created": None,
                "parent": None,
                "promoted": BASE_VERSION in state["history"],
                "pushed": None,
            }
        return read_json(self.version_dir(version) / VERSION_FILE)

    def metrics(self, version: str) -> dict[str, Any]:
        if self.check_version(version) == BASE_VERSION:
            return {}
        return read_json(self.version_dir(version) / METRICS_FILE, {})

    def list(self) -> dict[str, Any]:
        """``{"current": v, "versions": [{"version", "created", "parent", "metrics", "promoted", "pushed"}]}``."""
        entries = []
        for version in [BASE_VERSION, *self.versions()]:
            record = self.record(version)
            entries.append(
                {
                    "version": version,
                    "created": record.get("created"),
                    "parent": record.get("parent"),
                    "metrics": self.metrics(version),
                    "promoted": bool(record.get("promoted")),
                    "pushed": record.get("pushed"),
                }
            )
        return {"current": self.current(), "versions": entries}

    # -- writing ---------------------------------------------------------------------------------------
    def register(
        self,
        staging: Path,
        record: dict[str, Any],
        metrics: dict[str, Any],
        prepare: Callable[[Path, str], None] | None = None,
    ) -> str:
        """Move a finished staging folder (student/, teacher/) into the registry as the next version.

        ``prepare(staging, version)`` runs once the name is chosen and before the rename, so everything that
        names the version (config.json, the model card) is in place the moment the version appears.
        """
        for name in MODEL_NAMES:
            if not (staging / name / CONFIG_NAME).is_file():
                raise ValueError(f"{staging} lacks a {name} weights folder")
        with self._lock:
            existing = [_version_number(v) for v in self._all_version_dirs()]
            version = f"v{max(existing, default=0) + 1}"
            record = {**record, "version": version, "created": record.get("created") or now_iso()}
            record.setdefault("promoted", False)
            record.setdefault("pushed", None)
            if prepare is not None:
                prepare(staging, version)
            write_json_atomically(staging / METRICS_FILE, metrics)
            write_json_atomically(staging / VERSION_FILE, record)
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            os.rename(staging, self.versions_dir / version)
        return version

    def update_record(self, version: str, **changes: Any) -> dict[str, Any]:
        with self._lock:
            path = self.version_dir(version) / VERSION_FILE
            record = {**read_json(path), **changes}
            write_json_atomically(path, record)
        return record

    def promote(self, version: str) -> str:
        """Serve ``version`` (student and teacher switch together); it becomes the rollback point's successor.

        ``version`` must be a registry name (see :meth:`check_version`); anything else is refused.
        """
        version = self.check_version(version)
        with self._lock:
            state = self._state()
            if state["current"] != version:
                state = {"current": version, "history": [*state["history"], version]}
                write_json_atomically(self.state_file, state)
            if version != BASE_VERSION:
                self._mark_promoted(version)
            self._switch_served(version)
        return version

    def rollback(self) -> str:
        """Serve the previously promoted version again; returns it. Raises ValueError when at the base."""
        with self._lock:
            state = self._state()
            history = list(state["history"])
            if len(history) <= 1:
                raise ValueError("nothing to roll back: the base version is served")
            history.pop()
            state = {"current": history[-1], "history": history}
            write_json_atomically(self.state_file, state)
            self._switch_served(state["current"])
        return state["current"]

    def ensure_served(self) -> None:
        """Repair the served link after a crash between the state write and the switch (state.json wins)."""
        with self._lock:
            current = self.current()
            if self.served_link.is_symlink() or current != BASE_VERSION:
                if self.served_link.is_symlink() and os.readlink(self.served_link) == self._link_target(current):
                    return
                self._switch_served(current)

    def clean_staging(self) -> None:
        """Remove staging folders of jobs that died before registering."""
        shutil.rmtree(self.root / "staging", ignore_errors=True)

    def staging_dir(self, job_id: str) -> Path:
        folder = self.root / "staging" / job_id
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    # -- internals -------------------------------------------------------------------------------------
    def _all_version_dirs(self) -> list[str]:
        if not self.versions_dir.is_dir():
            return []
        return [p.name for p in self.versions_dir.iterdir() if p.is_dir() and _version_number(p.name) > 0]

    def _mark_promoted(self, version: str) -> None:
        path = self.version_dir(version) / VERSION_FILE
        record = read_json(path)
        if not record.get("promoted"):
            write_json_atomically(path, {**record, "promoted": True})

    def _link_target(self, version: str) -> str:
        folder = self.base_dir if version == BASE_VERSION else self.versions_dir / version
        return os.path.relpath(folder, self.home)

    def _switch_served(self, version: str) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self.served_link.exists() and not self.served_link.is_symlink():
            # A hand-placed served folder becomes the base version's weights, so "base" keeps meaning it.
            if not any(self.base_dir.iterdir()):
                self.base_dir.rmdir()
                os.rename(self.served_link, self.base_dir)
            else:
                shutil.rmtree(self.served_link)
        replace_symlink(self.served_link, self._link_target(version))


def _version_number(name: str) -> int:
    return int(name[1:]) if name.startswith("v") and name[1:].isdigit() else 0
