"""Evaluation metrics of the paper (accuracy, precision, AUC, per-class results, size, FLOPs, latency)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
from sklearn.metrics import confusion_matrix, precision_score, recall_score, roc_auc_score
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["classification_metrics", "count_parameters", "count_flops", "cpu_latency_ms"]


def classification_metrics(probs: np.ndarray, targets: np.ndarray, labels: Sequence[str]) -> dict:
    """Accuracy, macro precision/recall, macro one-vs-rest AUC, confusion matrix and per-class accuracy.

    Per-class accuracy is the confusion-matrix row recall (the paper's Table IV); classes with no
    sample get ``None`` so an empty class never looks perfect or hopeless.
    """
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    predictions = probs.argmax(axis=1)
    class_ids = list(range(len(labels)))
    matrix = confusion_matrix(targets, predictions, labels=class_ids)
    support = matrix.sum(axis=1)
    present = [i for i in class_ids if support[i] > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        precision = precision_score(targets, predictions, labels=present, average="macro", zero_division=0)
        recall = recall_score(targets, predictions, labels=present, average="macro", zero_division=0)
    auc = None
    if len(present) >= 2:
        aucs = [roc_auc_score(targets == i, probs[:, i]) for i in present]
        auc = float(np.mean(aucs))
    per_class = {label: (float(matrix[i, i] / support[i]) if support[i] else None) for i, label in enumerate(labels)}
    return {
        "samples": int(len(targets)),
        "accuracy": float((predictions == targets).mean()) if len(targets) else 0.0,
        "macro_precision": float(precision),
        "macro_recall": float(recall),
        "macro_auc": auc,
        "per_class_accuracy": per_class,
        "confusion_matrix": matrix.tolist(),
        "labels": list(labels),
    }


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass (multiply and add counted separately) at ``input_shape``."""
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(input_shape))
    model.train(was_training)
    return int(counter.get_total_flops())


def cpu_latency_ms(model: nn.Module, input_shape: tuple[int, ...], repeats: int = 50, warmup: int = 5) -> dict:
    """Median and p95 wall time of a forward pass in eager PyTorch on the current thread settings."""
    model.eval()
    x = torch.zeros(input_shape)
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append((time.perf_counter() - start) * 1000.0)
    return {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95))}
