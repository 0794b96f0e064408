"""``tsnet explain-bench DIR``: how fine and how faithful the Grad-CAM maps are, for the student and the teacher."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._console import note, note_data_folder

__all__ = ["register"]

_ROW = (
    "{recipe} on {layer_names}: effective grid {effective_grid:.0f}x{effective_grid:.0f} "
    "(p10 {effective_grid_p10:.0f}, layer grid {layer_grid}), deletion score {deletion_score:.2f}x "
    "(top {fraction:.0%} drop {top_drop:.3f} vs random {random_drop:.3f}; "
    "vs scattered pixels {deletion_score_scattered:.2f}x), {ms_per_explanation:.0f} ms per explanation"
)


def _row(row: dict[str, Any], fraction: float) -> str:
    layers = row["layers"]
    names = "+".join(layers) if isinstance(layers, list | tuple) else str(layers)
    return _ROW.format(**row, layer_names=names, fraction=fraction)


def _print_report(report: dict[str, Any]) -> None:
    print(f"{report['faces']} faces, top {report['fraction']:.0%} vs random, fill {report['fill']}")
    for name, entry in report["models"].items():
        print(f"{name} ({entry['architecture']} {entry['version']}) recipe {_row(entry, report['fraction'])}")
        for option in entry.get("options", []):
            print(f"    option {_row(option, report['fraction'])}")


def _run(args: argparse.Namespace) -> int:
    from core.classifier import load_classifier
    from core.explain_bench import explain_bench
    from retrain.layout import DataLayout

    layout = DataLayout.from_env()
    note_data_folder("explain-bench", layout.home)  # student and teacher: the served versions when promoted
    models = [load_classifier(layout.weights_folder(name)) for name in ("student", "teacher")]  # named by folder
    try:
        report = explain_bench(args.folder, models=models, limit=args.limit, options=args.options)
    except ValueError as error:  # not a folder of faces, nothing readable in it: already plain words
        note("explain-bench", f"error: {error}")
        return 1
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        _print_report(report)
    return 0


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folder", metavar="DIR", help="a folder of face crops, flat or in class subfolders (e.g. FER2013Valid)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--limit", type=int, default=150, help="faces measured (default: %(default)s)")
    parser.add_argument(
        "--options",
        action="store_true",
        help="also measure every Grad-CAM recipe considered (target layers, fusion, enlarged forward; slow)",
    )
    parser.set_defaults(handler=_run)


def register(subparsers: Any) -> None:
    """Add ``explain-bench`` to the ``tsnet`` command."""
    text = (
        "Grad-CAM effective grid and deletion score (top 20 %% of the map against 20 %% random pixels) of the "
        "student and the teacher on a folder of faces"
    )
    subparsers.add_command("explain-bench", _configure, help=text, description=text)
