"""``tsnet bench``: where the time goes, stage by stage, on photos built from ``skimage.data.astronaut()``.

Figures only (no pass/fail): p50/p95 milliseconds per stage for 640x480 photos (wide and portrait framing)
and a 1920x1080 photo, per-crop classification for each backend at batch 1 and batched, webcam-stream
frames per second, and face-detection recall on a composed 20-face group canvas (MTCNN beside HOG).
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .data.tensors import to_gray_array
from .explain import explainer

__all__ = ["run_bench", "format_report", "bench_photo", "load_faces"]

# name -> (size, framing). "wide": the whole astronaut photo, face ~18% of the height (88 px at 640x480);
# "portrait": a webcam/selfie framing, face ~half the height.
PHOTOS = {
    "640x480": ((640, 480), "wide"),
    "640x480-portrait": ((640, 480), "portrait"),
    "1920x1080": ((1920, 1080), "wide"),
}
PORTRAIT_BOX = (100, 0, 400, 225)  # a 4:3 window around the astronaut's head and shoulders


def bench_photo(size: tuple[int, int], framing: str = "wide") -> Image.Image:
    """A test photo of ``size`` from ``skimage.data.astronaut()``.

    ``wide``: the astronaut resized to the photo's height and centred on a grey canvas; ``portrait``: the head
    and shoulders filling the frame.
    """
    from skimage import data

    width, height = size
    source = Image.fromarray(data.astronaut())
    if framing == "portrait":
        return source.crop(PORTRAIT_BOX).resize(size, Image.BILINEAR)
    face = source.resize((height, height), Image.BILINEAR)
    canvas = Image.new("RGB", size, (128, 128, 128))
    canvas.paste(face, ((width - height) // 2, 0))
    return canvas


def _timings(run: Callable[[], Any], repeats: int, warmup: int = 3) -> dict[str, float]:
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return {
        "p50_ms": round(float(np.percentile(samples, 50)), 4),
        "p95_ms": round(float(np.percentile(samples, 95)), 4),
    }


def load_faces(folder: str | Path, labels: tuple[str, ...], limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """uint8 faces (N, 1, 48, 48) and label indices from a FER+ split or a class-per-folder tree."""
    from .data import load_gray_images, read_labelled_folder

    samples = read_labelled_folder(folder, labels)
    count = len(samples) if limit is None else min(limit, len(samples))
    faces = load_gray_images(samples.paths[:count], workers=2).numpy()
    return faces, samples.label_indices[:count]


def _photo_stages(classifier: Any, fast: Any, size: tuple[int, int], framing: str, repeats: int) -> dict[str, Any]:
    from .images import open_image, to_rgb

    detector = fast.face_detector
    photo = bench_photo(size, framing)
    encoded = io.BytesIO()
    photo.save(encoded, format="JPEG", quality=90)
    data = encoded.getvalue()
    pixels = np.asarray(to_rgb(open_image(data)))
    gray = np.asarray(Image.fromarray(pixels).convert("L"))
    boxes = detector.find_boxes(pixels)
    stages: dict[str, Any] = {"faces": len(boxes), "framing": framing}
    stages["decode"] = _timings(lambda: open_image(data), repeats)
    stages["detect"] = _timings(lambda: detector.find_boxes(pixels), repeats)
    if boxes:
        box, score = boxes[0]
        shape = detector.landmarks(gray, box)
        face = detector.align(pixels, shape, box, score)
        stages["landmarks"] = _timings(lambda: detector.landmarks(gray, box), repeats)
        stages["align"] = _timings(lambda: detector.align(pixels, shape, box, score), repeats)
        stages["classify"] = _timings(lambda: fast.predict_crops([face.aligned_crop]), repeats)
        stages["gradcam"] = _timings(lambda: explainer(classifier).explain_face(face, photo.size), max(5, repeats // 3))
    stages["end_to_end_without_gradcam"] = _timings(lambda: fast.predict_image(open_image(data)), repeats)
    return stages


@contextlib.contextmanager
def _single_pass(classifier: Any) -> Iterator[None]:
    """Temporarily classify without the mirror-image pass (to show what flip averaging costs and gives)."""
    engine = classifier.engine
    previous, engine.flip_tta = engine.flip_tta, False
    try:
        yield
    finally:
        engine.flip_tta = previous


def _crop_classification(classifiers: dict[str, Any], face_crop: Image.Image, repeats: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name, classifier in classifiers.items():
        gray = to_gray_array(face_crop, classifier.config.face_size)[None]  # the face as this model reads it
        batch32 = np.repeat(gray, 32, axis=0)
        entry: dict[str, Any] = {
            "batch1_crop": _timings(lambda c=classifier: c.predict_crops([face_crop]), repeats * 10)
        }
        engine = classifier.engine
        if hasattr(engine, "run"):  # a compiled engine: its forward pass alone, and its NumPy path
            ready = engine._preprocess(gray)
            entry["batch1_model_only"] = _timings(lambda e=engine, x=ready: e.run(x), repeats * 10)
            entry["batch1_gray_array"] = _timings(lambda e=engine, g=gray: e.probabilities(g), repeats * 10)
            if engine.flip_tta:
                with _single_pass(classifier):
                    entry["batch1_crop_no_tta"] = _timings(
                        lambda c=classifier: c.predict_crops([face_crop]), repeats * 10
                    )
            per_batch = _timings(lambda e=engine, b=batch32: e.probabilities(b), repeats)
        else:
            tensor = torch.from_numpy(batch32)[:, None]
            per_batch = _timings(lambda c=classifier, t=tensor: c.predict_gray_batch(t), repeats)
        entry["batch32_per_crop_ms"] = round(per_batch["p50_ms"] / 32, 4)
        results[name] = entry
    return results


def _webcam_fps(fast: Any, frames: int = 150) -> dict[str, Any]:
    from .faces import FaceStream

    base = np.asarray(bench_photo((640, 480)))
    stream = FaceStream(fast)
    shifts = [int(8 * np.sin(i / 10)) for i in range(frames)]
    video = [np.roll(base, shift, axis=1) for shift in shifts]  # a gently swaying head
    stream.process(video[0])
    start = time.perf_counter()
    found = sum(len(stream.process(frame)) for frame in video)
    elapsed = time.perf_counter() - start
    return {
        "frame": "640x480",
        "detect_every": stream.detect_every,
        "fps": round(frames / elapsed, 1),
        "faces_per_frame": round(found / frames, 2),
    }


def _detection(repeats: int = 3) -> dict[str, Any]:
    """Faces found on a composed 20-face canvas (30-120 px, 1920x1080) and on 16 face-free photos, per method."""
    from .faces import FaceDetector
    from .faces.canvas import astronaut_group, count_matches, face_free_images

    canvas = astronaut_group(20, (1920, 1080), smallest=30, largest=120, seed=0)
    pixels = np.asarray(canvas.image)
    free = [np.asarray(image) for image in face_free_images().values()]
    report: dict[str, Any] = {"canvas": "20 astronaut faces, 30-120 px, 1920x1080", "faces": len(canvas.boxes)}
    for method in ("mtcnn", "hog"):
        detector = FaceDetector(method=method)
        found = [box for box, _ in detector.find_boxes(pixels)]
        hits, false_positives = count_matches(found, canvas.boxes)
        timing = _timings(lambda d=detector: d.find_boxes(pixels), repeats, warmup=1)
        report[method] = {
            "min_face_px": detector.min_face,
            "found": hits,
            "false_positives": false_positives,
            "face_free_false_positives": sum(len(detector.find_boxes(image)) for image in free),
            "canvas_ms": timing["p50_ms"],
        }
    return report


def _probabilities(classifier: Any, faces: np.ndarray) -> np.ndarray:
    if classifier.backend != "torch":
        return np.concatenate([classifier.engine.probabilities(chunk[:, 0]) for chunk in np.array_split(faces, 64)])
    return classifier.predict_gray_batch(torch.from_numpy(faces))


def _accuracy(classifiers: dict[str, Any], folder: str | Path) -> dict[str, Any]:
    faces, truth = load_faces(folder, next(iter(classifiers.values())).labels)
    report: dict[str, Any] = {"data": str(folder), "samples": int(len(truth))}

    def accuracy(classifier: Any) -> float:
        return round(float((_probabilities(classifier, faces).argmax(axis=1) == truth).mean()), 4)

    for name, classifier in classifiers.items():
        report[f"{name}_accuracy"] = accuracy(classifier)
        if getattr(classifier.engine, "flip_tta", False):
            with _single_pass(classifier):
                report[f"{name}_no_tta_accuracy"] = accuracy(classifier)
    return report


def _calibration_faces(classifier: Any, accuracy_data: str | Path | None) -> tuple[np.ndarray, str]:
    """int8 calibration faces: FER+ training crops beside the accuracy split, else astronaut crops (speed only)."""
    if accuracy_data is not None:
        train = Path(accuracy_data).parent / "FER2013Train"
        if train.is_dir():
            return load_faces(train, classifier.labels, limit=512)[0], str(train)
    photo = bench_photo((640, 480))
    crop = classifier.face_detector.detect(photo)[0].aligned_crop.convert("L")
    rng = np.random.default_rng(0)
    faces = [np.asarray(crop.rotate(float(rng.uniform(-10, 10))).resize((48, 48))) for _ in range(64)]
    return np.stack(faces)[:, None], "astronaut crops (accuracy not meaningful)"


def run_bench(model: str = "student", repeats: int = 30, accuracy_data: str | Path | None = None) -> dict[str, Any]:
    """All figures as a dict (what ``tsnet bench --json`` prints)."""
    from .classifier import compile_classifier, load_classifier
    from .tflite_export import is_exportable

    torch.set_num_threads(1)
    classifier = load_classifier(model)
    calibration, calibration_source = _calibration_faces(classifier, accuracy_data)
    backends: dict[str, Any] = {
        "torch": classifier,
        "onnx_fp32": compile_classifier(classifier, "onnx"),
        "onnx_int8": compile_classifier(classifier, "onnx", calibration),
    }
    if is_exportable(classifier.model):  # LiteRT covers the student; other models are benchmarked without it
        backends["litert_fp32"] = compile_classifier(classifier, "litert")
        backends["litert_int8"] = compile_classifier(classifier, "litert", calibration)
    pipeline = "litert_int8" if "litert_int8" in backends else "onnx_int8"
    fast = backends[pipeline]
    report: dict[str, Any] = {
        "model": classifier.source,
        "architecture": classifier.config.architecture,
        "pipeline_backend": pipeline,
        "int8_calibration": calibration_source,
        "torch_threads": torch.get_num_threads(),
        "photos": {
            name: _photo_stages(classifier, fast, size, framing, repeats) for name, (size, framing) in PHOTOS.items()
        },
    }
    crop = fast.face_detector.detect(bench_photo((640, 480)))[0].aligned_crop
    report["crop_classification"] = _crop_classification(backends, crop, repeats)
    report["webcam"] = _webcam_fps(fast)
    report["detection"] = _detection()
    if accuracy_data is not None:
        report["accuracy"] = _accuracy(backends, accuracy_data)
    return report


def format_report(report: dict[str, Any]) -> str:
    """Human-readable table of :func:`run_bench`'s figures."""
    lines = [f"model {report['model']} ({report['architecture']}); photos classified with {report['pipeline_backend']}"]
    for photo, stages in report["photos"].items():
        lines.append(f"photo {photo} ({stages['framing']} framing): {stages['faces']} face(s)")
        for stage, figures in stages.items():
            if isinstance(figures, dict):
                lines.append(f"  {stage:<28} p50 {figures['p50_ms']:8.3f} ms   p95 {figures['p95_ms']:8.3f} ms")
    lines.append("one face crop, per backend:")
    for backend, entry in report["crop_classification"].items():
        for what, figures in entry.items():
            if isinstance(figures, dict):
                lines.append(
                    f"  {backend:<12} {what:<20} p50 {figures['p50_ms']:8.4f} ms   p95 {figures['p95_ms']:8.4f} ms"
                )
        lines.append(f"  {backend:<12} {'batch 32, per crop':<20} {entry['batch32_per_crop_ms']:8.4f} ms")
    webcam = report["webcam"]
    lines.append(
        f"webcam {webcam['frame']} stream (detect every {webcam['detect_every']} frames): {webcam['fps']} fps,"
        f" {webcam['faces_per_frame']} faces per frame"
    )
    detection = report.get("detection")
    if detection:
        lines.append(f"face detection on {detection['canvas']} ({detection['faces']} faces):")
        for method in ("mtcnn", "hog"):
            entry = detection[method]
            lines.append(
                f"  {method:<6} min face {entry['min_face_px']:.0f} px: {entry['found']}/{detection['faces']} found,"
                f" {entry['false_positives']} false on the canvas, {entry['face_free_false_positives']} on 16"
                f" face-free photos, {entry['canvas_ms']:.1f} ms"
            )
    if "accuracy" in report:
        accuracy = report["accuracy"]
        figures = ", ".join(f"{key} {value}" for key, value in accuracy.items() if key.endswith("accuracy"))
        lines.append(f"accuracy on {accuracy['data']} ({accuracy['samples']} faces): {figures}")
    lines.append(f"int8 calibration: {report['int8_calibration']}")
    return "\n".join(lines)
