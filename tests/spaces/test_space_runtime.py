"""The Space's runtime glue (spaces/runtime.py, shipped as space_runtime.py): data directory choice, published
weights, and the label store mirrored to a dataset repo and restored from it, against the Hub stand-in."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from retrain.hub.transport import push_folder
from spaces.runtime import (
    choose_home,
    fetch_published_weights,
    prepare_space,
    snapshot_databases,
    start_mirror,
)
from tests.spaces.test_space_bundle import space_weights  # noqa: F401  (fixture)
from tests.support.hub_server import HubServer

FAST = {"backoff": 0.01}


def test_home_goes_to_persistent_storage_when_writable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    environ: dict[str, str] = {}
    assert choose_home(environ, tmp_path / "app", persistent_root=data) == data / "tsnet"
    assert environ["TSNET_HOME"] == str(data / "tsnet") and (data / "tsnet").is_dir()

    environ = {}
    assert choose_home(environ, tmp_path / "app", persistent_root=tmp_path / "no-data") == tmp_path / "app/tsnet-data"

    environ = {"TSNET_HOME": str(tmp_path / "chosen")}
    assert choose_home(environ, tmp_path / "app", persistent_root=data) == tmp_path / "chosen"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_read_only_data_is_not_used(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o555)
    assert choose_home({}, tmp_path / "app", persistent_root=data) == tmp_path / "app" / "tsnet-data"


def test_prepare_space_without_repos_makes_no_hub_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: any Hub call would fail
    environ = {"HF_TOKEN": "hf_unused"}
    runtime = prepare_space(environ, app_dir=tmp_path, persistent_root=tmp_path / "no-data")
    assert runtime.home == tmp_path / "tsnet-data" and environ["TSNET_HOME"] == str(runtime.home)
    assert runtime.mirror is None and runtime.model_repo is None


def _wal_database(path: Path, rows: list[str]) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS labels (name TEXT)")
    db.executemany("INSERT INTO labels VALUES (?)", [(row,) for row in rows])
    db.commit()
    db.close()


def _rows(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [row[0] for row in db.execute("SELECT name FROM labels ORDER BY rowid")]
    finally:
        db.close()


def test_snapshot_is_a_consistent_copy_rewritten_only_on_change(tmp_path: Path) -> None:
    database = tmp_path / "annotations.db"
    _wal_database(database, ["happy", "sad"])
    writer = sqlite3.connect(database)  # keeps the WAL alive: the rows are not in the main file yet
    writer.execute("INSERT INTO labels VALUES ('neutral')")
    writer.commit()

    [snapshot] = snapshot_databases(tmp_path)
    assert snapshot.name == "annotations.db.snapshot"
    assert _rows(snapshot) == ["happy", "sad", "neutral"]
    assert snapshot_databases(tmp_path) == []  # unchanged: same file, same mtime, nothing for the scheduler

    writer.execute("INSERT INTO labels VALUES ('fear')")
    writer.commit()
    assert snapshot_databases(tmp_path) == [snapshot] and _rows(snapshot)[-1] == "fear"
    writer.close()


def _store_with_registry(home: Path, weights: Path) -> None:
    """A store (WAL database + media) and a registry with v1 served, laid out as retrain/registry.py documents."""
    home.mkdir(parents=True)
    _wal_database(home / "annotations.db", ["happy", "anger"])
    (home / "media" / "ab").mkdir(parents=True)
    (home / "media" / "ab" / "abcd.png").write_bytes(b"\x89PNG fake crop")
    version = home / "registry" / "versions" / "v1"
    shutil.copytree(weights / "student", version / "student")
    (home / "registry" / "state.json").write_text(json.dumps({"current": "v1", "history": ["base", "v1"]}))
    (home / "registry" / "registry.lock").write_text("")
    (home / "served").symlink_to(Path("registry") / "versions" / "v1")


def test_mirror_pushes_the_store_and_restores_it_after_a_restart(
    hub_server: HubServer,
    tmp_path: Path,
    space_weights: Path,  # noqa: F811
) -> None:
    repo_id = f"{hub_server.username}/tsnet-labels"
    first = tmp_path / "first" / "tsnet"
    _store_with_registry(first, space_weights)

    mirror = start_mirror(first, repo_id, hub_server.token, every=60)
    try:
        mirror.trigger().result()
    finally:
        mirror.stop()

    files = hub_server.repo_files(repo_id, repo_type="dataset")
    assert "annotations.db.snapshot" in files and "media/ab/abcd.png" in files
    assert "registry/state.json" in files and "registry/versions/v1/student/model.safetensors" in files
    assert not [f for f in files if f.startswith("served") or f.endswith((".db", "-wal", "-shm", ".lock"))]
    assert HfApi(token=hub_server.token).repo_info(repo_id, repo_type="dataset").private
    commits = len(hub_server.commits(repo_id, repo_type="dataset"))

    # A restart on the free tier: empty disk, same data repo.
    second = tmp_path / "second" / "tsnet"
    second.mkdir(parents=True)
    mirror = start_mirror(second, repo_id, hub_server.token, every=60)
    try:
        mirror.trigger().result()
    finally:
        mirror.stop()

    assert _rows(second / "annotations.db") == ["happy", "anger"]
    assert (second / "media" / "ab" / "abcd.png").read_bytes() == b"\x89PNG fake crop"
    assert (second / "served").is_symlink()
    assert (second / "served" / "student" / "model.safetensors").read_bytes() == (
        space_weights / "student" / "model.safetensors"
    ).read_bytes()
    assert not (second / ".cache").exists()
    # Restored files are known to be on the Hub already: no re-upload commit after the restart.
    assert len(hub_server.commits(repo_id, repo_type="dataset")) == commits


def test_mirror_starts_fresh_when_the_data_repo_does_not_exist(hub_server: HubServer, tmp_path: Path) -> None:
    home = tmp_path / "tsnet"
    home.mkdir()
    _wal_database(home / "annotations.db", ["surprise"])
    mirror = start_mirror(home, f"{hub_server.username}/new-labels", hub_server.token, every=60)
    try:
        mirror.trigger().result()
    finally:
        mirror.stop()
    assert "annotations.db.snapshot" in hub_server.repo_files(f"{hub_server.username}/new-labels", repo_type="dataset")


@pytest.mark.parametrize("layout", ["retrain", "subfolders"])
def test_published_weights_replace_the_bundle_defaults_and_survive_hub_outages(
    hub_server: HubServer,
    tmp_path: Path,
    space_weights: Path,  # noqa: F811
    layout: str,
) -> None:
    repo_id = f"{hub_server.username}/fer-tsnet"
    if layout == "retrain":  # what retrain/publishing.py pushes: the student at the root, the teacher in teacher/
        upload = tmp_path / "upload"
        shutil.copytree(space_weights / "student", upload)
        shutil.copytree(space_weights / "teacher", upload / "teacher")
    else:
        upload = space_weights
    push_folder(upload, repo_id, commit_message="student + teacher", token=hub_server.token, **FAST)
    pretrained = tmp_path / "core" / "pretrained"
    (pretrained / "student").mkdir(parents=True)
    (pretrained / "student" / "config.json").write_text("{}")  # the bundle's stale default

    assert fetch_published_weights(repo_id, pretrained) == ["student", "teacher"]
    for name in ("student", "teacher"):
        for file in ("config.json", "model.safetensors"):
            assert (pretrained / name / file).read_bytes() == (space_weights / name / file).read_bytes()

    hub_server.stop()  # the preload_from_hub cache is enough
    shutil.rmtree(pretrained)
    assert fetch_published_weights(repo_id, pretrained) == ["student", "teacher"]
