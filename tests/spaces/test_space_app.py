"""The built Space runs on its own: ``app.py`` started from the bundle folder, with only the bundle and the
third-party site-packages importable (``python -S`` skips the ``.pth`` of our editable install), answers
``predict`` through ``gradio_client``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

import webapp
from core import PAPER_LABELS
from spaces.bundle import PACKAGES, SpaceBuild
from tests.spaces.test_space_bundle import build_bundle, space_weights  # noqa: F401  (fixture)

STARTUP_TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _bundle_environment(bundle: Path, home: Path, port: int) -> dict[str, str]:
    """The bundle first, then site-packages; no repo, no editable finder, no Hub, no Space variables."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(
        PYTHONPATH=os.pathsep.join([str(bundle), sysconfig.get_paths()["purelib"]]),
        PYTHONDONTWRITEBYTECODE="1",
        TSNET_HOME=str(home),
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        HF_HOME=str(home.parent / "hf"),
        OMP_NUM_THREADS="1",
        MPLCONFIGDIR=str(home.parent / "mpl"),
    )
    return env


def _wait_for_port(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"app.py exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    pytest.fail(f"app.py did not listen on {port} within {STARTUP_TIMEOUT_S}s:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def built(space_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> SpaceBuild:  # noqa: F811
    return build_bundle(tmp_path_factory.mktemp("space-run") / "bundle", space_weights)


def test_bundle_imports_only_its_own_packages(built: SpaceBuild, tmp_path: Path) -> None:
    probe = "import importlib.util, json; print(json.dumps({n: importlib.util.find_spec(n).origin for n in %r}))"
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe % (list(PACKAGES) + ["space_runtime"],)],
        cwd=built.folder,
        env=_bundle_environment(built.folder, tmp_path / "home", 0),
        capture_output=True,
        text=True,
        check=True,
    )
    for name, origin in json.loads(result.stdout).items():
        assert Path(origin).resolve().is_relative_to(built.folder.resolve()), (name, origin)


@pytest.mark.skipif(not hasattr(webapp, "create_app"), reason="webapp.create_app has not landed yet")
def test_app_from_bundle_answers_predict(built: SpaceBuild, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file
    from PIL import Image
    from skimage import data

    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(data.astronaut()).save(photo, quality=92)
    port = _free_port()
    log = tmp_path / "app.log"
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, "-S", "app.py"],
            cwd=built.folder,
            env=_bundle_environment(built.folder, tmp_path / "home", port),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(process, port, log)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=str(tmp_path / "downloads"))
        result = client.predict(handle_file(str(photo)), False, api_name="/predict")
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    text = log.read_text()
    assert f"Data directory: {tmp_path / 'home'}" in text
    annotated, probabilities, _student_cam, _teacher_cam, details, status = result
    assert annotated and Path(annotated).is_file()
    assert details["faces"], details  # the astronaut's face is found by the bundle's detector
    assert set(details["faces"][0]["probs"]) == set(PAPER_LABELS)  # the bundled weights' label set
    assert probabilities and status
