"""One retrain job run in this process: what ``tsnet retrain`` does, on one CPU or on every torchrun rank.

Rank 0 takes the one-job-at-a-time lock, repairs what a dead job left behind and creates the job folder; the other
ranks learn the job (or the "already running" refusal) by broadcast, so all ranks agree before any work starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._files import FileLock
from ..registry import ModelRegistry
from ..settings import RetrainSettings
from .execute import execute_job
from .pipeline import Log
from .state import JobAlreadyRunning, JobHandle, JobStore

__all__ = ["ClaimedJob", "claim_job"]


@dataclass
class ClaimedJob:
    """A created job this process may run; rank 0 holds the job lock until :meth:`run` returns."""

    handle: JobHandle
    rank: int
    world: int
    lock: FileLock | None

    def run(
        self, settings: RetrainSettings, db_path: Path, *, epochs: int | None, push_repo: str | None, log: Log
    ) -> dict[str, Any]:
        """The job to its final state (see :func:`retrain.jobs.execute.execute_job`); the lock is released after."""
        try:
            return execute_job(
                settings,
                db_path,
                self.handle,
                epochs=epochs,
                push_repo=push_repo,
                log=log,
                rank=self.rank,
                world=self.world,
            )
        finally:
            if self.lock is not None:
                self.lock.release()


def _broadcast(shared: dict[str, Any]) -> dict[str, Any]:
    import torch.distributed as dist

    box = [shared]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def claim_job(settings: RetrainSettings, *, epochs: int | None, push_repo: str | None) -> ClaimedJob:
    """Create the job on rank 0 and share it with every rank; raises :class:`JobAlreadyRunning` on all ranks."""
    from .pipeline import distributed_context

    rank, world = distributed_context() if int(os.environ.get("WORLD_SIZE", "1")) > 1 else (0, 1)
    jobs = JobStore(settings.home)
    lock, shared = None, {"job": None, "error": None}
    if rank == 0:
        try:
            lock = jobs.lock()
            jobs.recover()
            ModelRegistry(settings.home).clean_staging()
            shared["job"] = jobs.create({"epochs": epochs, "push_repo": push_repo, "world_size": world}).id
        except JobAlreadyRunning as error:
            shared["error"] = str(error)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
    if world > 1:
        shared = _broadcast(shared)
    if shared["error"]:
        raise JobAlreadyRunning(shared["error"])
    return ClaimedJob(JobHandle(jobs.root / shared["job"]), rank, world, lock)
