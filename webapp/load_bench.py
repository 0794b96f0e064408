"""Load benchmark: concurrent 1920x1080 predictions from several clients plus an import, against ``tsnet serve``.

:func:`run` starts a real ``python -m tsnet serve`` on a free loopback port (data in a fresh temporary folder
unless ``home`` is given, so the shipped or served models answer), takes one sequential answer as the
reference, then sends ``requests`` predictions split over ``clients`` ``gradio_client`` clients, all in flight
at once, while one more client imports ``import_images`` photos. It returns (and :func:`format_report` prints)
latency percentiles, throughput and whether every answer equalled the reference: same faces, boxes and
probabilities (within 1e-5), same version. The photo shows two faces (scikit-image's astronaut, public domain,
and her mirror image), so detection, landmarks, classification and Grad-CAM all run per request.

Fields of the result:
    requests, clients, import_images, with_teacher: what was sent
    wall_seconds: first submit to last answer; requests_per_second: requests / wall_seconds
    latency_ms: {"p50", "p95", "max", "mean"} per prediction, submit to answer (downloads included)
    sequential_ms: the reference prediction alone, on the warm server
    all_correct: every prediction answered and equalled the reference; wrong: how many did not; errors: messages
    import_report: the import's answer; server_alive: it still answered a prediction afterwards
    faces: faces in the photo; version: the model version that answered
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from retrain.layout import HOME_VARIABLE

__all__ = ["format_report", "run", "two_face_photo"]

TOLERANCE = 1e-5


def two_face_photo(path: Path, size: tuple[int, int] = (1920, 1080)) -> Path:
    """A JPEG of ``size`` with two frontal faces (the astronaut and her mirror image) on a noisy background."""
    from skimage import data

    face = Image.fromarray(data.astronaut())
    noise = np.random.default_rng(0).integers(170, 210, (size[1], size[0], 3), dtype=np.uint8)
    canvas = Image.fromarray(noise)
    canvas.paste(face, (180, 300))
    canvas.paste(face.transpose(Image.Transpose.FLIP_LEFT_RIGHT), (size[0] - 180 - face.width, 250))
    canvas.save(path, quality=92)
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_server(home: Path, port: int, log: Path, timeout: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, HOME_VARIABLE: str(home), "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [sys.executable, "-m", "tsnet", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with open(log, "wb") as output:
        server = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"tsnet serve exited with code {server.returncode}; it said: " + " | ".join(tail))
        try:
            if httpx.get(f"http://127.0.0.1:{port}/config", timeout=5).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.kill()
    raise RuntimeError(f"tsnet serve did not answer within {timeout:.0f} s")


def _faces(details: dict[str, Any]) -> list[tuple[list[float], dict[str, float]]]:
    return [(face["box"], face["probs"]) for face in details.get("faces", [])]


def _matches(details: dict[str, Any], reference: dict[str, Any]) -> bool:
    got, want = _faces(details), _faces(reference)
    if details.get("version") != reference.get("version") or len(got) != len(want):
        return False
    for (box, probs), (want_box, want_probs) in zip(got, want):
        if box != want_box or probs.keys() != want_probs.keys():
            return False
        if max(abs(probs[name] - want_probs[name]) for name in probs) > TOLERANCE:
            return False
    return True


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return float(np.percentile(ordered, share * 100)) if ordered else float("nan")


def _import_photos(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [(1920, 1080), (1600, 900), (1280, 720), (2048, 1152)]
    photos = []
    for index in range(count):
        path = two_face_photo(folder / f"import-{index}.jpg", sizes[index % len(sizes)])
        with Image.open(path) as image:  # distinct bytes: each one is a new image for the store
            image.rotate(index * 0.5).save(path, quality=90 - index % 5)
        photos.append(path)
    return photos


def run(
    home: Path | None = None,
    requests: int = 20,
    clients: int = 4,
    import_images: int = 10,
    with_teacher: bool = False,
    url: str | None = None,
    start_timeout: float = 300.0,
) -> dict[str, Any]:
    """Measure ``tsnet serve`` under concurrent load; see the module docstring for the fields.

    ``url`` measures a server that is already running instead of starting one (``home`` is then unused).
    """
    with tempfile.TemporaryDirectory(prefix="tsnet-load-") as scratch:
        work = Path(scratch)
        photo = two_face_photo(work / "photo-1920x1080.jpg")
        imports = _import_photos(work / "import", import_images)
        if url is not None:
            return _measure(url, photo, imports, requests, clients, with_teacher)
        port = _free_port()
        server = _start_server(Path(home) if home else work / "tsnet-data", port, work / "server.log", start_timeout)
        try:
            return _measure(f"http://127.0.0.1:{port}/", photo, imports, requests, clients, with_teacher)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


@dataclass
class _Load:
    """What the concurrent phase saw: per-request latencies and answers, failures, wall time, the import's report."""

    latencies: list[float] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall: float = 0.0
    import_report: str = ""


