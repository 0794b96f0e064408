"""A live T-SNet Studio server on 127.0.0.1 over random-init weights in a temporary data directory.

The shipped weights are not needed: a seeded ShuffleNetV2 student and EFF-ResNet18 teacher are written
to ``$TSNET_HOME/served/`` (where a promoted version lives), so the app, the store's queue and the
retrain job all start from them. Replay and benchmark data are disabled and the job runs one epoch.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests._weights import write_random_weights
from webapp import Services, Settings, build_demo, load_services

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
USERS = "alice:wonder land,bob:builder"
RETRAIN_ENV = {
    "TSNET_REPLAY_DATA": "",  # "" disables replay and the FER+ benchmark: the store is the only data
    "TSNET_BENCHMARK_DATA": "",
    "TSNET_RETRAIN_EPOCHS": "1",
    "TSNET_RETRAIN_THREADS": "1",
    "TSNET_RETRAIN_LR": "0.002",  # random-init tiny models diverge at the recipe's 0.01
    "TSNET_STORE_REPEAT": "1",  # and overflow half precision when trained longer
    "TSNET_MAX_STORE_DROP": "1.0",  # random-init models: promote whatever comes out
    "TSNET_MIN_STORE_TEST": "1",
    "TSNET_MIN_STORE_GROUPS": "1",
}


def write_weights(folder: Path, architecture: str, seed: int) -> Path:
    return write_random_weights(folder, architecture, seed=seed, varied_batchnorm=True)


def make_home(root: Path) -> Path:
    home = root / "tsnet-data"
    write_weights(home / "served" / "student", "shufflenet_v2", 0)
    write_weights(home / "served" / "teacher", "eff_resnet18", 1)
    return home


def astronaut_png(path: Path) -> Path:
    from skimage import data

    Image.fromarray(data.astronaut()).save(path)
    return path


def pattern_pngs(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """Distinct small grayscale images (no face in them: the store keeps the whole image as the crop)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        array = rng.normal(90, 30, (48, 48))
        band = 6 * (index % 7)
        array[band : band + 6, :] += 120
        path = folder / f"pattern-{seed}-{index}.png"
        Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), mode="L").save(path)
        paths.append(path)
    return paths


def png_bytes(path: Path) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).save(buffer, format="PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveApp:
    url: str
    services: Services
    home: Path


def launch(root: Path, users: str | None = None) -> Iterator[LiveApp]:
    """Build services in ``root`` and serve them on a free localhost port until the generator is closed."""
    home = make_home(root)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in RETRAIN_ENV.items():
            patch.setenv(name, value)
        patch.setenv("TSNET_HOME", str(home))
        settings = Settings(home=home, users=Settings.from_env().users if users is None else _users(users))
        services = load_services(settings)
        demo = build_demo(services)
        _launch_on_a_free_port(demo)
        try:
            yield LiveApp(demo.local_url.rstrip("/") + "/", services, home)
        finally:
            demo.close()
            services.store.close()


def _launch_on_a_free_port(demo: object, attempts: int = 5) -> None:
    """Launch on a port that was free a moment ago; another process may take it first, so try a fresh one."""
    for attempt in range(attempts):
        try:
            demo.launch(  # type: ignore[attr-defined]
                server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True, show_error=True
            )
            return
        except OSError:
            if attempt + 1 == attempts:
                raise


def _users(text: str) -> dict[str, str]:
    from webapp.settings import parse_users

    return parse_users(text)
