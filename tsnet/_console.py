"""What every command says besides its result: notes on stderr (stdout stays the result, e.g. clean JSON)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

__all__ = ["note", "note_data_folder", "note_model", "note_shipped_lookup", "resolve_model"]


def note(command: str, message: str) -> None:
    """One line on stderr, prefixed like argparse's own messages."""
    print(f"tsnet {command}: {message}", file=sys.stderr)


def note_data_folder(command: str, home: Path) -> None:
    """Say which data folder (``$TSNET_HOME``, else ``./tsnet-data``) the command reads or writes."""
    note(command, f"data folder {Path(home).resolve()}")


def note_shipped_lookup(command: str, requested: str) -> None:
    """``student`` / ``teacher`` mean the data folder's served version when one is promoted: name that folder."""
    from retrain.layout import MODEL_NAMES, DataLayout

    if requested in MODEL_NAMES:
        note_data_folder(command, DataLayout.from_env().home)


def resolve_model(requested: str) -> str | Path:
    """``student`` / ``teacher``: the data folder's served version when one is promoted, else the shipped weights."""
    from retrain.layout import DataLayout

    return DataLayout.from_env().resolve_model(requested)


def note_model(command: str, requested: str, classifier: Any) -> None:
    """Say which model version and backend answer, and where a shipped name was looked up."""
    note(command, f"model version {classifier.version} on {classifier.backend}, weights {classifier.source}")
    note_shipped_lookup(command, requested)
