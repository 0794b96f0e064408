"""Assemble a self-contained Hugging Face Space folder from this checkout, and push it.

Why a bundle instead of ``pip install`` from the Space: the Space must run exactly the code and weights we tested,
so our packages travel as source folders next to ``app.py``, the requirements pin the versions installed here, and
``sdk_version`` is the Gradio we test with. Everything version-like is read at build time, never written by hand.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import importlib.util
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from retrain.layout import MODEL_NAMES

__all__ = [
    "SpaceBuild",
    "build_space",
    "push_space",
    "requirements_lines",
    "space_metadata",
    "read_front_matter",
    "PACKAGES",
]

PACKAGES = ("core", "labeling", "retrain", "webapp", "tsnet")
WEIGHT_FILES = ("config.json", "model.safetensors")  # core.weights' names, spelled out: no torch import here
TEMPLATES = Path(__file__).resolve().parent
REPO_ROOT = TEMPLATES.parent
DISTRIBUTION = "tsnet-studio"
BUNDLE_CONFIG_NAME = "space_config.json"  # the bundle's settings, as space_runtime.BUNDLE_CONFIG_NAME reads them
TORCH_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"
TORCH_PACKAGES = ("torch", "torchvision")
# The Space installs Gradio from sdk_version; requirements only add its OAuth extras (authlib, itsdangerous: what
# "Sign in with Hugging Face" needs), pinned to the same Gradio so the two can never disagree.
NOT_IN_REQUIREMENTS = frozenset({"gradio", "gradio-client"})
SHORT_DESCRIPTION = "Facial expressions: predict, explain, label and retrain"
GITATTRIBUTES = "*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.onnx filter=lfs diff=lfs merge=lfs -text\n"
_SKIP_NAMES = ("__pycache__", "tests", "*.pyc", "*.pyo", ".*", "*.egg-info")


@dataclass(frozen=True)
class SpaceBuild:
    """What ``build_space`` wrote: the folder, its files (sorted, relative) and their total size."""

    folder: Path
    files: list[str]
    size_bytes: int
    model_repo: str | None
    weights: dict[str, str] = field(default_factory=dict)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_version(name: str) -> str:
    """The installed version without a local label (``2.14.1+cpu`` -> ``2.14.1``; ``==`` then admits both)."""
    try:
        return metadata.version(name).split("+", 1)[0]
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(f"{name} is not installed: the Space pins what we test, so install it") from None


def _runtime_dependencies() -> list[str]:
    """Names of our runtime dependencies: from this checkout's pyproject.toml, else the installed metadata."""
    pyproject = REPO_ROOT / "pyproject.toml"
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = None
    if pyproject.is_file() and tomllib is not None:
        specs = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    else:
        specs = [spec for spec in metadata.requires(DISTRIBUTION) or [] if "extra ==" not in spec]
    names = []
    for spec in specs:
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
        if match and _normalise(match.group(1)) not in NOT_IN_REQUIREMENTS:
            names.append(_normalise(match.group(1)))
    return names


def requirements_lines(dependencies: Sequence[str] | None = None) -> list[str]:
    """``requirements.txt``: the CPU wheel index for torch, then every runtime dependency pinned as installed."""
    names = list(dependencies) if dependencies is not None else _runtime_dependencies()
    if "dlib" in names:
        raise ValueError("depend on dlib-bin (wheels), not the dlib sdist: Spaces would compile it for minutes")
    torch_first = [name for name in TORCH_PACKAGES if name in names]
    others = sorted(name for name in names if name not in TORCH_PACKAGES)
    lines = [
        f"# Written by `tsnet space build`: the versions T-SNet Studio was tested with (Python {_python_version()}).",
        "# Gradio comes from the README's sdk_version; the last line only adds its OAuth extras.",
    ]
    if torch_first:
        lines.append(TORCH_INDEX)
    lines += [f"{name}=={_installed_version(name)}" for name in torch_first + others]
    lines.append(f"gradio[oauth]=={_installed_version('gradio')}")
    return lines


