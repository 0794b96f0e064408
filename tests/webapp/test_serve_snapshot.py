"""ServedModels on a real registry: each snapshot's version names the folder its weights came from, even while
another registry object promotes and rolls back as fast as it can; a version that will not load is not served."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from retrain.registry import ModelRegistry
from tests._webapp_fixtures import make_home, write_weights
from webapp.models import ServedModels
from webapp.settings import Settings


def _register(home: Path, seed: int) -> str:
    staging = home / f"incoming-{seed}"
    write_weights(staging / "student", "shufflenet_v2", seed)
    write_weights(staging / "teacher", "eff_resnet18", seed + 1)
    return ModelRegistry(home).register(staging, {"parent": "base"}, {})


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A data folder whose hand-placed served weights the registry has already adopted as "base"."""
    home = make_home(tmp_path)
    registry = ModelRegistry(home)
    registry.promote(_register(home, 5))
    registry.rollback()
    return home


def test_every_snapshot_is_the_version_it_says(home: Path) -> None:
    v1, v2 = _register(home, 10), _register(home, 20)
    registry = ModelRegistry(home)
    served = ServedModels(Settings(home=home), registry)
    assert served.current().version == "base"
    switcher = ModelRegistry(home)  # a registry object of its own, like the CLI or the retrain worker
    seen: list[tuple[str, str]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            snapshot = served.current()
            seen.append((snapshot.version, snapshot.student.source))
            time.sleep(0.001)  # as requests would: leave the loader the interpreter

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for version in (v1, v2, v1):
            switcher.promote(version)
            while served.current().version != version:  # the readers' next call loads it
                time.sleep(0.01)
        switcher.rollback()
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert {version for version, _ in seen} >= {v1, v2}
    for version, source in seen:
        assert Path(source) == Path(registry.weights_folder(version, "student")), (version, source)
    assert served.current().version == registry.current()


def test_a_version_that_will_not_load_is_not_served(home: Path, caplog: pytest.LogCaptureFixture) -> None:
    v1 = _register(home, 30)
    registry = ModelRegistry(home)
    served = ServedModels(Settings(home=home), registry)
    (registry.version_dir(v1) / "student" / "model.safetensors").write_bytes(b"not weights")
    registry.promote(v1)
    snapshot = served.current()
    assert snapshot.version == "base" and Path(snapshot.student.source) == Path(
        registry.weights_folder("base", "student")
    )
    assert any("could not be loaded" in record.getMessage() for record in caplog.records)
    assert served.current() is snapshot  # not retried on every request
