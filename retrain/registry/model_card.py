"""Model card (README.md) for a weights folder, so a pushed model is self-describing on the Hub.

The metadata header follows the Hub's model card schema (``library_name``, ``tags``, ``pipeline_tag``, ``metrics``)
so the Hub indexes the model as an image classifier; the body repeats what ``config.json`` says in human terms.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCardData

from core.weights import CONFIG_NAME, read_config

__all__ = ["CARD_NAME", "render_model_card", "write_model_card"]

CARD_NAME = "README.md"
DEFAULT_TAGS = ("image-classification", "facial-expression-recognition", "tsnet-studio")


def _format_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    return f"{value:.4f}"


def render_model_card(
    folder: str | Path,
    *,
    metrics: Mapping[str, Any] | None = None,
    repo_id: str | None = None,
    tags: Sequence[str] = (),
    library_name: str = "pytorch",
    license: str | None = "mit",  # noqa: A002 - the Hub's field name
    description: str | None = None,
) -> str:
    """Return the README.md text for the weights folder; ``metrics`` defaults to the ones stored in config.json."""
    folder = Path(folder)
    config = read_config(folder) if (folder / CONFIG_NAME).is_file() else None
    if metrics is None:
        metrics = dict(config.metrics) if config is not None else {}
    scalar_metrics = {name: value for name, value in metrics.items() if isinstance(value, int | float | str)}
    all_tags = list(dict.fromkeys([*DEFAULT_TAGS, *([config.architecture] if config else []), *tags]))
    card_data = ModelCardData(
        library_name=library_name,
        license=license,
        tags=all_tags,
        pipeline_tag="image-classification",
        metrics=list(scalar_metrics) or None,
    )
    title = repo_id.split("/")[-1] if repo_id else (config.architecture if config else folder.name)
    lines = ["---", card_data.to_yaml(), "---", "", f"# {title}", ""]
    lines.append(description or "Facial expression recognition model trained with T-SNet Studio.")
    lines.append("")
    if config is not None:
        channels = "grayscale" if config.grayscale else f"{config.in_chans}-channel"
        lines += [
            "## Model",
            "",
            f"- Architecture: `{config.architecture}`",
            f"- Input: {config.input_size}x{config.input_size} {channels}, normalised with mean {config.mean}"
            f" and std {config.std}; a photo's aligned face is first reduced to {config.face_size} px",
            f"- Labels ({len(config.labels)}): {', '.join(config.labels)}",
            *(
                [
                    "- Face head: the student's logits plus a head fitted on the user's photos, reading dlib's"
                    " face-recognition features (the face at 150 px) beside the student's own"
                    + _fits_clause(config.training)
                    + (
                        "; a domain gate applies it to faces like the user's and leaves faces like FER+'s web crops"
                        " to the student"
                        if config.model_kwargs.get("domain_gate")
                        else ""
                    )
                ]
                if "face_head" in config.training
                else []
            ),
            f"- Files: `{CONFIG_NAME}` (architecture, labels, preprocessing) and `model.safetensors` (weights)",
            "",
        ]
    if scalar_metrics:
        lines += ["## Metrics", "", "| Metric | Value |", "| --- | --- |"]
        lines += [f"| {name} | {_format_value(value)} |" for name, value in scalar_metrics.items()]
        lines.append("")
    return "\n".join(lines)


def write_model_card(folder: str | Path, **kwargs: Any) -> Path:
    """Write README.md into the weights folder (replacing an old one) and return its path."""
    path = Path(folder) / CARD_NAME
    path.write_text(render_model_card(folder, **kwargs), encoding="utf-8")
    return path


def _fits_clause(training: dict[str, Any]) -> str:
    """Which of the job's head fits the version keeps, and at what strength, as the card says it."""
    fit = training.get("face_head_fit") or {}
    candidates = fit.get("candidates") or []
    if len(candidates) < 2:
        return ""
    strength = training.get("shrunk_toward_current", 1.0)
    held = f", at {strength:g} of its strength so the benchmark holds" if strength < 1 else ""
    return f"; the best of {len(candidates)} fits on different seeds (seed {fit.get('kept_seed')}){held}"
