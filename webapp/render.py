"""Pictures, tables and text the app shows; pure functions of model and store outputs, easy to test."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from core import Face

__all__ = [
    "cam_strip",
    "comparison_rows",
    "per_class_rows",
    "counts_rows",
    "curve_figure",
    "draw_faces",
    "face_at_point",
    "job_markdown",
    "versions_rows",
]

_BOX_COLOUR = (255, 196, 0)
_CAM_SIDE = 224  # aligned crops are upscaled so a heat map is readable next to the photo


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def draw_faces(image: Image.Image, faces: Sequence[Face]) -> Image.Image:
    """The photo with one numbered box and "label p" caption per face, sized to the photo."""
    canvas = image.convert("RGB").copy()
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(max(canvas.size) / 250))
    font = _font(max(14, round(max(canvas.size) / 30)))
    for number, face in enumerate(faces, start=1):
        x0, y0, x1, y1 = face.box
        draw.rectangle((x0, y0, x1, y1), outline=_BOX_COLOUR, width=width)
        caption = f"{number}. {face.label} {face.probs.get(face.label or '', 0):.0%}" if face.label else f"{number}."
        left, top, right, bottom = draw.textbbox((x0, y0), caption, font=font)
        top_edge = y0 - (bottom - top) - 2 * width if y0 - (bottom - top) - 2 * width >= 0 else y1
        draw.rectangle(
            (x0, top_edge, x0 + (right - left) + 2 * width, top_edge + (bottom - top) + 2 * width), fill=_BOX_COLOUR
        )
        draw.text((x0 + width, top_edge + width - (top - y0)), caption, fill=(0, 0, 0), font=font)
    return canvas


def face_at_point(faces: Sequence[dict[str, Any]], point: Any) -> int | None:
    """The 1-based number of the face whose box (``Face.to_dict``'s ``box``) holds ``point`` (x, y in photo
    pixels): the smallest such box, so a face in front of a larger one can be chosen; ``None`` off every box."""
    try:
        x, y = (float(v) for v in point)
    except (TypeError, ValueError):
        return None
    inside = [
        ((face["box"][2] - face["box"][0]) * (face["box"][3] - face["box"][1]), number)
        for number, face in enumerate(faces, start=1)
        if face["box"][0] <= x <= face["box"][2] and face["box"][1] <= y <= face["box"][3]
    ]
    return min(inside)[1] if inside else None


def cam_strip(panels: Sequence[tuple[Image.Image, str]]) -> Image.Image | None:
    """Heat-map overlays side by side, each captioned with its face number and class."""
    if not panels:
        return None
    caption_height = 28
    strip = Image.new("RGB", (_CAM_SIDE * len(panels), _CAM_SIDE + caption_height), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    font = _font(18)
    for index, (overlay, caption) in enumerate(panels):
        strip.paste(
            overlay.convert("RGB").resize((_CAM_SIDE, _CAM_SIDE), Image.Resampling.BICUBIC), (index * _CAM_SIDE, 0)
        )
        draw.text((index * _CAM_SIDE + 6, _CAM_SIDE + 4), caption, fill=(0, 0, 0), font=font)
    return strip


def counts_rows(stats: dict[str, Any]) -> list[list[Any]]:
    """Class x split counts with totals, for a ``gr.Dataframe`` whose headers are class, splits, total."""
    splits = list(stats["counts"])
    rows = []
    for label in stats["labels"]:
        values = [stats["counts"][split][label] for split in splits]
        rows.append([label, *values, sum(values)])
    totals = [stats["split_totals"][split] for split in splits]
    rows.append(["total", *totals, sum(totals)])
    return rows


def _number(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def job_markdown(job: Any) -> str:
    """Stage, epoch and latest metrics of a retrain job (``retrain.JobInfo``), or a hint when none ran."""
    if job is None:
        return "No retrain job yet. Label some images, then press **Retrain**."
    lines = [f"### Job `{job.id}`: {job.state}", f"**Stage:** {job.stage or '-'}"]
    lines += [f"> **Warning:** {warning}." for warning in getattr(job, "warnings", None) or []]
    trained = [event for event in job.events or [] if isinstance(event.get("metrics"), dict)]
    if trained:
        latest = trained[-1]
        lines.append(f"**Epoch:** {latest.get('epoch')} / {latest.get('epochs', '?')} ({latest.get('stage')})")
        shown = {key: value for key, value in latest["metrics"].items() if isinstance(value, (int, float))}
        shown.pop("epoch", None)
        lines.append("| metric | value |\n|---|---|\n" + "\n".join(f"| {k} | {_number(v)} |" for k, v in shown.items()))
    if job.version:
        lines.append(f"**Candidate version:** `{job.version}`" + (" (promoted, now served)" if job.promoted else ""))
    warnings = set(getattr(job, "warnings", None) or [])
    for reason in job.decision or []:
        if reason not in warnings:  # shown once, at the top
            lines.append(f"- {reason}")
    if job.error:
        lines.append(f"**Error:** {job.error}")
    if job.push:
        lines.append(f"**Hub push:** {_linked(str(job.push))}")
    return "\n\n".join(lines)


def _linked(text: str) -> str:
    """Make the Hub URL in a push outcome clickable."""
    words = [f"[{word}]({word})" if word.startswith("https://") else word for word in text.split()]
    return " ".join(words)


def _latest_accuracy(metrics: dict[str, Any]) -> float | None:
    evaluations = metrics.get("evaluations") or {}
    for name in ("base_benchmark", "store_test"):
        if isinstance(evaluations.get(name), dict):
            return evaluations[name].get("accuracy")
    return metrics.get("accuracy", metrics.get("val_accuracy"))


def comparison_rows(comparison: dict[str, Any] | None) -> list[list[Any]]:
    """One row per evaluation set: samples, current and candidate accuracy, delta, whether it passed."""
    rows = []
    for name, row in (comparison or {}).items():
        if not isinstance(row, dict):
            continue
        rows.append(
            [
                name,
                row.get("samples", ""),
                _percent(row.get("current_accuracy")),
                _percent(row.get("candidate_accuracy")),
                f"{100 * row['delta']:+.2f}" if isinstance(row.get("delta"), (int, float)) else "",
                _verdict(name, row),
            ]
        )
    return rows


def _verdict(name: str, row: dict[str, Any]) -> str:
    """What the promotion rule made of one set (see ``retrain.jobs.promotion``)."""
    if not row.get("counted", True):
        return "not counted (too few faces or groups)"
    if name == "base_benchmark":
        return "within tolerance" if row.get("passed") else "regressed"
    low, high = row.get("delta_low"), row.get("delta_high")
    level = 100 * (row.get("confidence") or 0.95)
    interval = f" ({level:.0f} % interval {100 * low:+.1f} to {100 * high:+.1f})" if isinstance(low, float) else ""
    if row.get("passed"):
        return "better" + interval
    return ("regressed" if (row.get("delta") or 0) < 0 else "not shown better") + interval


PER_CLASS_SETS = ("store_test", "base_benchmark")  # the columns of the Retrain tab's per-class table


def per_class_rows(comparison: dict[str, Any] | None) -> list[list[Any]]:
    """Per class: current -> candidate accuracy on the store's test split and on the benchmark ("not run" when the
    job had no benchmark data, "no faces" for a class the set lacks)."""
    comparison = comparison or {}
    classes: list[str] = []
    for name in PER_CLASS_SETS:
        classes += [
            label for label in (comparison.get(name) or {}).get("candidate_per_class") or {} if label not in classes
        ]
    rows = []
    for label in classes:
        cells: list[Any] = [label]
        for name in PER_CLASS_SETS:
            row = comparison.get(name)
            if not isinstance(row, dict):
                cells.append("not run")
                continue
            before = (row.get("current_per_class") or {}).get(label)
            after = (row.get("candidate_per_class") or {}).get(label)
            cells.append("no faces" if before is None or after is None else f"{_percent(before)} -> {_percent(after)}")
        rows.append(cells)
    return rows


def _percent(value: Any) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, (int, float)) else ""


def versions_rows(listing: dict[str, Any]) -> list[list[Any]]:
    """One row per registry version: served marker, version, created, parent, accuracy, promoted, pushed."""
    current = listing.get("current")
    rows = []
    for entry in reversed(listing.get("versions", [])):
        metrics = entry.get("metrics") or {}
        accuracy = _latest_accuracy(metrics)
        rows.append(
            [
                "▶ served" if entry.get("version") == current else "",
                entry.get("version"),
                str(entry.get("created") or "")[:19],
                entry.get("parent") or "",
                _number(accuracy) if accuracy is not None else "",
                "yes" if entry.get("promoted") else "",
                str(entry.get("pushed") or ""),
            ]
        )
    return rows


def curve_figure(history: Sequence[dict[str, Any]], title: str) -> Figure | None:
    """Training loss and validation accuracy per epoch (two axes), from a run's per-epoch records."""
    records = [record for record in history if "epoch" in record]
    if not records:
        return None
    epochs = [record["epoch"] for record in records]
    figure = Figure(figsize=(5.5, 3.6), layout="constrained")
    axes = figure.add_subplot()
    if any("train_loss" in record for record in records):
        axes.plot(epochs, [record.get("train_loss", np.nan) for record in records], "o-", label="train loss")
    if any("val_loss" in record for record in records):
        axes.plot(epochs, [record.get("val_loss", np.nan) for record in records], "s--", label="val loss")
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    if any("val_accuracy" in record for record in records):
        accuracy_axes = axes.twinx()
        accuracy_axes.plot(
            epochs, [record.get("val_accuracy", np.nan) for record in records], "^-", color="tab:green", label="val acc"
        )
        accuracy_axes.set_ylabel("validation accuracy")
        accuracy_axes.set_ylim(0, 1)
        accuracy_axes.legend(loc="upper right")
    axes.legend(loc="upper left")
    axes.set_title(title)
    return figure
