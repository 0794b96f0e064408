"""The one evaluator: :func:`score` turns a model's probabilities into the paper's metrics. Over it, in-memory faces
(:func:`evaluate_dataset`: each epoch of a run, and the retrain job's candidate vs current) and a labelled folder
with size, FLOPs and latency (:func:`evaluate_classifier`: ``tsnet evaluate``, ``tsnet report``)."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from core.classifier import Classifier
from core.data import load_gray_images, read_labelled_folder
from core.metrics import classification_metrics, count_flops, count_parameters, cpu_latency_ms

from .data import Dataset

__all__ = ["score", "evaluate_dataset", "evaluate_classifier", "format_report", "class_lines"]


def score(probs: np.ndarray, truth: np.ndarray, labels: Sequence[str], per_face: bool = False) -> dict:
    """The paper's metrics (accuracy, macro precision / recall / AUC, per-class accuracy, confusion matrix), plus
    ``loss``: the mean negative log-likelihood of the true class, and with ``per_face`` also ``correct``: whether
    each face was classified right (what the retrain job's paired bootstrap resamples)."""
    truth = np.asarray(truth)
    if not np.isfinite(probs).all():
        raise ValueError("the model gives outputs that are not numbers (its weights overflowed): it cannot be judged")
    metrics = classification_metrics(probs, truth, labels)
    log_probs = np.log(np.clip(probs, 1e-8, 1.0))
    metrics["loss"] = float(-log_probs[np.arange(len(probs)), truth].mean()) if len(probs) else 0.0
    if per_face:
        metrics["correct"] = (np.asarray(probs).argmax(axis=1) == truth).astype(int).tolist()
    return metrics


def evaluate_dataset(classifier: Classifier, data: Dataset, per_face: bool = False) -> dict:
    """:func:`score` of ``classifier`` on in-memory faces."""
    return score(classifier.predict_gray_batch(data.images), data.label_indices, classifier.labels, per_face)


def evaluate_classifier(classifier: Classifier, data_dir: str, latency: bool = True) -> dict:
    """Metrics on ``data_dir`` (FER+ layout: majority rule; or one subfolder per class)."""
    samples = read_labelled_folder(data_dir, classifier.labels, "majority")
    images = load_gray_images(samples.paths)
    started = time.perf_counter()
    probs = classifier.predict_gray_batch(images)
    seconds = time.perf_counter() - started
    report = score(probs, samples.label_indices, classifier.labels)
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
    lines = [
        f"model      {report['model']} ({report['architecture']}, {report['input_size']} px)",
        f"data       {report['data']}: {report['samples']} faces (skipped: {report['skipped']})",
        f"accuracy   {report['accuracy']:.4f}",
        f"macro precision {report['macro_precision']:.4f}  recall {report['macro_recall']:.4f}  "
        f"AUC {report['macro_auc'] if report['macro_auc'] is None else round(report['macro_auc'], 4)}",
        f"params     {report['params'] / 1e6:.3f} M   FLOPs {report['flops'] / 1e6:.1f} M",
        f"speed      {report['batched_ms_per_image']:.3f} ms/image batched"
        + (f", {report['latency_batch1']['p50_ms']:.2f} ms at batch 1" if "latency_batch1" in report else ""),
    ]
    return "\n".join(lines + class_lines(report))


def class_lines(report: dict) -> list[str]:
    """Per-class accuracy and the confusion matrix of a :func:`score` report, as printed lines."""
    labels = report["labels"]
    lines = ["per-class accuracy:"]
    for label in labels:
        value = report["per_class_accuracy"][label]
        lines.append(f"  {label:<10} {'n/a' if value is None else f'{value:.4f}'}")
    width = max(len(label) for label in labels)
    lines.append("confusion matrix (rows: true, columns: predicted):")
    lines.append(" " * (width + 2) + " ".join(f"{label[:6]:>6}" for label in labels))
    for label, row in zip(labels, np.asarray(report["confusion_matrix"])):
        lines.append(f"  {label:<{width}}" + " ".join(f"{int(v):>6}" for v in row))
    return lines
