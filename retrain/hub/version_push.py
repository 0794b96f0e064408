"""Publish registry versions to a Hugging Face model repo: one commit per version, "pending push" on failure.

The pushed folder holds the student at its root (config.json, model.safetensors, README.md model card with the
metrics), the teacher under ``teacher/`` and ``metrics.json``; the commit message names the version.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..registry import METRICS_FILE, ModelRegistry
from ..registry.model_card import write_model_card
from ..settings import RetrainSettings
from .transport import PublishError, push_folder

__all__ = ["publish_version", "push_pending", "card_metrics", "PENDING"]

logger = logging.getLogger(__name__)
PENDING = "pending push"


def card_metrics(metrics: dict[str, Any]) -> dict[str, float | int | str]:
    """The scalar metrics a model card table shows: accuracy and macro recall per evaluation set."""
    scalars: dict[str, float | int | str] = {}
    for name, report in metrics.get("evaluations", {}).items():
        scalars[f"{name}_accuracy"] = report["accuracy"]
        scalars[f"{name}_macro_recall"] = report["macro_recall"]
        scalars[f"{name}_samples"] = report["samples"]
    return scalars


def publish_version(registry: ModelRegistry, version: str, repo: str, settings: RetrainSettings) -> str:
    """Push ``version``; returns "pushed <url>" or "pending push" (recorded in the version either way)."""
    folder = registry.version_dir(version)
    metrics = registry.metrics(version)
    with tempfile.TemporaryDirectory(prefix="tsnet-push-") as temporary:
        upload = Path(temporary)
        for item in (folder / "student").iterdir():
            shutil.copy2(item, upload / item.name)
        shutil.copytree(folder / "teacher", upload / "teacher")
        (upload / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
        write_model_card(
            upload,
            metrics=card_metrics(metrics),
            repo_id=repo,
            description=f"T-SNet Studio student, registry version {version} (parent:"
            f" {registry.record(version).get('parent')}). The teacher it was distilled from is in `teacher/`.",
        )
        summary = ", ".join(f"{k} {v:.4f}" for k, v in card_metrics(metrics).items() if k.endswith("_accuracy"))
        try:
            result = push_folder(
                upload,
                repo,
                commit_message=f"T-SNet Studio {version}" + (f": {summary}" if summary else ""),
                retries=settings.push_retries,
                backoff=settings.push_backoff,
            )
        except PublishError as error:
            logger.warning("push of %s to %s failed, kept as pending: %s", version, repo, error)
            registry.update_record(version, pushed=PENDING, push_repo=repo, push_error=str(error))
            return PENDING
    registry.update_record(version, pushed=result.commit_url, push_repo=repo, push_error=None)
    return f"pushed {result.commit_url}"


def push_pending(registry: ModelRegistry, settings: RetrainSettings) -> list[tuple[str, str]]:
    """Retry every version left "pending push", oldest first, to the repo it was meant for."""
    outcomes = []
    for version in registry.versions():
        record = registry.record(version)
        if record.get("pushed") == PENDING and record.get("push_repo"):
            outcomes.append((version, publish_version(registry, version, record["push_repo"], settings)))
    return outcomes
