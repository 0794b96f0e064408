"""What every command says besides its result: notes on stderr (stdout stays the result, e.g. clean JSON)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

__all__ = ["note", "note_data_folder", "note_model", "note_shipped_lookup"]

SHIPPED_MODELS = ("student", "teacher")  # the --model names resolved through the data folder's served/


def note(command: str, message: str) -> None:
    """One line on stderr, prefixed like argparse's own messages."""
    print(f"tsnet {command}: {message}", file=sys.stderr)


def note_data_folder(command: str, home: Path | None = None) -> Path:
    """Say which data folder (``$TSNET_HOME``, else ``./tsnet-data``) the command reads or writes; return it."""
    if home is None:
        from retrain.settings import tsnet_home

        home = tsnet_home()
    home = Path(home).resolve()
    note(command, f"data folder {home}")
    return home


def note_model(command: str, requested: str, classifier: Any) -> None:
    """Say which model version and backend answer; a shipped name is looked up in the data folder first."""
    note(command, f"model version {classifier.version} on {classifier.backend}, weights {classifier.source}")
    note_shipped_lookup(command, requested)


def note_shipped_lookup(command: str, requested: str) -> None:
    """``student`` / ``teacher`` are the data folder's served version when one is promoted: say which folder."""
    if requested in SHIPPED_MODELS:
        note_data_folder(command)