def _measure(
    url: str, photo: Path, imports: list[Path], requests: int, clients: int, with_teacher: bool
) -> dict[str, Any]:
    from gradio_client import Client, handle_file

    def predict(client: Any) -> dict[str, Any]:
        return client.predict(handle_file(str(photo)), with_teacher, api_name="/predict")[4]

    def imported(importer: Any) -> str:
        return str(importer.predict([handle_file(str(p)) for p in imports], False, "load-bench", api_name="/import"))

    first = Client(url, verbose=False)
    predict(first)  # warm-up: the first answer loads the detector and fills caches
    started = time.perf_counter()
    reference = predict(first)
    sequential_ms = (time.perf_counter() - started) * 1000
    pool = [Client(url, verbose=False) for _ in range(clients)]
    importer = Client(url, verbose=False)
    load = _concurrent(pool, predict, (lambda: imported(importer)) if imports else None, requests)
    wrong = sum(not _matches(details, reference) for details in load.answers) + len(load.errors)
    try:
        alive = _matches(predict(first), reference)
    except Exception:
        alive = False
    return {
        "requests": requests,
        "clients": clients,
        "import_images": len(imports),
        "with_teacher": with_teacher,
        "wall_seconds": round(load.wall, 3),
        "requests_per_second": round(requests / load.wall, 3),
        "latency_ms": _latency_figures(load.latencies),
        "sequential_ms": round(sequential_ms, 1),
        "all_correct": wrong == 0 and len(load.answers) == requests,
        "wrong": wrong,
        "errors": load.errors,
        "import_report": load.import_report,
        "server_alive": alive,
        "faces": len(reference.get("faces", [])),
        "version": reference.get("version"),
    }


def _concurrent(
    pool: list[Any], predict: Callable[[Any], dict[str, Any]], imported: Callable[[], str] | None, requests: int
) -> _Load:
    """``requests`` predictions spread over the ``pool`` of clients at once, beside one import when given."""
    load = _Load()
    lock = threading.Lock()

    def one(client: Any) -> None:
        begun = time.perf_counter()
        try:
            details = predict(client)
        except Exception as error:  # a failed request is a result of the benchmark, not its end
            with lock:
                load.errors.append(f"{type(error).__name__}: {str(error)[:200]}")
            return
        with lock:
            load.latencies.append((time.perf_counter() - begun) * 1000)
            load.answers.append(details)

    with ThreadPoolExecutor(requests + 1) as executor:
        begin = time.perf_counter()
        import_future = executor.submit(imported) if imported is not None else None
        for future in [executor.submit(one, pool[index % len(pool)]) for index in range(requests)]:
            future.result()
        load.wall = time.perf_counter() - begin
        load.import_report = import_future.result() if import_future is not None else ""
    return load


def _latency_figures(latencies: list[float]) -> dict[str, float]:
    return {
        "p50": round(_percentile(latencies, 0.50), 1),
        "p95": round(_percentile(latencies, 0.95), 1),
        "max": round(max(latencies, default=float("nan")), 1),
        "mean": round(statistics.fmean(latencies), 1) if latencies else float("nan"),
    }


def format_report(result: dict[str, Any]) -> str:
    """The result as a few lines for a terminal."""
    latency = result["latency_ms"]
    lines = [
        f"{result['requests']} concurrent 1920x1080 predictions ({result['faces']} faces each, Grad-CAM"
        f"{' of student and teacher' if result['with_teacher'] else ' of the student'}) from {result['clients']}"
        f" clients, plus an import of {result['import_images']} photos, answered by {result['version']}",
        f"latency p50 {latency['p50']:.0f} ms, p95 {latency['p95']:.0f} ms, max {latency['max']:.0f} ms"
        f" (one prediction alone: {result['sequential_ms']:.0f} ms)",
        f"throughput {result['requests_per_second']:.2f} requests/s ({result['wall_seconds']:.1f} s wall)",
        f"every answer correct: {'yes' if result['all_correct'] else 'NO'} ({result['wrong']} wrong);"
        f" server still up: {'yes' if result['server_alive'] else 'NO'}",
        f"import: {result['import_report'].splitlines()[0] if result['import_report'] else '-'}",
    ]
    lines += [f"error: {message}" for message in result["errors"][:5]]
    return "\n".join(lines)


if __name__ == "__main__":  # until the CLI wires it: python -m webapp.load_bench
    print(format_report(run()))
