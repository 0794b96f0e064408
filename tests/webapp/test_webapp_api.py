"""The app driven through gradio_client against a live localhost server: predict, label, stats, models, access."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from core import PAPER_LABELS
from tests._webapp_fixtures import LiveApp, astronaut_png, launch, pattern_pngs

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from launch(tmp_path_factory.mktemp("open"), users="")


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from launch(tmp_path_factory.mktemp("gated"), users="alice:wonder land")


@pytest.fixture
def client(app: LiveApp) -> Client:
    return Client(app.url, verbose=False)


def test_every_public_endpoint_has_a_stable_name(client: Client) -> None:
    named = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    expected = {"/predict", "/label", "/retrain", "/retrain_status", "/models", "/stats", "/next_image", "/promote"}
    assert expected <= named


def test_predict_returns_label_probabilities_and_grad_cam(client: Client, tmp_path: Path) -> None:
    photo = astronaut_png(tmp_path / "astronaut.png")
    annotated, label, student_cam, teacher_cam, details, status = client.predict(
        handle_file(str(photo)), True, api_name="/predict"
    )
    assert label["label"] in PAPER_LABELS
    confidences = {row["label"]: row["confidence"] for row in label["confidences"]}
    assert set(confidences) == set(PAPER_LABELS)
    assert sum(confidences.values()) == pytest.approx(1.0, abs=1e-3)
    assert len(details["faces"]) == 1 and details["faces"][0]["label"] == label["label"]
    assert details["version"] == "base" and details["latency_ms"] > 0
    assert Path(annotated).is_file() and Path(student_cam).is_file() and Path(teacher_cam).is_file()
    assert "base" in status and "ms" in status


def test_no_face_is_reported_not_failed(client: Client, tmp_path: Path) -> None:
    [blank] = pattern_pngs(tmp_path, 1)
    _, label, student_cam, _, details, status = client.predict(handle_file(str(blank)), False, api_name="/predict")
    assert not label and student_cam is None  # gr.Label clears to {}
    assert details["faces"] == [] and "No face found" in status


def test_bad_file_gets_a_clear_message(client: Client, tmp_path: Path) -> None:
    bad = tmp_path / "holiday.jpg"
    bad.write_bytes(b"this is not a JPEG at all")
    with pytest.raises(AppError, match="Cannot read this file as a photo"):
        client.predict(handle_file(str(bad)), False, api_name="/predict")


def test_add_label_and_stats_change(client: Client, tmp_path: Path) -> None:
    before = client.predict(api_name="/stats")
    for path in pattern_pngs(tmp_path, 2, seed=3):
        client.predict(handle_file(str(path)), "", "api-user", api_name="/add_to_dataset")
    original, crop, image_id, suggestion, info, *_ = client.predict("api-user", api_name="/next_image")
    assert image_id and suggestion in PAPER_LABELS and "Suggestion" in info
    message = client.predict(image_id, "happiness", "api-user", api_name="/label")  # aliases are accepted
    assert "happy" in message
    after = client.predict(api_name="/stats")
    assert after["images"] == before["images"] + 2
    assert after["labelled"] == before["labelled"] + 1
    assert sum(row["happy"] for row in after["counts"].values()) == 1 + sum(
        row["happy"] for row in before["counts"].values()
    )
    assert "api-user" in after["annotators"]
    undone = client.predict("api-user", api_name="/undo")
    assert "Undid **happy**" in undone
    assert client.predict(api_name="/stats")["labelled"] == before["labelled"]


def test_label_outside_the_label_set_is_refused(client: Client, tmp_path: Path) -> None:
    [path] = pattern_pngs(tmp_path, 1, seed=9)
    client.predict(handle_file(str(path)), "", "api-user", api_name="/add_to_dataset")
    image_id = client.predict("api-user", api_name="/next_image")[2]
    with pytest.raises(AppError, match="not-an-emotion"):
        client.predict(image_id, "not-an-emotion", "api-user", api_name="/label")


def test_models_and_status_without_a_job(client: Client) -> None:
    listing = client.predict(api_name="/models")
    assert listing["current"] == "base" and [v["version"] for v in listing["versions"]] == ["base"]
    assert client.predict(None, api_name="/retrain_status") is None


def test_gated_actions_need_sign_in_but_predict_stays_open(gated: LiveApp, tmp_path: Path) -> None:
    client = Client(gated.url, verbose=False)
    photo = astronaut_png(tmp_path / "astronaut.png")
    assert client.predict(handle_file(str(photo)), False, api_name="/predict")[1]["label"] in PAPER_LABELS
    [path] = pattern_pngs(tmp_path, 1, seed=4)
    with pytest.raises(AppError, match="Sign in to add images"):
        client.predict(handle_file(str(path)), "", "", api_name="/add_to_dataset")
    with pytest.raises(AppError, match="Sign in to start a retrain"):
        client.predict(None, api_name="/retrain")
    with pytest.raises(AppError, match="Wrong name or password"):
        client.predict("alice", "guess", api_name="/sign_in")
    assert "alice" in client.predict("alice", "wonder land", api_name="/sign_in")
    client.predict(handle_file(str(path)), "sad", "mallory", api_name="/add_to_dataset")
    stats = client.predict(api_name="/stats")
    assert set(stats["annotators"]) == {"alice"}  # the signed-in name wins over the typed one
    other = Client(gated.url, verbose=False)  # another session is not signed in
    with pytest.raises(AppError, match="Sign in to undo"):
        other.predict("", api_name="/undo")


def test_passwords_never_reach_the_page_or_the_api_schema(gated: LiveApp) -> None:
    import httpx

    page = httpx.get(gated.url).text
    config = httpx.get(gated.url + "config").text
    assert "wonder land" not in page and "wonder land" not in config
    assert "wonder land" not in repr(gated.services.settings)
