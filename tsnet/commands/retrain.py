"""``tsnet retrain`` (with a progress bar and a final comparison table) and ``tsnet models list|promote|rollback``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .._console import note_data_folder
from .._options import add_db

__all__ = ["register"]


def _progress(total_epochs: int) -> tuple[Any, Any]:
    """A tqdm bar over all training epochs (teacher + student), described by the current stage."""
    from tqdm import tqdm

    bar = tqdm(total=2 * total_epochs, desc="retrain", unit="epoch", file=sys.stderr)

    def on_event(event: dict[str, Any]) -> None:
        if event.get("epoch") is not None:
            metrics = event.get("metrics") or {}
            bar.set_postfix(stage=event["stage"], loss=f"{metrics.get('train_loss', float('nan')):.3f}")
            bar.update(1)
        else:
            bar.set_description(event["stage"])  # the stage's message itself arrives through the log

    return bar, on_event


def _retrain(args: argparse.Namespace) -> int:
    from retrain.settings import RetrainSettings

    settings = RetrainSettings.from_env(epochs=args.epochs, push_repo=args.push)
    if args.bench:
        note_data_folder("retrain", settings.home)  # the served version the bench starts from
        if args.bench_images is not None:  # the FER+ timing scenario
            from retrain.jobs.bench import run_bench

            return run_bench(settings, images=args.bench_images, report=args.bench_json)
        return _domain_bench(args, settings)
    from retrain.jobs import JobAlreadyRunning
    from retrain.jobs.foreground import claim_job
    from retrain.jobs.promotion import format_comparison
    from retrain.layout import DataLayout

    try:
        job = claim_job(settings, epochs=args.epochs, push_repo=args.push)
    except JobAlreadyRunning as error:
        print(f"tsnet retrain: {error}", file=sys.stderr)
        return 1
    bar = None
    if job.rank == 0:
        note_data_folder("retrain", settings.home)
        bar, on_event = _progress(args.epochs or settings.epochs)
        job.handle.listeners.append(on_event)
        log = bar.write
    else:

        def log(message: str) -> None:
            pass

    try:
        db = args.db or DataLayout(settings.home).database
        outcome = job.run(settings, db, epochs=args.epochs, push_repo=args.push, log=log)
    finally:
        if bar is not None:
            bar.close()
    if job.rank != 0:
        return 0 if outcome["state"] != "failed" else 1
    if outcome["state"] != "succeeded":
        print(f"tsnet retrain: job {job.handle.id} {outcome['state']}: {outcome.get('error')}", file=sys.stderr)
        return 1
    print(format_comparison(outcome))
    return 0


def _domain_bench(args: argparse.Namespace, settings: Any) -> int:
    """The retrain scenario on real photos of people (``--bench``): figures printed, or JSON with ``--json``."""
    from retrain.jobs import domain_bench

    data = args.bench_data or domain_bench.DEFAULT_DOMAIN_DATA
    several = args.bench_seeds != 1  # one run keeps its own output; several print each run and their spread
    try:
        if several:
            result = domain_bench.run_domain_bench_seeds(settings, data, args.bench_store_people, args.bench_seeds)
        else:
            result = domain_bench.run_domain_bench(settings, data, args.bench_store_people)
    except (FileNotFoundError, ValueError) as error:
        print(f"tsnet retrain --bench: {error}", file=sys.stderr)
        return 2
    if args.bench_json is not None:
        domain_bench.write_json(result, args.bench_json)
    formatted = domain_bench.format_domain_bench_seeds if several else domain_bench.format_domain_bench
    print(json.dumps(result, indent=2) if args.json else formatted(result))
    runs = result["runs"] if several else [result]
    return 0 if all(run["state"] == "succeeded" for run in runs) else 1


def _registry(command: str) -> Any:
    from retrain.registry import ModelRegistry
    from retrain.settings import RetrainSettings

    settings = RetrainSettings.from_env()
    note_data_folder(f"models {command}", settings.home)
    return ModelRegistry.from_settings(settings)


def _list(args: argparse.Namespace) -> int:
    listing = _registry("list").list()
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    print(f"{'version':<8} {'created':<26} {'parent':<8} {'promoted':<9} {'store_test':>10} {'benchmark':>10}  pushed")
    for entry in listing["versions"]:
        evaluations = entry["metrics"].get("evaluations", {})
        cells = [
            f"{100 * evaluations[name]['accuracy']:.2f}%" if name in evaluations else "-"
            for name in ("store_test", "base_benchmark")
        ]
        marker = "*" if entry["version"] == listing["current"] else " "
        print(
            f"{marker}{entry['version']:<7} {entry['created'] or '-':<26} {entry['parent'] or '-':<8}"
            f" {'yes' if entry['promoted'] else 'no':<9} {cells[0]:>10} {cells[1]:>10}  {entry['pushed'] or '-'}"
        )
    return 0


def _promote(args: argparse.Namespace) -> int:
    print(f"serving {_registry('promote').promote(args.version)}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    print(f"serving {_registry('rollback').rollback()}")
    return 0


def _configure_retrain(parser: argparse.ArgumentParser) -> None:
    add_db(parser)
    parser.add_argument(
        "--push", metavar="REPO", help="Hugging Face model repo to publish to (default: $TSNET_HUB_REPO)"
    )
    parser.add_argument("--epochs", type=int, help="training epochs (default: $TSNET_RETRAIN_EPOCHS, else 6)")
    parser.add_argument(
        "--bench",
        action="store_true",
        help="the retrain scenario on real photos: split --bench-data's people into your store and unseen people,"
        " import, retrain once on the defaults, and print job seconds, unseen-people and benchmark accuracy before"
        " and after, and whether it was promoted",
    )
    parser.add_argument(
        "--bench-data",
        type=Path,
        help="photos with labels.csv (path,label,subject[,raters_agree]); default taiwanese-dev",
    )
    parser.add_argument(
        "--bench-store-people", type=int, default=11, help="people of --bench-data in the store (default: 11)"
    )
    parser.add_argument(
        "--bench-seeds",
        type=int,
        default=1,
        metavar="N",
        help="with --bench: run the job N times over one import, on TSNET_RETRAIN_SEED, +1, ..., and print each run"
        " and the spread (one run's unseen-people figure moves by a few points with the seed alone; default: 1)",
    )
    parser.add_argument(
        "--bench-images", type=int, help="instead: time a job on this many FER+ faces imported into a scratch store"
    )
    parser.add_argument("--bench-json", type=Path, help="with --bench: also write the figures as JSON here")
    parser.add_argument("--json", action="store_true", help="with --bench: print the figures as JSON")
    parser.set_defaults(handler=_retrain)


def _configure_models(models: argparse.ArgumentParser) -> None:
    actions = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="registered versions and which one is served")
    listing.add_argument("--json", action="store_true", help="print the registry as JSON")
    listing.set_defaults(handler=_list)
    promote = actions.add_parser("promote", help="serve VERSION (student and teacher switch atomically)")
    promote.add_argument("version", metavar="VERSION")
    promote.set_defaults(handler=_promote)
    rollback = actions.add_parser("rollback", help="serve the previously promoted version again")
    rollback.set_defaults(handler=_rollback)


def register(subparsers: Any) -> None:
    """Add ``retrain`` and ``models`` to the ``tsnet`` command."""
    text = (
        "fine-tune the served student on the store's labelled faces, evaluate, promote when it is shown better on"
        " the store's test faces and holds on the benchmark, register, publish"
    )
    subparsers.add_command("retrain", _configure_retrain, help=text, description=text)
    subparsers.add_command("models", _configure_models, help="list, promote or roll back registered model versions")
