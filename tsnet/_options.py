"""Flags that several commands share, written once."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_db"]


def add_db(parser: argparse.ArgumentParser) -> None:
    """``--db PATH``: the annotation database (default: the data folder's ``annotations.db``)."""
    parser.add_argument("--db", type=Path, help="annotation database (default: $TSNET_HOME/annotations.db)")
