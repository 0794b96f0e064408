"""Helpers for the retrain tests: tiny random-init teacher/student folders, a small store and the job's settings."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from core.classifier import Classifier, load_classifier
from labeling import AnnotationStore
from retrain.layout import DataLayout
from tests._core_fixtures import pattern_image, write_ferplus_folder
from tests._weights import write_random_weights

LABELS = ("happy", "sad", "neutral")
INPUT_SIZE = 32


def tiny_weights(folder: Path, architecture: str, seed: int) -> Path:
    """A real but untrained model saved the way shipped weights are (32 px keeps the tests fast)."""
    return write_random_weights(folder, architecture, labels=LABELS, input_size=INPUT_SIZE, seed=seed)


def fill_store(
    db: Path, per_class: int = 10, seed: int = 0, side: int = 48, labels: tuple[str, ...] = LABELS
) -> AnnotationStore:
    """Labelled ``side`` px pattern faces (split 6:2:2 by the store itself) in a real SQLite file."""
    store = AnnotationStore(db, labels=labels)
    rng = np.random.default_rng(seed)
    for index, label in enumerate(labels):
        for _ in range(per_class):
            buffer = io.BytesIO()
            pattern_image(index, rng, side).save(buffer, format="PNG")
            store.ingest(buffer.getvalue(), "generated", None, votes=[(label, "ana")])
    return store


def configure(monkeypatch: pytest.MonkeyPatch, root: Path, *, promote: bool = True) -> Path:
    """Point TSNET_HOME, the base weights, replay and benchmark data at tiny generated ones; returns the home."""
    home = root / "home"
    monkeypatch.setenv("TSNET_HOME", str(home))
    monkeypatch.setenv("TSNET_BASE_STUDENT", str(tiny_weights(root / "base-student", "shufflenet_v2", 0)))
    monkeypatch.setenv("TSNET_BASE_TEACHER", str(tiny_weights(root / "base-teacher", "eff_resnet18", 1)))
    monkeypatch.setenv("TSNET_REPLAY_DATA", str(write_ferplus_folder(root / "replay", LABELS, per_class=4, seed=5)))
    monkeypatch.setenv("TSNET_BENCHMARK_DATA", str(write_ferplus_folder(root / "bench", LABELS, per_class=4, seed=6)))
    monkeypatch.setenv("TSNET_RETRAIN_STAGES", "student")  # the fine-tune's tests; tests/retrain/jobs/test_face_head
    monkeypatch.setenv("TSNET_RETRAIN_EPOCHS", "1")
    monkeypatch.setenv("TSNET_RETRAIN_THREADS", "1")
    monkeypatch.setenv("TSNET_RETRAIN_LR", "0.002")  # random-init tiny models diverge at the recipe's 0.01
    monkeypatch.setenv("TSNET_STORE_REPEAT", "1")  # and overflow half precision when trained longer
    monkeypatch.setenv("TSNET_PUSH_RETRIES", "1")
    monkeypatch.setenv("TSNET_PUSH_BACKOFF", "0.01")
    set_rule(monkeypatch, promote)
    return home


def set_rule(monkeypatch: pytest.MonkeyPatch, promote: bool) -> None:
    """Make the promotion decision deterministic: allow any drop, or demand an impossible gain."""
    limit = "1.0" if promote else "-1.0"
    monkeypatch.setenv("TSNET_MAX_STORE_DROP", limit)
    monkeypatch.setenv("TSNET_MAX_BENCHMARK_DROP", limit)
    monkeypatch.setenv("TSNET_MIN_STORE_TEST", "1")  # a tiny store: let its few test faces vote
    monkeypatch.setenv("TSNET_MIN_STORE_GROUPS", "1")


def served_classifier(name: str) -> Classifier:
    """What the CLI and the app serve for ``name``: the promoted version, else the shipped weights."""
    return load_classifier(DataLayout.from_env().weights_folder(name))


def write_photo_table(root: Path, rows: list[dict[str, str]]) -> Path:
    """``root/labels.csv`` (path,label,subject,raters_agree) as ``../shared/data/taiwanese-dev`` lays it out."""
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "subject", "raters_agree"])
        writer.writeheader()
        writer.writerows(rows)
    return root
