"""Concurrent load on a live server over loopback: it stays up and every answer is the sequential answer.

Several ``gradio_client`` clients send 1920x1080 photos with two faces to ``predict`` at once (up to
``PREDICT_CONCURRENCY`` run together) while another imports images, so face detection, landmarks,
classification, Grad-CAM and the store's own detection all run in parallel. Before the detector was made
safe for concurrent calls this killed the server (SIGSEGV) within the first round. Bounded: a dozen
predictions and one small import, about 30 s on two cores.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client, handle_file

from tests._webapp_fixtures import LiveApp, launch, pattern_pngs
from webapp.load_bench import format_report, run, two_face_photo

os.environ.setdefault("OMP_NUM_THREADS", "1")
CLIENTS = 3
PREDICTS_PER_CLIENT = 4


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from launch(tmp_path_factory.mktemp("stress"), users="")


def _faces(details: dict[str, Any]) -> list[tuple[list[float], dict[str, float]]]:
    return [(face["box"], face["probs"]) for face in details["faces"]]


def _same(answer: list[tuple[list[float], dict[str, float]]], reference: list[tuple[list[float], dict[str, float]]]):  # noqa: ANN202
    assert len(answer) == len(reference)
    for (box, probs), (want_box, want_probs) in zip(answer, reference):
        assert box == want_box
        assert probs.keys() == want_probs.keys()
        assert max(abs(probs[name] - want_probs[name]) for name in probs) < 1e-5


def test_concurrent_large_predicts_and_an_import_keep_the_server_up_and_right(app: LiveApp, tmp_path: Path) -> None:
    photo = two_face_photo(tmp_path / "crowd.jpg")
    reference_client = Client(app.url, verbose=False)
    answer = reference_client.predict(handle_file(str(photo)), False, api_name="/predict")
    reference, reference_cam = _faces(answer[4]), Path(answer[2]).read_bytes()
    assert len(reference) == 2, "the test photo should show two faces"
    imports = [
        *pattern_pngs(tmp_path / "import", 4, seed=41),
        two_face_photo(tmp_path / "crowd-import.jpg", (1600, 900)),
    ]
    clients = [Client(app.url, verbose=False) for _ in range(CLIENTS)]
    importer = Client(app.url, verbose=False)

    def predicts(client: Client) -> list[tuple[dict[str, Any], bytes]]:
        jobs = [client.submit(handle_file(str(photo)), False, api_name="/predict") for _ in range(PREDICTS_PER_CLIENT)]
        return [(answer[4], Path(answer[2]).read_bytes()) for answer in (job.result(timeout=300) for job in jobs)]

    def imported() -> str:
        return importer.predict([handle_file(str(path)) for path in imports], False, "stress", api_name="/import")

    with ThreadPoolExecutor(CLIENTS + 1) as pool:
        import_answer = pool.submit(imported)
        answers = [pool.submit(predicts, client) for client in clients]
        results = [result for future in answers for result in future.result(timeout=600)]
        report = import_answer.result(timeout=600)

    assert len(results) == CLIENTS * PREDICTS_PER_CLIENT
    for details, cam in results:
        assert details["version"] == "base"
        _same(_faces(details), reference)
        assert cam == reference_cam  # Grad-CAM of each face unchanged by the requests beside it
    assert f"Imported {len(imports)} new image(s)" in report, report
    store = app.services.store
    faces_found = [store.image(image_id).face_count for image_id in store.image_ids()]
    assert sorted(count or 0 for count in faces_found)[-1] == 2  # the crowd photo's two faces, found mid-load
    after = _faces(reference_client.predict(handle_file(str(photo)), False, api_name="/predict")[4])
    _same(after, reference)  # still up, still the same answer


def test_the_load_benchmark_measures_a_live_server(app: LiveApp) -> None:
    """A small run of the benchmark's measurement (its figures are printed by the command, never asserted)."""
    result = run(requests=2, clients=2, import_images=1, url=app.url)
    assert result["all_correct"] and result["server_alive"] and result["faces"] == 2, format_report(result)
    assert result["requests_per_second"] > 0 and result["latency_ms"]["p95"] >= result["latency_ms"]["p50"] > 0
    assert "Imported 1 new image(s)" in result["import_report"]
