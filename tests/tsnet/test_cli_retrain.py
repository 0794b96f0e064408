"""``tsnet models`` and ``tsnet retrain`` from the command line: the data folder is named, stdout stays the result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tsnet.cli import main


def test_models_list_json_names_the_data_folder_on_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TSNET_HOME", str(tmp_path / "home"))
    assert main(["models", "list", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["current"] == "base"
    assert f"data folder {(tmp_path / 'home').resolve()}" in captured.err


def test_retrain_without_a_database_fails_in_one_line_and_names_the_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TSNET_HOME", str(tmp_path / "home"))
    assert main(["retrain", "--epochs", "1"]) == 1
    captured = capsys.readouterr()
    assert f"data folder {(tmp_path / 'home').resolve()}" in captured.err
    assert "no annotation database" in captured.err and "Traceback" not in captured.err


@pytest.mark.parametrize("command", [["retrain"], ["models"], ["models", "list"], ["models", "promote"]])
def test_retrain_and_models_commands_have_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*command, "--help"])
    assert caught.value.code == 0 and f"usage: tsnet {' '.join(command)}" in capsys.readouterr().out
