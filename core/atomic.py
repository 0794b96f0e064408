"""Crash-safe file writes, the one way the project replaces a file: readers see the old file or the new one,
never half of one, even when the writer dies mid-write."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["replacing", "write_bytes_atomically"]


@contextmanager
def replacing(path: str | Path, durable: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; on success it replaces ``path`` in one rename (mode 0644), on
    failure it is removed. ``durable`` flushes the new file to disk before the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        if durable:
            descriptor = os.open(temporary, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_bytes_atomically(path: str | Path, data: bytes, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` through :func:`replacing`."""
    with replacing(path, durable) as temporary:
        temporary.write_bytes(data)
