"""Evaluate a model: on in-memory faces (each epoch of a run), or a weights folder on a labelled folder with the
paper's metrics plus size, FLOPs and latency (``tsnet evaluate``, ``tsnet report``)."""

from __future__ import annotations

import time

import numpy as np

from core.classifier import Classifier
from core.data import load_gray_images, read_labelled_folder
from core.metrics import classification_metrics, count_flops, count_parameters, cpu_latency_ms

from .data import Dataset

__all__ = ["evaluate_dataset", "evaluate_classifier", "format_report"]


def evaluate_dataset(classifier: Classifier, data: Dataset) -> dict:
    """The paper's metrics on in-memory faces, plus ``loss``: the mean negative log-likelihood of the true class."""
    probs = classifier.predict_gray_batch(data.images)
    truth = data.label_indices.numpy()
    metrics = classification_metrics(probs, truth, classifier.labels)
    log_probs = np.log(np.clip(probs, 1e-8, 1.0))
    metrics["loss"] = float(-log_probs[np.arange(len(probs)), truth].mean()) if len(probs) else 0.0
    return metrics


def evaluate_classifier(classifier: Classifier, data_dir: str, latency: bool = True) -> dict:
    """Metrics on ``data_dir`` (FER+ layout: majority rule; or one subfolder per class)."""
    samples = read_labelled_folder(data_dir, classifier.labels, "majority")
    images = load_gray_images(samples.paths)
    started = time.perf_counter()
    probs = classifier.predict_gray_batch(images)
    seconds = time.perf_counter() - started
    report = classification_metrics(probs, samples.label_indices, classifier.labels)
    cfg = classifier.config
    shape = (1, cfg.in_chans, cfg.input_size, cfg.input_size)
    report.update(
        data=str(data_dir),
        model=classifier.source,
        architecture=cfg.architecture,
        input_size=cfg.input_size,
        skipped=samples.skipped,
        params=count_parameters(classifier.model),
        flops=count_flops(classifier.model, shape),
        batched_ms_per_image=1000.0 * seconds / max(len(images), 1),
    )
    if latency:
        report["latency_batch1"] = cpu_latency_ms(classifier.model, shape)
    return report


def format_report(report: dict) -> str:
    labels = report["labels"]
    lines = [
        f"model      {report['model']} ({report['architecture']}, {report['input_size']} px)",
        f"data       {report['data']}: {report['samples']} faces (skipped: {report['skipped']})",
        f"accuracy   {report['accuracy']:.4f}",
        f"macro precision {report['macro_precision']:.4f}  recall {report['macro_recall']:.4f}  "
        f"AUC {report['macro_auc'] if report['macro_auc'] is None else round(report['macro_auc'], 4)}",
        f"params     {report['params'] / 1e6:.3f} M   FLOPs {report['flops'] / 1e6:.1f} M",
        f"speed      {report['batched_ms_per_image']:.3f} ms/image batched"
        + (f", {report['latency_batch1']['p50_ms']:.2f} ms at batch 1" if "latency_batch1" in report else ""),
        "per-class accuracy:",
    ]
    for label in labels:
        value = report["per_class_accuracy"][label]
        lines.append(f"  {label:<10} {'n/a' if value is None else f'{value:.4f}'}")
    width = max(len(label) for label in labels)
    lines.append("confusion matrix (rows: true, columns: predicted):")
    lines.append(" " * (width + 2) + " ".join(f"{label[:6]:>6}" for label in labels))
    for label, row in zip(labels, np.asarray(report["confusion_matrix"])):
        lines.append(f"  {label:<{width}}" + " ".join(f"{int(v):>6}" for v in row))
    return "\n".join(lines)
