"""The data layout: the one reader of TSNET_HOME, and "the served version, else the shipped weights"."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.classifier import shipped_weights_folder
from retrain.layout import DataLayout
from tests._weights import write_random_weights


def test_paths_follow_the_home() -> None:
    layout = DataLayout.from_env({"TSNET_HOME": "/data/tsnet"})
    assert layout.home == Path("/data/tsnet")
    assert layout.database == Path("/data/tsnet/annotations.db")
    assert layout.media == Path("/data/tsnet/annotations-media")
    assert (layout.registry, layout.served, layout.jobs, layout.examples) == tuple(
        Path("/data/tsnet") / name for name in ("registry", "served", "jobs", "examples")
    )
    assert DataLayout.from_env({}).home == Path("tsnet-data") and not DataLayout.home_is_set({})


def test_served_version_else_shipped(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    assert layout.served_weights("student") is None
    assert layout.weights_folder("student") == shipped_weights_folder("student")
    write_random_weights(layout.served / "student")
    assert layout.weights_folder("student") == layout.served / "student"
    assert layout.resolve_model("student") == layout.served / "student"
    assert layout.resolve_model("teacher") == shipped_weights_folder("teacher")
    assert layout.resolve_model("some/folder") == "some/folder"


def test_the_layout_loads_without_torch() -> None:
    code = "import sys, retrain.layout; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
