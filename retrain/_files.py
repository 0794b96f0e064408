"""Crash-safe file primitives shared by the registry and the job store: atomic JSON writes and a file lock."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any

from core.atomic import write_bytes_atomically

__all__ = ["write_json_atomically", "read_json", "FileLock", "replace_symlink"]


def write_json_atomically(path: Path, data: Any) -> None:
    """Readers see the old or the new file, never half of one, even if the process dies mid-write."""
    write_bytes_atomically(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode(), durable=True)


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def replace_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` in one rename, so a reader never finds it missing or half-switched."""
    temporary = link.parent / f".{link.name}.{os.getpid()}.tmp"
    temporary.unlink(missing_ok=True)
    os.symlink(target, temporary)
    os.replace(temporary, link)


# Not the ``filelock`` library: its lock keeps the descriptor private, so a held lock cannot be handed to the worker
# process through ``pass_fds`` and adopted there (:meth:`FileLock.adopt`), which the retrain service relies on.
class FileLock:
    """An exclusive ``flock``: held across processes, released by the kernel when its holder dies (even on kill -9)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    @classmethod
    def adopt(cls, path: Path, fd: int) -> FileLock:
        """Take over a lock already held through an inherited descriptor (the background worker)."""
        lock = cls(path)
        lock.fd = fd
        return lock

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor of the open file drops the flock
            self.fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
