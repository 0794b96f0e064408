"""The job runner across processes: one job at a time, cancel, crash safety under kill -9, and torchrun."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from labeling import AnnotationStore
from retrain import JobAlreadyRunning, RetrainService
from retrain.jobs import JobStore
from retrain.registry import ModelRegistry
from tests._retrain_fixtures import configure, fill_store, served_classifier
from tsnet.cli import main


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = configure(monkeypatch, tmp_path)
    fill_store(tmp_path / "store.db").close()
    return home


def _wait(condition: Callable[[], bool], timeout: float = 600.0) -> None:
    """Poll until ``condition``; the bound is generous so a slow, shared CI machine never fails it."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.2)


def _tsnet(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "tsnet", "retrain", "--db", str(home.parent / "store.db"), *args]


def _epoch_events(home: Path) -> list[dict]:
    latest = JobStore(home).latest()
    return [event for event in (latest.events if latest else []) if event["epoch"]]


def test_second_start_is_refused_and_cancel_stops_the_job(home: Path) -> None:
    store = AnnotationStore(home.parent / "store.db")
    service = RetrainService(store=store)
    job = service.start(epochs=200)
    assert job.state == "running"
    with pytest.raises(JobAlreadyRunning, match="already running"):
        RetrainService().start()
    other_process = subprocess.run(_tsnet(home), capture_output=True, text=True, timeout=600)
    assert other_process.returncode == 1 and "already running" in other_process.stderr

    _wait(lambda: len(_epoch_events(home)) >= 1)  # cancel while it trains, not before it starts
    assert service.cancel() is True
    _wait(lambda: service.status(job.id).state != "running")
    final = service.status(job.id)
    assert final.state == "cancelled" and final.version is None
    assert service.registry.list()["versions"][-1]["version"] == "base"
    assert service.cancel() is False
    assert not JobStore(home).is_locked()
    store.close()


def test_kill_9_mid_job_leaves_everything_intact_and_job_failed(home: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["retrain", "--db", str(home.parent / "store.db")]) == 0  # v1 served before the crash
    registry = ModelRegistry(home)
    before = (registry.list(), os.readlink(home / "served"), (home / "served/student/model.safetensors").read_bytes())
    db = home.parent / "store.db"
    rows_before = sqlite3.connect(db).execute("SELECT count(*) FROM label_events").fetchone()
    first_job = JobStore(home).latest().id

    process = subprocess.Popen(_tsnet(home, "--epochs", "200"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: JobStore(home).latest().id != first_job and len(_epoch_events(home)) >= 1)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert JobStore(home).latest().state == "running"  # nobody was left to say otherwise

    service = RetrainService()  # the next start
    job = service.status()
    assert job.state == "failed" and "interrupted" in job.error
    after = (
        service.registry.list(),
        os.readlink(home / "served"),
        (home / "served/student/model.safetensors").read_bytes(),
    )
    assert after == before
    assert served_classifier("student").version == "v1"
    connection = sqlite3.connect(db)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert connection.execute("SELECT count(*) FROM label_events").fetchone() == rows_before
    assert not (home / "registry" / "staging").exists() and not JobStore(home).is_locked()


def test_retrain_job_runs_under_torchrun_with_two_processes(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSNET_RETRAIN_STAGES", "teacher+student")  # both stages run on every rank
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "tsnet"]
    command += ["retrain", "--db", str(home.parent / "store.db"), "--epochs", "1"]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "version v1: promoted" in result.stdout

    job = RetrainService().status()
    assert job.state == "succeeded" and job.version == "v1"
    assert json.loads((home / "jobs" / job.id / "state.json").read_text())["world_size"] == 2
    assert [(event["stage"], event["epoch"]) for event in job.events if event["epoch"]] == [
        ("teacher", 1),
        ("student", 1),
    ]
    assert ModelRegistry(home).current() == "v1"
