"""Every `tsnet` subcommand has help text and is documented in the README."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tsnet.cli import build_parser

README = Path(__file__).resolve().parents[2] / "README.md"


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


_HEAVY = ("torch", "torchvision", "gradio", "dlib", "numpy", "PIL", "datasets", "sklearn", "skimage", "onnx")
_OURS = ("core", "labeling", "retrain", "webapp", "spaces")


@pytest.mark.parametrize(
    "command", [[], ["label"], ["label", "import"], ["retrain"], ["models"], ["space", "build"], ["serve"]]
)
def test_help_imports_no_library(command: list[str]):
    """Listing commands (and the help of commands whose flags need no library default) stays standard-library only."""
    probe = (
        "import json, sys\n"
        "from tsnet.cli import main\n"
        "try:\n"
        f"    main({[*command, '--help']!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(json.loads(result.stderr.strip().splitlines()[-1]))
    assert "usage: tsnet" in result.stdout
    assert not loaded & {*_HEAVY, *_OURS}, sorted(loaded & {*_HEAVY, *_OURS})


def test_every_subcommand_configures_and_documents_its_exit_status():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    for name in action.choices:
        assert f"usage: tsnet {name}" in action.configured(name).format_help(), name
    assert "Exit status" in parser.format_help()
    assert "1 when any input could not be read" in " ".join(action.configured("predict").format_help().split())
