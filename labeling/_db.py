"""SQLite connection and write discipline shared by every store operation.

Many processes (the Gradio app, CLI imports, the retrain loop) write one database file. WAL mode lets
readers run beside a writer; writers take the lock up front with ``BEGIN IMMEDIATE`` (a deferred
transaction that later upgrades can fail at once with SQLITE_BUSY, which no busy timeout can fix);
and whatever SQLITE_BUSY still escapes the busy timeout is retried here with jittered exponential
backoff, so "database is locked" never reaches a user unless the lock is held for minutes.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import sqlite_utils

__all__ = ["connect", "retrying", "write_transaction", "StoreBusyError", "BUSY_TIMEOUT_MS"]

BUSY_TIMEOUT_MS = 5_000
RETRY_DEADLINE_S = 120.0
_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED (extended codes share the low byte)

T = TypeVar("T")


class StoreBusyError(RuntimeError):
    """The database stayed locked past the retry deadline (another process holds a long write)."""


def _is_busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _BUSY_CODES
    text = str(error).lower()
    return "locked" in text or "busy" in text


def retrying(operation: Callable[[], T], deadline_s: float = RETRY_DEADLINE_S) -> T:
    """Run ``operation`` again after SQLITE_BUSY, backing off with jitter until ``deadline_s``."""
    start = time.monotonic()
    attempt = 0
    while True:
        try:
            return operation()
        except sqlite3.OperationalError as error:
            if not _is_busy(error):
                raise
            if time.monotonic() - start > deadline_s:
                raise StoreBusyError(f"database still locked after {deadline_s:.0f}s: {error}") from error
            time.sleep(min(0.5, 0.002 * 2**attempt) * random.uniform(0.5, 1.5))
            attempt += 1


def connect(path: Path) -> sqlite_utils.Database:
    """Open ``path`` in WAL mode with a busy timeout; safe to share between threads behind a lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    db = sqlite_utils.Database(conn)

    def configure() -> None:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.enable_wal()
        # In WAL mode NORMAL never corrupts the database; a power cut can only drop the last commits.
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")

    retrying(configure)
    return db


@contextmanager
def _immediate(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    else:
        try:
            db.conn.execute("COMMIT")
        except BaseException:
            if db.conn.in_transaction:
                db.conn.execute("ROLLBACK")  # so the retry starts a fresh transaction
            raise


def write_transaction(db: sqlite_utils.Database, body: Callable[[sqlite_utils.Database], T]) -> T:
    """Run ``body`` in one ``BEGIN IMMEDIATE`` transaction, redoing it whole after SQLITE_BUSY."""

    def attempt() -> T:
        with _immediate(db):
            return body(db)

    return retrying(attempt)
