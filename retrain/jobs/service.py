"""RetrainService: the retrain loop's Python API for the app (start, status, cancel, the registry).

A job runs in a background worker process (``python -m retrain.jobs.worker``), not a thread: a crash or kill of the
job cannot take the app down, cancel works between batches through a flag file, and the job lock is an flock
the kernel releases when the worker dies, so "already running" holds across processes and restarts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from labeling import AnnotationStore

from .._files import FileLock
from ..layout import DataLayout
from ..registry import ModelRegistry
from ..settings import RetrainSettings
from .state import INTERRUPTED, SETTINGS_FILE, JobHandle, JobInfo, JobStore

__all__ = ["RetrainService"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RetrainService:
    """``RetrainService(home, store)``: start/status/cancel retrain jobs; ``.registry`` lists and switches versions."""

    def __init__(
        self, home: Path | None = None, store: AnnotationStore | None = None, settings: RetrainSettings | None = None
    ) -> None:
        self.settings = settings or RetrainSettings.from_env(home)
        if home is not None:
            self.settings.home = Path(home)
        self.home = self.settings.home
        self.store = store
        self.jobs = JobStore(self.home)
        self.registry = ModelRegistry.from_settings(self.settings)
        self._recover()

    @property
    def db_path(self) -> Path:
        return self.store.path if self.store is not None else DataLayout(self.home).database

    def _recover(self) -> None:
        """At start: a job left "running" with nobody holding the lock was interrupted; mark it failed."""
        probe = FileLock(self.jobs.lock_path)
        if probe.acquire(blocking=False):
            try:
                self.jobs.recover()
                self.registry.clean_staging()
                if self.registry.state_file.is_file():
                    self.registry.ensure_served()
            finally:
                probe.release()

    def start(self, epochs: int | None = None, push_repo: str | None = None) -> JobInfo:
        """Start a job in the background; raises ``JobAlreadyRunning`` when one is running anywhere."""
        lock = self.jobs.lock()
        try:
            self.jobs.recover()
            self.registry.clean_staging()
            handle = self.jobs.create({"epochs": epochs, "push_repo": push_repo, "db": str(self.db_path)})
            (handle.folder / SETTINGS_FILE).write_text(self.settings.to_json())
            command = [sys.executable, "-m", "retrain.jobs.worker", str(handle.folder), "--db", str(self.db_path)]
            command += ["--lock-fd", str(lock.fd)]
            command += ["--epochs", str(epochs)] if epochs else []
            command += ["--push", push_repo] if push_repo else []
            with open(handle.folder / "worker.out", "ab") as output:
                process = subprocess.Popen(
                    command,
                    pass_fds=(lock.fd,),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # a Ctrl-C meant for the app does not kill the job mid-write
                )
            handle.update(pid=process.pid)
        finally:
            lock.release()  # the worker holds the lock through its inherited descriptor from here on
        threading.Thread(target=self._reap, args=(process, handle), daemon=True).start()
        return handle.info()

    @staticmethod
    def _reap(process: subprocess.Popen, handle: JobHandle) -> None:
        code = process.wait()
        if handle.state().get("state") == "running":
            handle.finish("failed", error=f"{INTERRUPTED} (worker exit code {code})")

    def status(self, job_id: str | None = None) -> JobInfo | None:
        """The job ``job_id`` (the latest when None), or None when no job ever ran."""
        if job_id is None:
            info = self.jobs.latest()
            if info is None:
                return None
            job_id = info.id
        handle = self.jobs.handle(job_id)
        state = handle.state()
        if state.get("state") == "running" and state.get("pid") and not _pid_alive(int(state["pid"])):
            if not self.jobs.is_locked():
                handle.finish("failed", error=INTERRUPTED)
        return handle.info()

    def cancel(self) -> bool:
        """Ask the running job to stop (it does between batches); False when none is running."""
        info = self.status()
        if info is None or info.state != "running":
            return False
        self.jobs.handle(info.id).request_cancel()
        return True
