"""Run one retrain job to a final state: the shared body of ``tsnet retrain``, the background worker and torchrun."""

from __future__ import annotations

import shutil
import traceback
from pathlib import Path
from typing import Any

from labeling import AnnotationStore

from .job import Log, run_retrain
from .jobs import JobCancelled, JobHandle
from .registry import ModelRegistry
from .settings import RetrainSettings

__all__ = ["execute_job"]


def execute_job(
    settings: RetrainSettings,
    db_path: Path,
    handle: JobHandle,
    *,
    epochs: int | None = None,
    push_repo: str | None = None,
    log: Log = print,
    rank: int = 0,
    world: int = 1,
) -> dict[str, Any]:
    """Run the job and record how it ended (succeeded / cancelled / failed with the error); rank 0 writes."""
    is_main = rank == 0
    try:
        if not Path(db_path).is_file():  # opening a missing path would create an empty database
            raise FileNotFoundError(f"no annotation database at {db_path}; pass --db or label some images first")
        with AnnotationStore(db_path) as store:
            result = run_retrain(
                settings, store, handle, epochs=epochs, push_repo=push_repo, log=log, rank=rank, world=world
            )
    except JobCancelled as error:
        if is_main:
            handle.finish("cancelled", error=str(error))
        return {"state": "cancelled", "error": str(error)}
    except Exception as error:
        message = f"{type(error).__name__}: {error}"
        if is_main:
            (handle.folder / "traceback.txt").write_text(traceback.format_exc())
            handle.finish("failed", error=message)
        log(f"retrain failed: {message}")
        return {"state": "failed", "error": message}
    finally:
        if is_main:
            shutil.rmtree(handle.work_dir, ignore_errors=True)
            ModelRegistry(settings.home).clean_staging()
    if is_main:
        handle.finish("succeeded", **result)
    return {"state": "succeeded", **result}