def _python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def space_metadata(*, title: str = "T-SNet Studio", model_repo: str | None = None) -> dict[str, Any]:
    """The README's YAML header (https://huggingface.co/docs/hub/spaces-config-reference)."""
    meta: dict[str, Any] = {
        "title": title,
        "emoji": "🙂",
        "colorFrom": "indigo",
        "colorTo": "purple",
        "sdk": "gradio",
        "sdk_version": _installed_version("gradio"),
        "python_version": _python_version(),
        "app_file": "app.py",
        "pinned": False,
        "license": "mit",
        "short_description": SHORT_DESCRIPTION,
        "suggested_hardware": "cpu-basic",
        # Sign-in with Hugging Face; the app lets only TSNET_ALLOWED_USERS annotate and retrain.
        "hf_oauth": True,
        "hf_oauth_expiration_minutes": 480,
        "tags": ["facial-expression-recognition", "knowledge-distillation", "grad-cam", "annotation"],
    }
    if model_repo:
        meta["models"] = [model_repo]
        # Downloaded into the Space's Hub cache at build time; space_runtime reads it from there at start.
        meta["preload_from_hub"] = [model_repo]
    return meta


def read_front_matter(readme: str) -> dict[str, Any]:
    """The YAML header of a README (between the first two ``---`` lines)."""
    if not readme.startswith("---\n"):
        raise ValueError("README has no YAML header")
    header, _, _ = readme[4:].partition("\n---\n")
    return yaml.safe_load(header)


def _readme(meta: dict[str, Any], weights: dict[str, str]) -> str:
    header = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    if meta.get("models"):
        served = f"the published model `{meta['models'][0]}` (downloaded at start).\n"
    else:
        served = "the weights bundled in `core/pretrained/`:\n\n" + "".join(f"- {k}: {v}\n" for k, v in weights.items())
    return f"""---
{header}---

# {meta["title"]}

Fast, small facial expression recognition you can explain, label and retrain: a distilled ShuffleNetV2 student
(T-SNet) with Grad-CAM, an annotation queue and one-click retraining. A version promoted by retraining here
is served until it is rolled back; otherwise the Space serves {served}

## Settings (Space settings -> Variables and secrets)

| name | kind | what it does |
|---|---|---|
| `HF_TOKEN` | secret | write token: mirrors labels to `TSNET_DATA_REPO`, reads a private model repo |
| `TSNET_ALLOWED_USERS` | variable | comma-separated Hugging Face user names who may annotate and retrain |
| `TSNET_DATA_REPO` | variable | dataset repo (created private) mirroring the label store and model registry |
| `TSNET_HUB_REPO` | variable | model repo served by default (student at the root, `teacher/`); retrain pushes there |
| `TSNET_MIRROR_MINUTES` | variable | minutes between mirror commits (default 5) |
| `TSNET_HOME` | variable | data directory; default `/data/tsnet` with persistent storage, else `./tsnet-data` |

Without persistent storage the disk is wiped at every restart: labels then live only in `TSNET_DATA_REPO`,
restored from it at start. Built by `tsnet space build`; see the project README ("Deploy to Hugging Face Spaces").
"""


def _skip(source_root: Path) -> Callable[[str, list[str]], set[str]]:
    """``copytree`` ignore: caches, tests and hidden files everywhere; ``core/pretrained`` (written separately)."""
    base = shutil.ignore_patterns(*_SKIP_NAMES)

    def ignore(directory: str, names: list[str]) -> set[str]:
        skipped = set(base(directory, names))
        if Path(directory) == source_root and source_root.name == "core":
            skipped.add("pretrained")
        return skipped

    return ignore


