"""Rows of an earlier ``tsnet report`` for runs whose folders are gone: a run folder can be deleted once reported,
and adding one new run must not wipe every other row. Each kept row says it was evaluated earlier."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["RESULTS_NAME", "EARLIER_KEY", "EARLIER_MARK", "with_earlier_results", "earlier_names", "compact_history"]

RESULTS_NAME = "results.json"
EARLIER_KEY = "evaluated_earlier"  # True on a row read from the earlier results.json, not evaluated now
EARLIER_MARK = "\u2020"  # what a kept row carries after its name in the tables


def with_earlier_results(
    results: dict[str, dict[str, Any]], out: Path, planned: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """``results`` plus the planned runs missing from it that ``out/results.json`` holds, marked with
    :data:`EARLIER_KEY`, in plan order. Runs evaluated now always win over earlier rows."""
    path = out / RESULTS_NAME
    earlier: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.is_file() else {}
    merged: dict[str, dict[str, Any]] = {}
    for name in planned:
        if name in results:
            merged[name] = results[name]
        elif name in earlier:
            merged[name] = {**earlier[name], EARLIER_KEY: True}
    return merged


def earlier_names(results: dict[str, dict[str, Any]]) -> list[str]:
    """The runs whose rows were read from the earlier results.json."""
    return [name for name, result in results.items() if result.get(EARLIER_KEY)]


def compact_history(history: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """The per-epoch validation accuracy a report prints, small enough to keep in results.json."""
    return [
        {"epoch": record["epoch"], "val_accuracy": record.get("val_accuracy")}
        for record in history or []
        if "epoch" in record
    ]
