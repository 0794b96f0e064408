"""Every `tsnet` subcommand has help text and is documented in the README."""

import subprocess
import sys
from pathlib import Path

from tsnet.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def _subcommands() -> dict:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def test_help_lists_the_public_commands():
    output = subprocess.run(
        [sys.executable, "-m", "tsnet", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in (
        "train-teacher",
        "train-student",
        "distill",
        "evaluate",
        "predict",
        "bench",
        "export-onnx",
        "export-tflite",
        "label",
        "retrain",
        "models",
        "serve",
        "space",
        "report",
    ):
        assert command in output


def test_every_subcommand_has_help_and_a_readme_entry():
    readme = README.read_text()
    for name, parser in _subcommands().items():
        assert parser.description or parser.format_help().strip(), name
        assert f"tsnet {name}" in readme, f"`tsnet {name}` is not documented in README.md"


def test_no_command_prints_help_and_fails():
    result = subprocess.run([sys.executable, "-m", "tsnet"], capture_output=True, text=True)
    assert result.returncode == 2 and "COMMAND" in result.stdout
