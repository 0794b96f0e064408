"""Runtime glue for the Hugging Face Space: where the data lives, which weights are served, and how labels survive.

Copied into the Space bundle as ``space_runtime.py`` (not as a ``spaces`` package: Gradio Spaces install the
``spaces`` PyPI package, which a folder of that name would shadow). ``app.py`` calls :func:`prepare_space` before it
imports the app, because the app reads ``TSNET_HOME`` when it starts.

Why each step:

- A Space's disk is wiped on every restart; ``/data`` (persistent storage, a paid add-on) is not. So the data
  directory goes to ``/data/tsnet`` when ``/data`` is writable.
- Even with persistent storage, a dataset repo is the backup people can read and fork: the annotation store and
  the model registry are mirrored there by a :class:`huggingface_hub.CommitScheduler` (``TSNET_DATA_REPO``), and
  restored from it when the local store is empty (always the case on the free tier after a restart).
- SQLite in WAL mode is not a single file: copying ``annotations.db`` while the app writes can give a torn or stale
  database. The mirror uploads an online-backup snapshot (``annotations.db.snapshot``) instead of the live files.
- When the Space is configured with a published model repo (``TSNET_HUB_REPO`` or the build's ``--model-repo``),
  its weights replace the bundle's default weights at start (from the ``preload_from_hub`` cache when present).

Only the standard library and ``huggingface_hub`` are imported at module level; ours are imported lazily, after
``TSNET_HOME`` is set.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # before huggingface_hub reads its constants

from huggingface_hub import CommitScheduler, HfApi  # noqa: E402

from retrain.layout import DEFAULT_HOME, HOME_VARIABLE, MODEL_NAMES, DataLayout  # noqa: E402

__all__ = [
    "SpaceRuntime",
    "StoreMirror",
    "choose_home",
    "fetch_published_weights",
    "prepare_space",
    "restore_store",
    "snapshot_databases",
    "start_mirror",
    "MIRROR_IGNORE",
    "BUNDLE_CONFIG_NAME",
]

logger = logging.getLogger("tsnet.space")

BUNDLE_CONFIG_NAME = "space_config.json"
PERSISTENT_ROOT = Path("/data")
SNAPSHOT_SUFFIX = ".snapshot"
DEFAULT_MIRROR_MINUTES = 5.0
WEIGHT_FILES = ("config.json", "model.safetensors")  # core.weights' names; the runtime starts before torch
# Live SQLite files (uploaded as snapshots instead), hidden temporaries of atomic writes, locks, the registry's
# ``served`` symlink (rebuilt from registry/state.json on restore), staging folders of running jobs and resumable
# training checkpoints (large, and useless once a version is registered).
MIRROR_IGNORE = [
    "*.db",
    "*.db-wal",
    "*.db-shm",
    "*.db-journal",
    ".*",
    "*/.*",
    "*.lock",
    "*.tmp",
    "*.pt",
    "served",
    "served/*",
    "registry/staging/*",
]


@dataclass
class SpaceRuntime:
    """What :func:`prepare_space` set up; ``mirror`` is None when no dataset repo (or token) is configured."""

    home: Path
    model_repo: str | None
    data_repo: str | None
    mirror: StoreMirror | None

    def stop(self) -> None:
        """Push the last changes and stop mirroring (tests; on a Space the scheduler's atexit hook does this)."""
        if self.mirror is not None:
            self.mirror.trigger().result()
            self.mirror.stop()


def _bundle_config(app_dir: Path) -> dict[str, Any]:
    path = app_dir / BUNDLE_CONFIG_NAME
    return json.loads(path.read_text()) if path.is_file() else {}


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def choose_home(environ: MutableMapping[str, str], app_dir: Path, persistent_root: Path = PERSISTENT_ROOT) -> Path:
    """Set and return ``TSNET_HOME``: kept if set, else ``/data/tsnet`` on persistent storage, else in the app dir."""
    if DataLayout.home_is_set(environ):
        home = DataLayout.from_env(environ).home
    elif _writable_dir(persistent_root):
        home = persistent_root / "tsnet"
    else:
        home = app_dir / DEFAULT_HOME
    home.mkdir(parents=True, exist_ok=True)
    environ[HOME_VARIABLE] = str(home)
    return home


def _pretrained_dir() -> Path:
    """``core/pretrained`` of the bundle, found without importing core (and torch) yet."""
    spec = importlib.util.find_spec("core")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the core package is not importable; is this the Space bundle?")
    return Path(list(spec.submodule_search_locations)[0]) / "pretrained"


def _weights_in_snapshot(snapshot: Path, name: str) -> Path | None:
    """``<name>/`` in the repo, or the repo root for a single-model (student) repo."""
    for folder in (snapshot / name, snapshot if name == "student" else None):
        if folder is not None and all((folder / file).is_file() for file in WEIGHT_FILES):
            return folder
    return None


def fetch_published_weights(repo_id: str, destination: Path | None = None, token: str | None = None) -> list[str]:
    """Install the published model's weights as the bundle's defaults; returns the model names installed.

    Online first (so a republished model is picked up at restart), then the local cache, which is where
    ``preload_from_hub`` put the files at build time. The registry's served version still wins over these.
    """
    from huggingface_hub import snapshot_download

    patterns = [f"{name}/{file}" for name in MODEL_NAMES for file in WEIGHT_FILES] + list(WEIGHT_FILES)
    try:
        snapshot = Path(snapshot_download(repo_id, allow_patterns=patterns, token=token))
    except Exception as error:  # any Hub trouble: fall back to the build-time cache
        logger.warning("Could not reach model repo %s (%s); trying the local cache", repo_id, type(error).__name__)
        snapshot = Path(snapshot_download(repo_id, allow_patterns=patterns, token=token, local_files_only=True))
    destination = destination or _pretrained_dir()
    installed = []
    for name in MODEL_NAMES:
        source = _weights_in_snapshot(snapshot, name)
        if source is None:
            continue
        target = destination / name
        staging = destination / f".{name}.incoming"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for file in WEIGHT_FILES:
            shutil.copyfile(source / file, staging / file)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
        installed.append(name)
    if "student" not in installed:
        raise FileNotFoundError(f"model repo {repo_id} has no student weights (config.json + model.safetensors)")
    return installed


# ---------------------------------------------------------------------------------------------- label mirror


def snapshot_databases(home: Path) -> list[Path]:
    """Write ``<db>.snapshot`` beside every SQLite file with the online-backup API; rewrite only on change.

    Unchanged snapshots keep their mtime, so the scheduler (which uploads files whose mtime moved) skips them.
    """
    written = []
    for database in sorted(home.rglob("*.db")):
        if not database.is_file():
            continue
        snapshot = database.with_name(database.name + SNAPSHOT_SUFFIX)
        handle, temporary = tempfile.mkstemp(dir=database.parent, prefix=f".{database.name}.")
        os.close(handle)
        try:
            source = sqlite3.connect(database, timeout=30)
            target = sqlite3.connect(temporary)
            try:
                source.backup(target)
            finally:
                target.close()
                source.close()
            if snapshot.is_file() and Path(temporary).read_bytes() == snapshot.read_bytes():
                continue
            os.replace(temporary, snapshot)
            written.append(snapshot)
        finally:
            Path(temporary).unlink(missing_ok=True)
    return written


def _git_blob_sha1(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files_already_pushed(api: HfApi, repo_id: str, home: Path) -> dict[Path, float]:
    """Local files identical to the repo's copy, as the scheduler's ``last_uploaded`` map (path -> mtime).

    Without this every restart would upload the whole store again in its first scheduled commit.
    """
    from huggingface_hub.hf_api import RepoFile

    known: dict[Path, float] = {}
    for entry in api.list_repo_tree(repo_id, repo_type="dataset", recursive=True):
        if not isinstance(entry, RepoFile):
            continue
        local = home / entry.path
        if not local.is_file() or local.stat().st_size != entry.size:
            continue
        same = _sha256(local) == entry.lfs.sha256 if entry.lfs else _git_blob_sha1(local) == entry.blob_id
        if same:
            known[local.resolve()] = local.stat().st_mtime
    return known


class StoreMirror(CommitScheduler):
    """A CommitScheduler over ``TSNET_HOME`` that snapshots the SQLite files before each scheduled commit."""

    def __init__(
        self,
        home: Path,
        *,
        repo_id: str,
        api: HfApi,
        every: float = DEFAULT_MIRROR_MINUTES,
        already_pushed: dict[Path, float] | None = None,
    ) -> None:
        # Set before super().__init__: its thread calls push_to_hub right away.
        self.home = Path(home)
        self._already_pushed = dict(already_pushed or {})
        super().__init__(
            repo_id=repo_id,
            folder_path=self.home,
            every=every,
            repo_type="dataset",
            private=True,  # faces and who labelled them: private unless the owner opens it up
            ignore_patterns=list(MIRROR_IGNORE),
            hf_api=api,
        )

    def push_to_hub(self) -> Any:
        with self.lock:
            if self._already_pushed:
                self.last_uploaded.update(self._already_pushed)
                self._already_pushed = {}
            snapshot_databases(self.home)
        return super().push_to_hub()


def store_is_empty(home: Path) -> bool:
    """No database yet: a fresh disk (free tier after a restart) or a first start."""
    return not any(path.is_file() for path in home.rglob("*.db"))


def restore_store(home: Path, repo_id: str, api: HfApi) -> list[str]:
    """Bring the mirrored store and registry back into an empty ``home``; returns the restored paths.

    Existing local files are never overwritten. Snapshots become the live databases, and the registry's
    ``served`` link is rebuilt from its state file.
    """
    if not api.repo_exists(repo_id, repo_type="dataset"):
        logger.info("Data repo %s does not exist yet: starting with an empty store", repo_id)
        return []
    from retrain.hub.transport import pull_folder

    restored = []
    with tempfile.TemporaryDirectory(dir=home.parent, prefix=".tsnet-restore-") as temporary:
        snapshot = pull_folder(repo_id, temporary, repo_type="dataset", token=api.token, endpoint=api.endpoint)
        for source in sorted(snapshot.rglob("*")):
            relative = source.relative_to(snapshot)
            if not source.is_file() or relative.parts[0].startswith(".") or relative.name == ".gitattributes":
                continue
            target = home / relative
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(source, target)
            restored.append(relative.as_posix())
    for snapshot_file in sorted(home.rglob("*.db" + SNAPSHOT_SUFFIX)):
        database = snapshot_file.with_name(snapshot_file.name[: -len(SNAPSHOT_SUFFIX)])
        if not database.exists():
            shutil.copyfile(snapshot_file, database)
    if (DataLayout(home).registry / "state.json").is_file():
        from retrain.registry import ModelRegistry

        ModelRegistry(home).ensure_served()
    logger.info("Restored %d file(s) from data repo %s", len(restored), repo_id)
    return restored


def start_mirror(
    home: Path, repo_id: str, token: str, *, every: float = DEFAULT_MIRROR_MINUTES, endpoint: str | None = None
) -> StoreMirror:
    """Restore ``home`` from the data repo when it is empty, then mirror it there every ``every`` minutes."""
    api = HfApi(token=token, endpoint=endpoint, library_name="tsnet-studio")
    if store_is_empty(home):
        restore_store(home, repo_id, api)
    already_pushed = _files_already_pushed(api, repo_id, home) if api.repo_exists(repo_id, repo_type="dataset") else {}
    return StoreMirror(home, repo_id=repo_id, api=api, every=every, already_pushed=already_pushed)


# ---------------------------------------------------------------------------------------------- entry point


def prepare_space(
    environ: MutableMapping[str, str] | None = None,
    *,
    app_dir: Path | None = None,
    persistent_root: Path = PERSISTENT_ROOT,
) -> SpaceRuntime:
    """Everything the Space needs before ``create_app()``; safe to run locally (no repo variables: no Hub calls).

    Reads ``TSNET_HOME``, ``TSNET_HUB_REPO`` (else the build's model repo), ``TSNET_DATA_REPO``,
    ``TSNET_MIRROR_MINUTES`` and the ``HF_TOKEN`` secret. The token is passed to the client, never logged.
    """
    environ = os.environ if environ is None else environ
    app_dir = Path(app_dir or Path(__file__).resolve().parent)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = _bundle_config(app_dir)
    home = choose_home(environ, app_dir, persistent_root)
    logger.info("Data directory: %s", home)

    model_repo = environ.get("TSNET_HUB_REPO") or config.get("model_repo") or None
    token = environ.get("HF_TOKEN") or None
    if model_repo:
        installed = fetch_published_weights(model_repo, token=token)
        logger.info("Serving %s from model repo %s", ", ".join(installed), model_repo)

    data_repo = environ.get("TSNET_DATA_REPO") or None
    mirror = None
    if data_repo and token:
        every = float(environ.get("TSNET_MIRROR_MINUTES") or DEFAULT_MIRROR_MINUTES)
        mirror = start_mirror(home, data_repo, token, every=every)
        logger.info("Mirroring %s to dataset %s every %g min", home, data_repo, every)
    elif data_repo:
        logger.warning("TSNET_DATA_REPO is set but the HF_TOKEN secret is not: labels are not backed up")

    if environ.get("SPACE_ID") and not environ.get("TSNET_ALLOWED_USERS"):
        logger.warning("TSNET_ALLOWED_USERS is not set: see the Space README for who may annotate and retrain")
    return SpaceRuntime(home=home, model_repo=model_repo, data_repo=data_repo, mirror=mirror)
