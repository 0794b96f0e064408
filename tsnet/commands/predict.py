"""``tsnet predict``, ``bench``, ``export-onnx`` and ``export-tflite``: the face pipeline from the command line."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

from .._console import note, note_model, note_shipped_lookup, resolve_model

__all__ = ["register"]

_MODEL_HELP = "student, teacher (the shipped or served weights), a weights folder or an exported .onnx"
_PREDICT_EPILOG = (
    "Exit status: 0 when every input was read (a photo without a face counts as read), 1 when any input could not "
    "be read (a missing file, an empty file or a non-image: its line says why), 2 on a usage error or a missing "
    "model. Folders show a progress bar on stderr when stderr is a terminal; stdout holds only the results."
)


def _text_lines(result: dict[str, Any]) -> list[str]:
    if result["error"]:
        return [f"{result['file']}: error: {result['error']}"]
    faces = result["faces"]
    if not faces:
        return [f"{result['file']}: no face found"]
    lines = [f"{result['file']}: {len(faces)} face{'s' if len(faces) != 1 else ''}"]
    for index, face in enumerate(faces, start=1):
        ranked = sorted(face["probs"].items(), key=lambda item: -item[1])
        others = ", ".join(f"{name} {p:.2f}" for name, p in ranked[1:4])
        box = ", ".join(f"{v:.0f}" for v in face["box"])
        lines.append(f"  face {index} [{box}]: {face['label']} {ranked[0][1]:.2f} ({others})")
    return lines


def _write_csv(results: list[dict[str, Any]], out: Path, labels: tuple[str, ...]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "face", "x0", "y0", "x1", "y1", "label", *labels, "error"])
        for result in results:
            if result["error"] or not result["faces"]:
                writer.writerow(
                    [result["file"], "", "", "", "", "", "", *[""] * len(labels), result["error"] or "no face"]
                )
            for index, face in enumerate(result["faces"], start=1):
                probs = [f"{face['probs'].get(name, 0.0):.6f}" for name in labels]
                writer.writerow([result["file"], index, *face["box"], face["label"], *probs, ""])


def _progress(paths: list[Path]) -> Any:
    """A bar over the files on stderr, shown only on a terminal: logs and pipes get no carriage-return noise."""
    from tqdm import tqdm

    return tqdm(paths, desc="predict", unit="file", file=sys.stderr, disable=len(paths) < 2 or not sys.stderr.isatty())


def _classify_all(args: argparse.Namespace, classifier: Any, paths: list[Path]) -> list[dict[str, Any]]:
    """Every file's result; text lines are printed as each file finishes, above the progress bar."""
    from tqdm import tqdm

    from core.predict_files import predict_file

    model = {"model_version": classifier.version, "backend": classifier.backend}
    cam_dir = Path(args.cam) if args.cam else None
    results = []
    with _progress(paths) as bar:
        for path in bar:
            results.append({**predict_file(classifier, path, cam_dir), **model})
            if not args.json:
                for line in _text_lines(results[-1]):
                    tqdm.write(line, file=sys.stdout)
    return results


def _report_outcome(args: argparse.Namespace, results: list[dict[str, Any]]) -> int:
    """The Grad-CAM files written and the unreadable inputs, on stderr; 1 when any input could not be read."""
    written = [cam for result in results for cam in result.get("cams", [])]
    if args.cam:
        note("predict", f"wrote {len(written)} Grad-CAM overlay{'s' if len(written) != 1 else ''} to {args.cam}")
        for cam in written:
            print(f"  {cam}", file=sys.stderr)
    failed = sum(1 for result in results if result["error"])
    if failed:
        note("predict", f"{failed} of {len(results)} input{'s' if len(results) != 1 else ''} could not be read")
    return 1 if failed else 0


