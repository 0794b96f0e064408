"""Measurements, not tests: import speed on generated photos and concurrent labelling throughput.

``tsnet label bench`` runs both; the concurrency check is also what ``tests/labeling/test_labeling_concurrency``
asserts on (counts only - timings depend on the machine and are reported, never asserted).
"""

from __future__ import annotations

import io
import multiprocessing
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance

from .store import AnnotationStore

__all__ = ["make_photos", "make_tiny_images", "bench_import", "label_concurrently"]


def make_photos(folder: Path, count: int, seed: int = 0, size: tuple[int, int] = (640, 480)) -> list[Path]:
    """``count`` distinct ~640x480 JPEGs: crops, mirrors and exposure changes of skimage's astronaut."""
    from skimage import data as skdata

    base = Image.fromarray(skdata.astronaut()).resize((1024, 1024), Image.BILINEAR)
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        scale = rng.uniform(0.55, 1.0)
        width, height = int(1024 * scale), int(1024 * scale * 0.75)
        left, top = int(rng.integers(0, 1024 - width + 1)), int(rng.integers(0, 1024 - height + 1))
        photo = base.crop((left, top, left + width, top + height)).resize(size, Image.BILINEAR)
        if rng.random() < 0.5:
            photo = photo.transpose(Image.FLIP_LEFT_RIGHT)
        photo = ImageEnhance.Brightness(photo).enhance(rng.uniform(0.7, 1.3))
        path = folder / f"photo_{index:05d}.jpg"
        photo.save(path, quality=int(rng.integers(80, 95)))
        paths.append(path)
    return paths


def make_tiny_images(count: int, seed: int = 0, side: int = 16) -> list[bytes]:
    """Distinct small PNGs, cheap enough for property tests and concurrency runs."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        buffer = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).save(buffer, format="PNG")
        images.append(buffer.getvalue())
    return images


def bench_import(count: int = 1000, workdir: Path | None = None) -> dict[str, Any]:
    """Import ``count`` generated photos into a fresh store (first pass and idempotent second pass)."""
    with tempfile.TemporaryDirectory(dir=workdir) as temporary:
        root = Path(temporary)
        make_photos(root / "photos", count)
        with AnnotationStore(root / "bench.db") as store:
            first = store.import_paths([root / "photos"])
            again = store.import_paths([root / "photos"])
        return {
            "images": count,
            "seconds": round(first.seconds, 2),
            "images_per_second": round(first.images_per_second, 1),
            "reimport_seconds": round(again.seconds, 2),
            "reimport_images_per_second": round(again.images_per_second, 1),
            "skipped": len(first.skipped) + len(again.skipped),
        }


def _label_worker(db_path: str, worker: int, events: int, image_ids: list[str], start, errors) -> None:
    try:
        with AnnotationStore(db_path) as store:
            start.wait()
            for k in range(events):
                store.label(
                    image_ids[(worker * 7919 + k) % len(image_ids)],
                    store.labels[(worker + k) % len(store.labels)],
                    f"worker-{worker}",
                )
    except BaseException as error:  # reported to the parent: this is what a user would have seen
        errors.put(f"worker {worker}: {type(error).__name__}: {error}")
        raise


def label_concurrently(db_path: Path, workers: int = 8, events: int = 250, images: int = 64) -> dict[str, Any]:
    """``workers`` processes each write ``events`` labels to one database file; returns counts and timing."""
    with AnnotationStore(db_path) as store:
        image_ids = [store.add_image(data, source="bench") for data in make_tiny_images(images, seed=1)]
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    start, errors = context.Barrier(workers + 1), context.Queue()
    processes = [
        context.Process(target=_label_worker, args=(str(db_path), worker, events, image_ids, start, errors))
        for worker in range(workers)
    ]
    for process in processes:
        process.start()
    start.wait()
    began = time.perf_counter()
    for process in processes:
        process.join()
    seconds = time.perf_counter() - began
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    with AnnotationStore(db_path) as store:
        history = store.history()
        distinct = store._read("SELECT count(DISTINCT uid) AS n FROM label_events")[0]["n"]
    return {
        "workers": workers,
        "events_expected": workers * events,
        "events_found": len(history),
        "distinct_events": distinct,
        "per_worker": {f"worker-{w}": sum(e.annotator == f"worker-{w}" for e in history) for w in range(workers)},
        "exit_codes": [process.exitcode for process in processes],
        "errors": failures,
        "seconds": round(seconds, 3),
        "events_per_second": round(len(history) / seconds, 1) if seconds else None,
    }
