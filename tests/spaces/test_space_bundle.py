"""``tsnet space build|push``: a self-contained Space folder with a valid Spaces header, pinned requirements, our
packages and weights, uploaded as one commit to the Hub stand-in.

The weights are random-init folders made here, so these tests depend neither on the shipped weights nor on a
training run. ``space_weights`` and ``build_bundle`` are imported by the other ``test_space_*`` modules.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import json
import sys
from pathlib import Path

import pytest
import yaml

from spaces.bundle import PACKAGES, SpaceBuild, build_space, read_front_matter
from tests._weights import write_random_weights
from tests.support.hub_server import HubServer
from tsnet.cli import main

ARCHITECTURES = {"student": "shufflenet_v2", "teacher": "eff_resnet18"}


def make_weights(root: Path) -> Path:
    """Random-init student and teacher weights folders under ``root`` (float16 on disk to keep bundles small)."""
    for name, architecture in ARCHITECTURES.items():
        write_random_weights(root / name, architecture, half=True)
    return root


@pytest.fixture(scope="session")
def space_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_weights(tmp_path_factory.mktemp("space-weights"))


def build_bundle(out: Path, weights: Path) -> SpaceBuild:
    return build_space(out, weights_from=weights)


@pytest.fixture(scope="module")
def bundle(space_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> SpaceBuild:
    return build_bundle(tmp_path_factory.mktemp("space") / "bundle", space_weights)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _installed(name: str) -> str:
    return metadata.version(name).split("+", 1)[0]


def test_bundle_holds_app_runtime_packages_and_weights(bundle: SpaceBuild, space_weights: Path) -> None:
    folder = bundle.folder
    for name in ("README.md", "app.py", "space_runtime.py", "requirements.txt", ".gitattributes", "space_config.json"):
        assert (folder / name).is_file(), name
    for package in PACKAGES:
        assert (folder / package / "__init__.py").is_file(), package
    assert not (folder / "spaces").exists()  # would shadow the `spaces` package Gradio Spaces install
    assert not (folder / "packages.txt").exists()  # dlib-bin wheels need no Debian package
    assert not [f for f in bundle.files if "__pycache__" in f or f.endswith(".pyc") or f.startswith("tests/")]
    assert "retrain/statistics/fer_features.safetensors" in bundle.files  # a Space's retrain without FER+ uses it
    for name in ARCHITECTURES:
        for file in ("config.json", "model.safetensors"):
            assert _sha256(folder / "core" / "pretrained" / name / file) == _sha256(space_weights / name / file)
    assert bundle.files == sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert bundle.size_bytes == sum((folder / f).stat().st_size for f in bundle.files)
    assert "*.safetensors filter=lfs" in (folder / ".gitattributes").read_text()
    assert "prepare_space()" in (folder / "app.py").read_text()


def test_readme_yaml_header_parses_and_carries_the_space_keys(bundle: SpaceBuild) -> None:
    text = (bundle.folder / "README.md").read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta == read_front_matter(text)
    assert meta["title"] and meta["emoji"]
    assert meta["sdk"] == "gradio"
    assert meta["sdk_version"] == metadata.version("gradio")
    assert meta["app_file"] == "app.py" and (bundle.folder / meta["app_file"]).is_file()
    assert meta["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert meta["hf_oauth"] is True
    assert meta["suggested_hardware"] == "cpu-basic"
    assert 0 < len(meta["short_description"]) <= 60  # the Hub's limit
    assert "models" not in meta and "preload_from_hub" not in meta  # weights are bundled
    for variable in ("HF_TOKEN", "TSNET_ALLOWED_USERS", "TSNET_DATA_REPO", "TSNET_HUB_REPO"):
        assert variable in text


def test_requirements_pin_the_tested_versions(bundle: SpaceBuild) -> None:
    lines = [line for line in (bundle.folder / "requirements.txt").read_text().splitlines() if line.strip()]
    requirements = [line for line in lines if not line.startswith("#")]
    assert requirements[0] == "--extra-index-url https://download.pytorch.org/whl/cpu"
    pins = dict(line.split("==") for line in requirements[1:])
    assert pins["torch"] == _installed("torch") and pins["torchvision"] == _installed("torchvision")
    assert "dlib-bin" in pins and "dlib" not in pins
    assert "gradio" not in pins and pins.pop("gradio[oauth]") == metadata.version("gradio")  # = sdk_version
    for name, version in pins.items():
        assert version == _installed(name), name
    for name in ("huggingface-hub", "safetensors", "numpy", "pillow", "face-recognition-models", "grad-cam"):
        assert name in pins


def test_model_repo_build_preloads_the_published_model_instead_of_bundling(tmp_path: Path) -> None:
    build = build_space(tmp_path / "hub-bundle", model_repo="tsnet/fer-tsnet")
    meta = read_front_matter((build.folder / "README.md").read_text())
    assert meta["models"] == ["tsnet/fer-tsnet"]
    assert meta["preload_from_hub"] == ["tsnet/fer-tsnet"]
    assert not [f for f in build.files if f.startswith("core/pretrained/")]
    assert json.loads((build.folder / "space_config.json").read_text())["model_repo"] == "tsnet/fer-tsnet"


def test_build_without_weights_from_uses_the_registry_served_version(
    space_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "served").symlink_to(space_weights, target_is_directory=True)  # what the registry's promote makes
    monkeypatch.setenv("TSNET_HOME", str(home))
    monkeypatch.delenv("TSNET_HUB_REPO", raising=False)
    assert main(["space", "build", str(tmp_path / "out")]) == 0
    served = tmp_path / "out" / "core" / "pretrained" / "student" / "model.safetensors"
    assert _sha256(served) == _sha256(space_weights / "student" / "model.safetensors")


def test_build_refuses_to_overwrite_and_reports_missing_weights(
    space_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["space", "build", str(out), "--weights-from", str(space_weights)]) == 0
    assert main(["space", "build", str(out), "--weights-from", str(space_weights)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["space", "build", str(out), "--weights-from", str(space_weights), "--force"]) == 0

    other = tmp_path / "not-a-bundle"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    assert main(["space", "build", str(other), "--weights-from", str(space_weights), "--force"]) == 2
    assert (other / "notes.txt").is_file()

    assert main(["space", "build", str(tmp_path / "x"), "--weights-from", str(tmp_path / "nowhere")]) == 2
    assert "no student weights" in capsys.readouterr().err


def test_space_commands_have_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["space"], ["space", "build"], ["space", "push"]):
        with pytest.raises(SystemExit) as raised:
            main([*command, "--help"])
        assert raised.value.code == 0
        assert capsys.readouterr().out.strip()
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "tsnet space build" in readme and "tsnet space push" in readme


def test_space_push_uploads_the_bundle(
    bundle: SpaceBuild, hub_server: HubServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HF_TOKEN", hub_server.token)
    repo_id = f"{hub_server.username}/tsnet-studio"

    assert main(["space", "push", repo_id, "--bundle", str(bundle.folder)]) == 0

    assert hub_server.repo_exists(repo_id, repo_type="space")
    assert hub_server.repo_files(repo_id, repo_type="space") == bundle.files
    for path in ("README.md", "app.py", "core/pretrained/student/model.safetensors"):
        assert hub_server.read_file(repo_id, path, repo_type="space") == (bundle.folder / path).read_bytes()
    assert hub_server.file_is_lfs(repo_id, "core/pretrained/teacher/model.safetensors", repo_type="space")
    assert len(hub_server.commits(repo_id, repo_type="space")) == 2  # the Hub's initial commit + ours
    output = capsys.readouterr()
    assert hub_server.token not in output.out + output.err
    assert "Pushed to Space" in output.out


def test_space_push_without_token_fails_clearly(
    bundle: SpaceBuild, hub_server: HubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["space", "push", f"{hub_server.username}/x", "--bundle", str(bundle.folder)]) == 1
    assert "HF_TOKEN" in capsys.readouterr().err
