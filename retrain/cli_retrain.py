"""``tsnet retrain`` (with a progress bar and a final comparison table) and ``tsnet models list|promote|rollback``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .jobs import JobAlreadyRunning, JobHandle, JobStore
from .registry import ModelRegistry
from .settings import RetrainSettings

__all__ = ["register", "format_comparison"]


def format_comparison(result: dict[str, Any]) -> str:
    """Candidate vs current per evaluation set, then the decision, the version and the push outcome."""
    lines = [f"{'evaluation set':<16} {'faces':>6} {'current':>9} {'candidate':>10} {'delta':>8}  verdict"]
    for name, row in (result.get("comparison") or {}).items():
        verdict = ("ok" if row["passed"] else "regressed") if row["counted"] else "not counted"
        lines.append(
            f"{name:<16} {row['samples']:>6} {100 * row['current_accuracy']:>8.2f}%"
            f" {100 * row['candidate_accuracy']:>9.2f}% {100 * row['delta']:>+8.2f}  {verdict}"
        )
    promoted = result.get("promoted")
    lines.append(f"version {result.get('version')}: {'promoted' if promoted else 'not promoted'}")
    lines += [f"  {reason}" for reason in (result.get("decision") or [])[1:]]
    if result.get("push"):
        lines.append(f"push: {result['push']}")
    return "\n".join(lines)


def _progress(total_epochs: int):
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
    settings = RetrainSettings.from_env(epochs=args.epochs, push_repo=args.push)
    if args.bench:
        from .bench import run_bench

        return run_bench(settings, images=args.bench_images, report=args.bench_json)
    from .job import distributed_context
    from .runner import execute_job

    rank, world = distributed_context() if int(os.environ.get("WORLD_SIZE", "1")) > 1 else (0, 1)
    jobs = JobStore(settings.home)
    lock, shared = None, {"job": None, "error": None}
    if rank == 0:
        try:
            lock = jobs.lock()
            jobs.recover()
            ModelRegistry(settings.home).clean_staging()
            shared["job"] = jobs.create({"epochs": args.epochs, "push_repo": args.push, "world_size": world}).id
        except JobAlreadyRunning as error:
            shared["error"] = str(error)
    if world > 1:
        import torch.distributed as dist

        box = [shared]
        dist.broadcast_object_list(box, src=0)
        shared = box[0]
    if shared["error"]:
        print(f"tsnet retrain: {shared['error']}", file=sys.stderr)
        return 1
    handle = JobHandle(jobs.root / shared["job"])
    bar = None
    if rank == 0:
        bar, on_event = _progress(args.epochs or settings.epochs)
        handle.listeners.append(on_event)
        log = bar.write
    else:

        def log(message: str) -> None:
            pass

    try:
        outcome = execute_job(
            settings,
            args.db or settings.home / "annotations.db",
            handle,
            epochs=args.epochs,
            push_repo=args.push,
            log=log,
            rank=rank,
            world=world,
        )
    finally:
        if bar is not None:
            bar.close()
        if lock is not None:
            lock.release()
    if rank != 0:
        return 0 if outcome["state"] != "failed" else 1
    if outcome["state"] != "succeeded":
        print(f"tsnet retrain: job {handle.id} {outcome['state']}: {outcome.get('error')}", file=sys.stderr)
        return 1
    print(format_comparison(outcome))
    return 0


def _registry() -> ModelRegistry:
    settings = RetrainSettings.from_env()
    return ModelRegistry(settings.home, {"student": settings.base_student, "teacher": settings.base_teacher})


def _list(args: argparse.Namespace) -> int:
    listing = _registry().list()
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
    print(f"serving {_registry().promote(args.version)}")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    print(f"serving {_registry().rollback()}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    text = "fine-tune the teacher, distill the student, evaluate, promote if no regression, register, publish"
    parser = subparsers.add_parser("retrain", help=text, description=text)
    parser.add_argument("--db", type=Path, help="annotation database (default: $TSNET_HOME/annotations.db)")
    parser.add_argument(
        "--push", metavar="REPO", help="Hugging Face model repo to publish to (default: $TSNET_HUB_REPO)"
    )
    parser.add_argument("--epochs", type=int, help="epochs for the teacher fine-tune and the distillation (default: 2)")
    parser.add_argument("--bench", action="store_true", help="time a job on FER+ faces imported into a scratch store")
    parser.add_argument("--bench-images", type=int, default=500, help="newly labelled faces for --bench (default: 500)")
    parser.add_argument("--bench-json", type=Path, help="with --bench: also write the figures as JSON here")
    parser.set_defaults(handler=_retrain)

    models = subparsers.add_parser("models", help="list, promote or roll back registered model versions")
    actions = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="registered versions and which one is served")
    listing.add_argument("--json", action="store_true", help="print the registry as JSON")
    listing.set_defaults(handler=_list)
    promote = actions.add_parser("promote", help="serve VERSION (student and teacher switch atomically)")
    promote.add_argument("version", metavar="VERSION")
    promote.set_defaults(handler=_promote)
    rollback = actions.add_parser("rollback", help="serve the previously promoted version again")
    rollback.set_defaults(handler=_rollback)
