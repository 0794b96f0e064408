"""``tsnet serve`` / ``tsnet bench-serve`` from the command line (the app itself is tested in test_webapp_*)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests._webapp_fixtures import LiveApp, launch
from tsnet.cli import main


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from launch(tmp_path_factory.mktemp("bench-serve"), users="")


def _refused_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"  # nothing listens there any more


def test_bench_serve_json_measures_a_running_server(app: LiveApp, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bench-serve", "--url", app.url, "--requests", "2", "--clients", "2", "--import-images", "1", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["all_correct"] and result["server_alive"] and result["requests"] == 2
    assert set(result["latency_ms"]) == {"p50", "p95", "max", "mean"}


def test_bench_serve_on_a_dead_url_fails_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = _refused_url()
    assert main(["bench-serve", "--url", url, "--requests", "1", "--import-images", "0"]) == 1
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("tsnet bench-serve: error: could not measure") and url in line
    assert captured.out == ""


def test_python_m_webapp_is_tsnet_serve() -> None:
    result = subprocess.run([sys.executable, "-m", "webapp", "--help"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("usage: tsnet serve") and "--port" in result.stdout
