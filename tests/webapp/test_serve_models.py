"""The version a prediction reports is the version whose weights answered: after a promote from another
process, a promote and a rollback in the app, and a background retrain that promotes. Paths are never versions.

Each answer's probabilities are compared with a classifier loaded straight from that version's folder.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from core import load_classifier, open_image
from core.images import to_rgb
from retrain.registry import ModelRegistry
from tests._core_fixtures import pattern_image
from tests._webapp_fixtures import LiveApp, astronaut_png, launch, write_weights

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from launch(tmp_path_factory.mktemp("versions"), users="")


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return astronaut_png(tmp_path_factory.mktemp("photo") / "astronaut.png")


def _register(home: Path, seed: int) -> str:
    """A new registry version of random weights (what a finished retrain leaves, without the training)."""
    staging = home / f"incoming-{seed}"
    write_weights(staging / "student", "shufflenet_v2", seed)
    write_weights(staging / "teacher", "eff_resnet18", seed + 1)
    return ModelRegistry(home).register(staging, {"parent": "base"}, {})


def _expected(home: Path, version: str, photo: Path) -> list[dict[str, float]]:
    """Face probabilities from the version's own folder, loaded outside the app."""
    folder = ModelRegistry(home).weights_folder(version, "student")
    faces = load_classifier(folder).predict_image(to_rgb(open_image(photo)))
    return [face.probs for face in faces]


def _answer(client: Client, photo: Path) -> tuple[str, list[dict[str, float]]]:
    details = client.predict(handle_file(str(photo)), False, api_name="/predict")[4]
    return details["version"], [face["probs"] for face in details["faces"]]


def _assert_answered_by(app: LiveApp, client: Client, photo: Path, version: str) -> list[dict[str, float]]:
    reported, answered = _answer(client, photo)
    expected = _expected(app.home, version, photo)
    assert reported == version
    assert len(answered) == len(expected) >= 1
    for got, want in zip(answered, expected):
        assert got.keys() == want.keys()
        assert max(abs(got[name] - want[name]) for name in want) < 1e-5, (version, got, want)
    return answered


def _tsnet(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TSNET_HOME": str(home), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "tsnet", *args], capture_output=True, text=True, env=env, timeout=300)


def test_promote_and_rollback_from_anywhere_switch_the_answering_weights(app: LiveApp, photo: Path) -> None:
    client = Client(app.url, verbose=False)
    base = _assert_answered_by(app, client, photo, "base")
    v1, v2 = _register(app.home, 10), _register(app.home, 20)

    promoted = _tsnet(app.home, "models", "promote", v1)  # another process moves the registry
    assert promoted.returncode == 0, promoted.stderr
    answered_v1 = _assert_answered_by(app, client, photo, v1)
    assert answered_v1 != base  # different weights, so the comparison means something

    assert f"Now serving **{v2}**" in client.predict(v2, api_name="/promote")
    answered_v2 = _assert_answered_by(app, client, photo, v2)
    assert answered_v2 != answered_v1
    assert f"now serving **{v1}**" in client.predict(api_name="/rollback")
    _assert_answered_by(app, client, photo, v1)

    ModelRegistry(app.home).rollback()  # back to base, by a registry object of its own (as the worker holds one)
    _assert_answered_by(app, client, photo, "base")
    assert app.services.model_version() == "base"


def test_a_path_is_never_a_version(app: LiveApp, tmp_path: Path) -> None:
    client = Client(app.url, verbose=False)
    served_before = os.readlink(app.home / "served") if (app.home / "served").is_symlink() else None
    current = ModelRegistry(app.home).current()
    fake = tmp_path / "upload"
    write_weights(fake / "student", "shufflenet_v2", 99)
    (fake / "version.json").write_text("{}")  # shaped like a version folder, outside the registry
    for attempt in (str(fake), "../../" + fake.name, "v1/../v2", "v01", " ", "base/.."):
        with pytest.raises(AppError) as refused:
            client.predict(attempt, api_name="/promote")
        message = str(refused.value)
        assert "registry name" in message or "unknown model version" in message or "no model version" in message
        assert str(tmp_path) not in message and "Error" not in message
    assert ModelRegistry(app.home).current() == current
    assert (os.readlink(app.home / "served") if (app.home / "served").is_symlink() else None) == served_before
    assert not (fake / "student" / "README.md").exists()  # nothing was written into the folder
    refused = _tsnet(app.home, "models", "promote", str(fake))
    assert refused.returncode != 0 and "registry name" in refused.stderr and str(fake) not in refused.stderr


def test_registry_refuses_paths_before_touching_anything(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "home")
    outside = tmp_path / "elsewhere"
    (outside / "student").mkdir(parents=True)
    (outside / "version.json").write_text("{}")
    for name in (str(outside), str(outside / "student"), "../elsewhere", "v1/..", None, 3):
        with pytest.raises(ValueError, match="registry name|no model version"):
            registry.promote(name)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            registry.weights_folder(name, "student")  # type: ignore[arg-type]
    assert not registry.state_file.exists() and not registry.served_link.exists()
    with pytest.raises(ValueError, match="unknown model version 'v7'; known versions: base"):
        registry.promote("v7")


def _labelled_faces(app: LiveApp) -> None:
    """Labelled images of every class, so the store's 6:2:2 split has train, validation and test images."""
    rng = np.random.default_rng(0)
    labels = app.services.store.labels
    for index in range(4 * len(labels)):
        buffer = io.BytesIO()
        pattern_image(index % len(labels), rng).save(buffer, format="PNG")
        image_id = app.services.store.add_image(buffer.getvalue(), source="test")
        app.services.store.label(image_id, labels[index % len(labels)], "ana")


def test_a_background_retrain_that_promotes_is_served_at_once(app: LiveApp, photo: Path) -> None:
    client = Client(app.url, verbose=False)
    _labelled_faces(app)
    before = ModelRegistry(app.home).current()
    started = client.predict(1, api_name="/retrain")[1]
    deadline = time.monotonic() + 600
    job = started
    while job["state"] == "running":
        assert time.monotonic() < deadline, "the retrain did not finish"
        time.sleep(1.0)
        job = client.predict(started["id"], api_name="/retrain_status")
    assert job["state"] == "succeeded" and job["promoted"], job.get("error")
    assert job["version"] != before and ModelRegistry(app.home).current() == job["version"]
    _assert_answered_by(app, client, photo, job["version"])  # no reload asked for: the next answer follows
