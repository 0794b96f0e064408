"""Run one retrain job to a final state: the shared body of ``tsnet retrain``, the background worker and torchrun."""

from __future__ import annotations

import re
import shutil
import traceback
from pathlib import Path
from typing import Any

from labeling import AnnotationStore

from ..registry import ModelRegistry
from ..settings import RetrainSettings
from .pipeline import Log, run_retrain
from .state import JobCancelled, JobHandle

__all__ = ["execute_job", "plain_error"]

_OUR_PACKAGES = ("retrain", "labeling", "core")
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~])/(?:[^\s'\",;:/]+/)*([^\s'\",;:/]+)")
UNEXPECTED = "the retrain stopped on an unexpected error; the job folder's traceback.txt has the details"


def _raised_by_us(error: BaseException) -> bool:
    """Whether the innermost frame of ``error`` is in one of our packages (so its message was written for people)."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "") if tb is not None else ""
    return module.split(".")[0] in _OUR_PACKAGES


def plain_error(error: BaseException, home: Path | None = None) -> str:
    """A failed job's error as the app shows it: our own messages with folders reduced to their names,
    anything raised inside a library as one plain line (the traceback stays in the job folder)."""
    if not isinstance(error, (ValueError, FileNotFoundError, RuntimeError)) or not _raised_by_us(error):
        return UNEXPECTED
    message = str(error)
    if home is not None:
        for form in {str(Path(home).resolve()), str(home)}:
            message = message.replace(form + "/", "").replace(form, "the data folder")
    return _ABSOLUTE_PATH.sub(lambda match: match.group(1), message)


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
        message = plain_error(error, settings.home)
        if is_main:
            (handle.folder / "traceback.txt").write_text(traceback.format_exc())
            handle.finish("failed", error=message)
        log(f"retrain failed: {type(error).__name__}: {error}")  # the job's own log, for the operator
        return {"state": "failed", "error": message}
    finally:
        if is_main:
            shutil.rmtree(handle.work_dir, ignore_errors=True)
            ModelRegistry(settings.home).clean_staging()
    if is_main:
        handle.finish("succeeded", **result)
    return {"state": "succeeded", **result}