def _package_source(name: str) -> Path:
    """The package's source folder, found without importing it (webapp would import Gradio, core torch)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {name!r} not found")
    return Path(list(spec.submodule_search_locations)[0])


def _weights_folder(name: str, weights_from: Path | None) -> Path | None:
    if weights_from is not None:
        folder = weights_from / name
    else:
        from retrain.layout import DataLayout

        folder = DataLayout.from_env().weights_folder(name)
    return folder if all((folder / file).is_file() for file in WEIGHT_FILES) else None


def _weights_label(folder: Path) -> str:
    config = json.loads((folder / WEIGHT_FILES[0]).read_text())
    version = (config.get("training") or {}).get("version")
    digest = hashlib.sha256((folder / WEIGHT_FILES[1]).read_bytes()).hexdigest()[:12]
    return f"{config.get('architecture', '?')} {version or 'unversioned'} sha256:{digest}"


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out} is not empty (pass --force to replace an earlier bundle)")
        if not (out / BUNDLE_CONFIG_NAME).is_file():
            raise FileExistsError(
                f"{out} is not an earlier Space bundle (no {BUNDLE_CONFIG_NAME}); refusing to delete it"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def build_space(
    out: str | Path,
    *,
    weights_from: str | Path | None = None,
    model_repo: str | None = None,
    title: str = "T-SNet Studio",
    force: bool = False,
) -> SpaceBuild:
    """Write the Space into ``out``: README (YAML header), app.py, space_runtime.py, requirements, our packages and,
    unless ``model_repo`` is given, the served weights (``weights_from/<name>`` or the registry's / shipped ones)."""
    if weights_from is not None and model_repo:
        raise ValueError("choose bundled weights (--weights-from) or a model repo (--model-repo), not both")
    out = Path(out)
    weights: dict[str, str] = {}
    sources: dict[str, Path] = {}
    if not model_repo:
        for name in MODEL_NAMES:
            folder = _weights_folder(name, Path(weights_from) if weights_from is not None else None)
            if folder is not None:
                sources[name] = folder
                weights[name] = _weights_label(folder)
        if "student" not in sources:
            where = f"{weights_from}/student" if weights_from is not None else "the registry or core/pretrained"
            raise FileNotFoundError(f"no student weights in {where}: pass --weights-from DIR or --model-repo REPO")
    meta = space_metadata(title=title, model_repo=model_repo)
    requirements = requirements_lines()

    _prepare_out(out, force)
    for package in PACKAGES:
        source = _package_source(package)
        shutil.copytree(source, out / package, ignore=_skip(source))
    for name, folder in sources.items():
        target = out / "core" / "pretrained" / name
        target.mkdir(parents=True, exist_ok=True)
        for file in WEIGHT_FILES:
            shutil.copyfile(folder / file, target / file)
    shutil.copyfile(TEMPLATES / "app.py", out / "app.py")
    shutil.copyfile(TEMPLATES / "runtime.py", out / "space_runtime.py")
    (out / "requirements.txt").write_text("\n".join(requirements) + "\n")
    (out / ".gitattributes").write_text(GITATTRIBUTES)
    (out / "README.md").write_text(_readme(meta, weights))
    config = {
        "model_repo": model_repo,
        "weights": weights,
        "sdk_version": meta["sdk_version"],
        "built_with": f"{DISTRIBUTION} {_installed_version(DISTRIBUTION)}",
    }
    (out / BUNDLE_CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")

    files = sorted(path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file())
    size = sum((out / file).stat().st_size for file in files)
    return SpaceBuild(folder=out, files=files, size_bytes=size, model_repo=model_repo, weights=weights)


def push_space(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    endpoint: str | None = None,
    private: bool | None = None,
    commit_message: str | None = None,
) -> Any:
    """Upload a built bundle to the Space ``repo_id`` as one commit (created if missing); token: arg or HF_TOKEN."""
    from retrain.hub.transport import push_folder

    folder = Path(folder)
    if not (folder / "app.py").is_file() or not (folder / BUNDLE_CONFIG_NAME).is_file():
        raise FileNotFoundError(f"{folder} is not a Space bundle (run `tsnet space build` first)")
    config = json.loads((folder / BUNDLE_CONFIG_NAME).read_text())
    served = config.get("model_repo") or config.get("weights", {}).get("student", "bundled weights")
    message = commit_message or f"T-SNet Studio Space (gradio {config.get('sdk_version')}; student: {served})"
    return push_folder(
        folder,
        repo_id,
        repo_type="space",
        space_sdk="gradio",
        commit_message=message,
        token=token or os.environ.get("HF_TOKEN") or None,
        endpoint=endpoint,
        private=private,
    )
