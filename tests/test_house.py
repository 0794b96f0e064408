"""The house rules the code keeps: imports run one way between the packages, and only retrain/layout.py reads
``TSNET_HOME`` (core knows nothing of the served version)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("core", "labeling", "retrain", "webapp", "spaces", "tsnet")  # each may import only those before it


def _sources(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", LAYERS)
def test_imports_run_one_way(package: str) -> None:
    above = set(LAYERS[LAYERS.index(package) + 1 :])
    upward = {f"{path.relative_to(REPO)} imports {sorted(_imported(path) & above)}" for path in _sources(package)}
    assert not {line for line in upward if not line.endswith("[]")}


def test_only_the_layout_reads_the_data_folder_variable() -> None:
    named = {
        str(path.relative_to(REPO))
        for package in LAYERS
        for path in _sources(package)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value == "TSNET_HOME"  # the name as code, not in prose
    }
    assert named == {"retrain/layout.py"}


def test_core_does_not_know_the_served_folder() -> None:
    named = {
        str(path.relative_to(REPO))
        for path in _sources("core")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in ("served", "TSNET_HOME", "tsnet-data")
    }
    assert not named  # retrain.layout resolves "the served version, else shipped"; core only has its shipped weights
