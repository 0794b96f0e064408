"""``tsnet predict``, ``bench``, ``export-onnx`` and ``export-tflite``: the face pipeline from the command line."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .data.folder import IMAGE_SUFFIXES, list_images

__all__ = ["register", "predict_files", "collect_inputs"]

_MODEL_HELP = "student, teacher (the shipped or served weights), a weights folder or an exported .onnx"


def collect_inputs(paths: list[str]) -> list[Path]:
    """Files as given, folders expanded to the images below them (sorted); missing paths are kept to report."""
    found: list[Path] = []
    for text in paths:
        path = Path(text)
        found.extend(list_images(path) if path.is_dir() else [path])
    return found


def _predict_one(classifier: Any, path: Path, cam_dir: Path | None) -> dict[str, Any]:
    from .images import ImageError, open_image

    try:
        image = open_image(path)
    except ImageError as error:
        return {"file": str(path), "faces": [], "error": str(error)}
    faces = classifier.predict_image(image)
    if cam_dir is not None and faces:
        _save_cams(classifier, image, faces, cam_dir / path.stem)
    return {"file": str(path), "faces": [face.to_dict() for face in faces], "error": None}


def _save_cams(classifier: Any, image: Any, faces: list[Any], stem: Path) -> None:
    """``<stem>_cam.png``: every face's Grad-CAM on the photo; ``<stem>_face<i>_cam.png``: on each aligned crop."""
    from .explain import overlay_heatmap

    stem.parent.mkdir(parents=True, exist_ok=True)
    explanations = classifier.gradcam.explain_image(image, faces)
    combined = np.max([explanation.image_heatmap for explanation in explanations], axis=0)
    overlay_heatmap(image, combined).save(f"{stem}_cam.png")
    for index, (face, explanation) in enumerate(zip(faces, explanations), start=1):
        overlay_heatmap(face.aligned_crop, explanation.crop_heatmap).save(f"{stem}_face{index}_cam.png")


def predict_files(classifier: Any, paths: list[Path], cam_dir: Path | None = None) -> list[dict[str, Any]]:
    """One result per file: ``{"file", "faces": [{"box", "label", "probs", ...}], "error"}``; bad files never raise."""
    return [_predict_one(classifier, path, cam_dir) for path in paths]


def _print_text(results: list[dict[str, Any]]) -> None:
    for result in results:
        if result["error"]:
            print(f"{result['file']}: error: {result['error']}")
            continue
        faces = result["faces"]
        print(
            f"{result['file']}: {len(faces)} face{'s' if len(faces) != 1 else ''}"
            if faces
            else f"{result['file']}: no face found"
        )
        for index, face in enumerate(faces, start=1):
            ranked = sorted(face["probs"].items(), key=lambda item: -item[1])
            others = ", ".join(f"{name} {p:.2f}" for name, p in ranked[1:4])
            box = ", ".join(f"{v:.0f}" for v in face["box"])
            print(f"  face {index} [{box}]: {face['label']} {ranked[0][1]:.2f} ({others})")


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


def _run_predict(args: argparse.Namespace) -> int:
    from .classifier import load_classifier

    classifier = load_classifier(args.model, backend=args.backend)
    results = predict_files(classifier, collect_inputs(args.paths), Path(args.cam) if args.cam else None)
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()
    else:
        _print_text(results)
    if args.csv:
        _write_csv(results, Path(args.csv), classifier.labels)
    return 0


def _run_bench(args: argparse.Namespace) -> int:
    from .bench import format_report, run_bench

    report = run_bench(args.model, repeats=args.repeats, accuracy_data=args.accuracy_data)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _run_export(args: argparse.Namespace) -> int:
    from .classifier import load_classifier

    if args.format == "tflite":
        from .litert_backend import export_tflite as export
    else:
        from .onnx_backend import export_onnx as export
    classifier = load_classifier(args.model)
    calibration = None
    if args.int8:
        from .bench import load_faces

        calibration = load_faces(args.int8, classifier.labels, limit=args.calibration_limit)[0]
    export(classifier.model, classifier.config, args.out, calibration=calibration)
    kind = f"int8, calibrated on {len(calibration)} faces" if calibration is not None else "float32"
    print(f"wrote {args.out} ({kind}, {classifier.config.architecture}, labels {','.join(classifier.labels)})")
    return 0


def register(subparsers: Any) -> None:
    """Add ``predict``, ``bench``, ``export-onnx`` and ``export-tflite`` to the ``tsnet`` command."""
    text = "detect faces in photos or folders and classify their expressions"
    parser = subparsers.add_parser("predict", help=text, description=text)
    parser.add_argument(
        "paths", nargs="+", metavar="PATH", help=f"image files or folders ({', '.join(sorted(IMAGE_SUFFIXES))})"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON list, an object per input file")
    parser.add_argument(
        "--csv", metavar="OUT", help="also write one CSV row per face (or per unreadable/faceless file)"
    )
    parser.add_argument("--cam", metavar="DIR", help="save Grad-CAM overlays (photo and aligned crops) into DIR")
    parser.add_argument("--model", default="student", help=_MODEL_HELP)
    parser.add_argument(
        "--backend", choices=("torch", "onnx", "litert"), default="torch", help="inference engine for a weights folder"
    )
    parser.set_defaults(handler=_run_predict)

    text = "per-stage latency (p50/p95), per-crop classification time and webcam frames per second"
    parser = subparsers.add_parser("bench", help=text, description=text)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--model", default="student", help=_MODEL_HELP)
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per photo stage (default 30)")
    parser.add_argument(
        "--accuracy-data",
        metavar="DIR",
        help="FER+ split (e.g. FER2013Valid): also report PyTorch vs ONNX/int8 accuracy",
    )
    parser.set_defaults(handler=_run_bench)

    exports = {
        "onnx": ("export a model to ONNX for ONNX Runtime (config kept in the file's metadata)", "student, teacher"),
        "tflite": ("export the student to LiteRT/TFLite for XNNPACK (config kept in the file's metadata)", "student"),
    }
    for fmt, (text, models) in exports.items():
        parser = subparsers.add_parser(f"export-{fmt}", help=text, description=text)
        parser.add_argument("out", metavar="OUT", help=f"the .{fmt} file to write")
        parser.add_argument("--model", default="student", help=f"{models} or a weights folder")
        parser.add_argument(
            "--int8", metavar="DIR", help="quantize to int8, calibrating on faces from this FER+ or class folder"
        )
        parser.add_argument(
            "--calibration-limit", type=int, default=512, help="faces used for int8 calibration (default 512)"
        )
        parser.set_defaults(handler=_run_export, format=fmt)
