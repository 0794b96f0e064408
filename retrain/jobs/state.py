"""Retrain job bookkeeping: one job at a time (a file lock), persisted state and progress events, cancel flags.

Layout: ``$TSNET_HOME/jobs/<id>/state.json`` (atomic), ``events.jsonl`` (append-only progress), ``cancel`` (flag
file), ``work/`` (training run folders, removed at the end). The lock file ``jobs/retrain.lock`` is held by
the process running the job; the kernel drops it when that process dies, so a job still marked "running" while
nobody holds the lock was interrupted, and :meth:`JobStore.recover` marks it failed.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._files import FileLock, read_json, write_json_atomically
from ..layout import DataLayout

__all__ = ["JobInfo", "JobAlreadyRunning", "JobStore", "JobHandle", "JobCancelled", "INTERRUPTED"]

SETTINGS_FILE = "settings.json"  # the settings a background worker runs with
STATES = ("running", "succeeded", "failed", "cancelled")
INTERRUPTED = (
    "interrupted: the process running this job stopped before it finished (killed or crashed);"
    " the registry and the served model were left as they were"
)


class JobAlreadyRunning(RuntimeError):
    """A retrain job is already running (in this or another process)."""


class JobCancelled(RuntimeError):
    """Raised inside the job when its cancel flag is set."""


@dataclass
class JobInfo:
    """What the app shows about a job; ``state`` is one of running, succeeded, failed, cancelled."""

    id: str
    state: str
    stage: str | None = None
    epoch: int | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    comparison: dict[str, Any] | None = None
    promoted: bool | None = None
    version: str | None = None
    error: str | None = None
    push: str | None = None
    created: str | None = None
    finished: str | None = None
    pid: int | None = None
    decision: list[str] | None = None
    warnings: list[str] = field(default_factory=list)  # data the job had to do without (replay, benchmark)


_JOB_ID = re.compile(r"[0-9]{8}-[0-9]{6}-[0-9]{6}-[0-9a-f]{6}")  # what :meth:`JobStore.create` names jobs
_EXIT_GRACE_SECONDS = 10.0  # how long a finished worker may take to exit and free the job lock


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class JobStore:
    """The job folders under ``$TSNET_HOME/jobs``."""

    def __init__(self, home: Path) -> None:
        self.root = DataLayout(home).jobs
        self.lock_path = self.root / "retrain.lock"

    def _acquire(self, lock: FileLock) -> bool:
        """Take ``lock`` without waiting for a running job.

        The worker records its final state just before it exits and the kernel frees its lock, so when
        the latest job already reads as finished the holder is on its way out: wait a moment for it
        rather than answer "already running" for a job the user sees as done.
        """
        deadline = time.monotonic() + _EXIT_GRACE_SECONDS
        while not lock.acquire(blocking=False):
            latest = self.latest()
            if (latest is not None and latest.state == "running") or time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def lock(self) -> FileLock:
        """Take the one-job-at-a-time lock, or raise :class:`JobAlreadyRunning` naming the running job."""
        lock = FileLock(self.lock_path)
        if not self._acquire(lock):
            running = self.latest()
            detail = f" (job {running.id}, stage {running.stage})" if running and running.state == "running" else ""
            raise JobAlreadyRunning(f"a retrain job is already running{detail}; wait for it or cancel it")
        return lock

    def is_locked(self) -> bool:
        probe = FileLock(self.lock_path)
        if self._acquire(probe):
            probe.release()
            return False
        return True

    def create(self, options: dict[str, Any]) -> JobHandle:
        job_id = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f-") + secrets.token_hex(3)
        folder = self.root / job_id
        folder.mkdir(parents=True)
        handle = JobHandle(folder)
        handle.write_state(
            {"id": job_id, "state": "running", "stage": "queued", "created": _now(), "pid": os.getpid(), **options}
        )
        handle.event("queued")
        return handle

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if _JOB_ID.fullmatch(p.name) and (p / "state.json").is_file())

    def handle(self, job_id: str) -> JobHandle:
        """The job named ``job_id``; only job names are accepted (never paths), with a plain message otherwise."""
        if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
            raise ValueError("no such retrain job: a job id looks like 20250101-120000-000000-a1b2c3")
        folder = self.root / job_id
        if not (folder / "state.json").is_file():
            raise ValueError(f"no retrain job {job_id!r}")
        return JobHandle(folder)

    def latest(self) -> JobInfo | None:
        ids = self.ids()
        return self.handle(ids[-1]).info() if ids else None

    def recover(self) -> list[str]:
        """Mark jobs left "running" by a dead process as failed; call while holding the lock (or when free)."""
        marked = []
        for job_id in self.ids():
            handle = self.handle(job_id)
            if handle.state().get("state") == "running":
                handle.finish("failed", error=INTERRUPTED)
                shutil.rmtree(handle.folder / "work", ignore_errors=True)
                marked.append(job_id)
        return marked


class JobHandle:
    """One job's folder: state, events and the cancel flag."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.id = folder.name
        self.state_file = folder / "state.json"
        self.events_file = folder / "events.jsonl"
        self.cancel_file = folder / "cancel"
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # e.g. the CLI's progress bar

    @property
    def work_dir(self) -> Path:
        return self.folder / "work"

    def state(self) -> dict[str, Any]:
        return read_json(self.state_file, {})

    def write_state(self, state: dict[str, Any]) -> None:
        write_json_atomically(self.state_file, state)

    def update(self, **changes: Any) -> None:
        self.write_state({**self.state(), **changes})

    def event(self, stage: str, epoch: int | None = None, **details: Any) -> None:
        """Append a progress event (one JSON line; a torn last line after a kill is skipped on reading)."""
        record = {"time": _now(), "stage": stage, "epoch": epoch, **details}
        with open(self.events_file, "a") as stream:
            stream.write(json.dumps(record, default=str) + "\n")
        self.update(stage=stage, epoch=epoch)
        for listener in self.listeners:
            listener(record)

    def events(self) -> list[dict[str, Any]]:
        if not self.events_file.is_file():
            return []
        events = []
        for line in self.events_file.read_text().splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return events

    def finish(self, state: str, **changes: Any) -> None:
        assert state in STATES
        self.update(state=state, finished=_now(), **changes)
        self.event(state, None, **{k: v for k, v in changes.items() if k in ("error", "version", "promoted")})
        self.update(stage=state)

    def request_cancel(self) -> None:
        self.cancel_file.touch()

    def cancel_requested(self) -> bool:
        return self.cancel_file.exists()

    def info(self) -> JobInfo:
        state = self.state()
        return JobInfo(
            id=self.id,
            state=state.get("state", "failed"),
            stage=state.get("stage"),
            epoch=state.get("epoch"),
            events=self.events(),
            comparison=state.get("comparison"),
            warnings=state.get("warnings") or [],
            promoted=state.get("promoted"),
            version=state.get("version"),
            error=state.get("error"),
            push=state.get("push"),
            created=state.get("created"),
            finished=state.get("finished"),
            pid=state.get("pid"),
            decision=state.get("decision"),
        )
