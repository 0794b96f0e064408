"""``python -m retrain.jobs.worker JOB_FOLDER``: the background process RetrainService starts for one job.

It inherits the already-taken job lock as a file descriptor, so the lock is held exactly as long as the job
runs, and the kernel releases it if the worker is killed (the next start then marks the job failed).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .._files import FileLock
from ..settings import RetrainSettings
from .execute import execute_job
from .state import SETTINGS_FILE, JobHandle, JobStore


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m retrain.jobs.worker")
    parser.add_argument("job_folder", type=Path)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--lock-fd", type=int, required=True)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--push")
    args = parser.parse_args(argv)
    settings = RetrainSettings.from_json((args.job_folder / SETTINGS_FILE).read_text())
    lock = FileLock.adopt(JobStore(settings.home).lock_path, args.lock_fd)
    handle = JobHandle(args.job_folder)
    handle.update(pid=os.getpid())
    with open(args.job_folder / "log.txt", "a") as log_file:

        def log(message: str) -> None:
            log_file.write(message + "\n")
            log_file.flush()

        try:
            outcome = execute_job(settings, args.db, handle, epochs=args.epochs, push_repo=args.push, log=log)
        finally:
            lock.release()
    return 0 if outcome["state"] in ("succeeded", "cancelled") else 1


if __name__ == "__main__":
    sys.exit(main())
