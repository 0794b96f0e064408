"""``tsnet label import | stats | export | bench``: the annotation store from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from .._console import note
from .._options import add_db

__all__ = ["register"]


def _database(args: argparse.Namespace) -> Path:
    """``--db``, else the data folder's ``annotations.db``; said on stderr, so every run names the file it used."""
    if args.db is not None:
        path = args.db
    else:
        from retrain.layout import DataLayout

        path = DataLayout.from_env().database
    note(f"label {args.label_command}", f"annotation database {path.resolve()}")
    return path


def _open(args: argparse.Namespace) -> Any:
    from labeling import AnnotationStore

    return AnnotationStore(_database(args))


def _import(args: argparse.Namespace) -> int:
    from labeling import AnnotationStore
    from labeling.faces import NO_FACE_REASON, store_face_finder
    from labeling.groups import GroupRule, GroupRuleError

    try:
        if args.group_by is not None:
            GroupRule.parse(args.group_by)  # refused before any file is read
    except GroupRuleError as error:
        print(f"tsnet label import: {error}", file=sys.stderr)
        return 2
    detect_faces = None if args.crops else store_face_finder()  # the app's finder: one path for both
    with AnnotationStore(_database(args), detect_faces=detect_faces) as store:
        report = store.import_paths(
            args.paths, labels_from_folders=args.labels_from_folders, annotator=args.annotator, group_by=args.group_by
        )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(
            f"added {report.added}, already present {report.already_present}, label events {report.label_events}, "
            f"skipped {len(report.skipped)} ({report.images_per_second:.1f} images/s)"
        )
        print(f"faces: {report.faces} detected in photos, {report.whole} images used whole as face crops")
        if report.no_face:
            print(
                f"no face found in {report.no_face} photo(s): not imported (face crops larger than 100 px a side"
                " import whole with --crops)"
            )
        for note in report.notes:
            print(f"note: {note}")
    for source, reason in report.skipped:
        print(f"skipped {source}: {reason}", file=sys.stderr)
    failed = [reason for _, reason in report.skipped if reason != NO_FACE_REASON]
    return 1 if failed else 0


def _stats(args: argparse.Namespace) -> int:
    with _open(args) as store:
        stats = store.stats()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    labels = stats["labels"]
    print(f"{stats['images']} images, {stats['labelled']} labelled, {stats['label_events']} label events")
    print(f"{'':<12}" + "".join(f"{name:>10}" for name in labels) + f"{'total':>10}")
    for split, row in stats["counts"].items():
        print(f"{split:<12}" + "".join(f"{row[name]:>10}" for name in labels) + f"{sum(row.values()):>10}")
    for name, activity in stats["annotators"].items():
        print(
            f"annotator {name}: {activity['events']} events ({activity['undone']} undone)"
            f" on {activity['images']} images"
        )
    agreement = stats["agreement"]
    if agreement["images_with_several_annotators"]:
        print(f"agreement: {agreement['unanimous_rate']:.1%} unanimous, {agreement['pairwise_agreement']:.1%} pairwise")
    return 0


def _export(args: argparse.Namespace) -> int:
    with _open(args) as store:
        if args.push:
            url = store.push_dataset(
                args.push, token=os.environ.get("HF_TOKEN"), endpoint=args.endpoint, private=args.private or None
            )
            print(f"pushed to {url}")
        elif args.format == "folder":
            print(f"wrote {store.export_folder(args.to, image=args.image)}")
        else:
            dataset = store.export_dataset(image=args.image)
            dataset.save_to_disk(str(args.to))
            print(f"saved {', '.join(f'{s}: {len(d)}' for s, d in dataset.items())} to {args.to}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    import tempfile

    from labeling.bench import bench_import, label_concurrently

    results = {}
    if args.workers:
        with tempfile.TemporaryDirectory() as temporary:
            results["concurrency"] = label_concurrently(Path(temporary) / "bench.db", args.workers, args.events)
            results["concurrency"].pop("per_worker")
    if args.images:
        results["import"] = bench_import(args.images)
    print(json.dumps(results, indent=2))
    return 0


def register(subparsers: Any) -> None:
    """Add ``label`` and its subcommands to the ``tsnet`` parser."""
    subparsers.add_command(
        "label",
        _configure,
        help="annotation store: import, stats, export",
        description="The annotation store: import images, see label statistics, export datasets.",
    )


def _configure(label: argparse.ArgumentParser) -> None:
    label.set_defaults(handler=lambda _args: label.print_help() or 2)
    commands = label.add_subparsers(dest="label_command", metavar="SUBCOMMAND")

    importer = commands.add_parser("import", help="add images (files, folders, zips, FER+ folders); idempotent")
    importer.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="image files, folders, .zip archives, FER+ folders, or a labels .csv (header: path[,label][,group])",
    )
    add_db(importer)
    importer.add_argument(
        "--labels-from-folders", action="store_true", help="label each image by its top subfolder name"
    )
    importer.add_argument(
        "--annotator", default="import", help="who the imported labels are from (default: %(default)s)"
    )
    importer.add_argument("--json", action="store_true", help="print the import report as JSON")
    faces = importer.add_mutually_exclusive_group()
    faces.add_argument(
        "--faces",
        action="store_true",
        help="detect and align every face in photos, as the app does (the default); images at most"
        " 100 px a side are face crops already and used whole; photos without a face are reported, not imported",
    )
    faces.add_argument(
        "--crops", action="store_true", help="the images are face crops: use each one whole, detect nothing"
    )
    importer.add_argument(
        "--group-by",
        metavar="PATTERN",
        help="images of one group always share a split: 'folder' (the folder holding each file) or a regular"
        " expression on the path below PATH whose first group names the group, e.g. '(S\\d+)'",
    )
    importer.set_defaults(handler=_import)

    stats = commands.add_parser("stats", help="counts per class and split, per annotator, agreement")
    add_db(stats)
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    stats.set_defaults(handler=_stats)

    export = commands.add_parser("export", help="Hugging Face DatasetDict to disk or the Hub, or an image folder")
    target = export.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", type=Path, metavar="DIR", help="write here (datasets.save_to_disk, or see --format)")
    target.add_argument(
        "--push", metavar="REPO", help="push to this Hub dataset repo (endpoint: --endpoint or HF_ENDPOINT)"
    )
    add_db(export)
    export.add_argument("--format", choices=("hf", "folder"), default="hf", help="--to layout (default: %(default)s)")
    export.add_argument("--image", choices=("crop", "original"), default="crop", help="which image to export")
    export.add_argument("--endpoint", help="Hub URL (default: HF_ENDPOINT or huggingface.co)")
    export.add_argument("--private", action="store_true", help="create the Hub repo as private")
    export.set_defaults(handler=_export)

    bench = commands.add_parser("bench", help="measure import speed and concurrent labelling throughput")
    bench.add_argument("--images", type=int, default=1000, help="generated photos to import (0 to skip)")
    bench.add_argument("--workers", type=int, default=8, help="labelling processes (0 to skip)")
    bench.add_argument("--events", type=int, default=250, help="labels per process")
    bench.set_defaults(handler=_bench)