def _run_predict(args: argparse.Namespace) -> int:
    import torch

    from core.classifier import load_classifier
    from core.predict_files import collect_inputs

    # One intra-op thread: a photo's few 64 px faces gain nothing from more, and beside other work a second
    # (spinning) OpenMP thread doubled `tsnet predict photo.jpg` (2.2 s against 4.3 s at load 5); same answers.
    torch.set_num_threads(1)
    classifier = load_classifier(resolve_model(args.model), backend=args.backend)
    note_model("predict", args.model, classifier)
    paths = collect_inputs(args.paths)
    for text in args.paths:
        if Path(text).is_dir() and not any(Path(text) in path.parents for path in paths):
            note("predict", f"no images in {text}")
    results = _classify_all(args, classifier, paths)
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    if args.csv:
        _write_csv(results, Path(args.csv), classifier.labels)
    return _report_outcome(args, results)


def _run_bench(args: argparse.Namespace) -> int:
    from core.bench import format_report, run_bench

    note_shipped_lookup("bench", args.model)
    report = run_bench(str(resolve_model(args.model)), repeats=args.repeats, accuracy_data=args.accuracy_data)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from core.classifier import load_classifier

    if args.format == "tflite":
        from core.litert_backend import export_tflite as export
    else:
        from core.onnx_backend import export_onnx as export
    classifier = load_classifier(resolve_model(args.model))
    note_model(f"export-{args.format}", args.model, classifier)
    calibration = None
    if args.int8:
        from core.bench import load_faces

        calibration = load_faces(args.int8, classifier.labels, limit=args.calibration_limit)[0]
    export(classifier.model, classifier.config, args.out, calibration=calibration)
    kind = f"int8, calibrated on {len(calibration)} faces" if calibration is not None else "float32"
    print(f"wrote {args.out} ({kind}, {classifier.config.architecture}, labels {','.join(classifier.labels)})")
    return 0


def _configure_predict(parser: argparse.ArgumentParser) -> None:
    from core.classifier import BACKENDS
    from core.data.folder import IMAGE_SUFFIXES

    parser.epilog = _PREDICT_EPILOG
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help=f"image files or folders ({', '.join(sorted(IMAGE_SUFFIXES))})"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON list, an object per input file (with the model_version and backend that answered)",
    )
    parser.add_argument(
        "--csv", metavar="OUT", help="also write one CSV row per face (or per unreadable/faceless file)"
    )
    parser.add_argument(
        "--cam", metavar="DIR", help="save Grad-CAM overlays (photo and aligned crops) into DIR and list them"
    )
    parser.add_argument("--model", default="student", help=_MODEL_HELP)
    parser.add_argument("--backend", choices=BACKENDS, default="torch", help="inference engine for a weights folder")
    parser.set_defaults(handler=_run_predict)


def _configure_bench(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--model", default="student", help=_MODEL_HELP)
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per photo stage (default 30)")
    parser.add_argument(
        "--accuracy-data",
        metavar="DIR",
        help="FER+ split (e.g. FER2013Valid): also report PyTorch vs ONNX/int8 accuracy",
    )
    parser.set_defaults(handler=_run_bench)


def _export_configurator(fmt: str, models: str) -> Any:
    def configure(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("out", metavar="OUT", help=f"the .{fmt} file to write")
        parser.add_argument("--model", default="student", help=f"{models} or a weights folder")
        parser.add_argument(
            "--int8", metavar="DIR", help="quantize to int8, calibrating on faces from this FER+ or class folder"
        )
        parser.add_argument(
            "--calibration-limit", type=int, default=512, help="faces used for int8 calibration (default 512)"
        )
        parser.set_defaults(handler=_run_export, format=fmt)

    return configure


def register(subparsers: Any) -> None:
    """Add ``predict``, ``bench``, ``export-onnx`` and ``export-tflite`` to the ``tsnet`` command."""
    text = "detect faces in photos or folders and classify their expressions"
    subparsers.add_command("predict", _configure_predict, help=text, description=text)
    text = "per-stage latency (p50/p95), per-crop classification time and webcam frames per second"
    subparsers.add_command("bench", _configure_bench, help=text, description=text)
    exports = {
        "onnx": ("export a model to ONNX for ONNX Runtime (config kept in the file's metadata)", "student, teacher"),
        "tflite": ("export the student to LiteRT/TFLite for XNNPACK (config kept in the file's metadata)", "student"),
    }
    for fmt, (text, models) in exports.items():
        subparsers.add_command(f"export-{fmt}", _export_configurator(fmt, models), help=text, description=text)
