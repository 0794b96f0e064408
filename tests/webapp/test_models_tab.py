"""The Models tab shows every version's metrics and confusion matrix, the shipped base included; the project draws
its confusion matrices with one function (core.figures)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.classifier import shipped_weights_folder
from core.figures import confusion_figure
from tests._webapp_fixtures import LiveApp, launch
from webapp.handlers import Handlers
from webapp.models import card_metrics

os.environ.setdefault("OMP_NUM_THREADS", "1")


def test_one_confusion_figure_shades_rows_and_prints_counts(tmp_path: Path):
    figure = confusion_figure([[8, 2], [0, 5]], ["happy", "sad"], "v1: store_test")
    axes = figure.axes[0]
    assert [text.get_text() for text in axes.texts] == ["8", "2", "0", "5"]
    assert axes.get_title() == "v1: store_test" and len(figure.axes) == 2  # the matrix and its colour bar
    assert [label.get_text() for label in axes.get_xticklabels()] == ["happy", "sad"]
    figure.savefig(tmp_path / "confusion.png", dpi=60)  # no pyplot needed to write it
    assert (tmp_path / "confusion.png").stat().st_size > 1000
    assert confusion_figure(None, ["happy"], "none") is None and confusion_figure([], ["happy"], "none") is None


def test_the_shipped_student_card_gives_its_validation_metrics():
    metrics = card_metrics(shipped_weights_folder("student"))
    config = json.loads((shipped_weights_folder("student") / "config.json").read_text())
    [(name, evaluation)] = metrics["evaluations"].items()
    assert name == config["training"]["val_data"]
    assert evaluation["confusion_matrix"] == config["metrics"]["val_confusion_matrix"]
    assert evaluation["labels"] == config["labels"] and evaluation["accuracy"] == config["metrics"]["val_accuracy"]
    assert metrics["val_accuracy"] == config["metrics"]["val_accuracy"]  # the scalars stay where they were
    assert card_metrics(Path("/nonexistent")) == {}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    yield from launch(tmp_path_factory.mktemp("models"), users="")


def test_the_base_version_shows_its_metrics_and_confusion_matrix(app: LiveApp):
    base = app.services.registry.weights_folder("base", "student")
    config_file = base / "config.json"
    config = json.loads(config_file.read_text())
    labels = config["labels"]
    matrix = [[5 if row == column else 1 for column in labels] for row in labels]
    config["metrics"] = {"val_accuracy": 0.625, "val_samples": 77, "val_confusion_matrix": matrix}
    config["training"] = {**config.get("training", {}), "val_data": "FER2013Valid"}
    config_file.write_text(json.dumps(config))

    handlers = Handlers(app.services)
    listing = handlers.models(None, None)
    [entry] = [e for e in listing["versions"] if e["version"] == "base"]
    assert entry["metrics"]["evaluations"]["FER2013Valid"]["confusion_matrix"] == matrix

    rows, served, _, confusion, _ = handlers.models_view("base", None, None)
    assert any(row[1] == "base" and row[4] == "0.6250" for row in rows)
    assert "Serving **base**" in served
    assert confusion is not None and confusion.axes[0].get_title() == "base: FER2013Valid"
    assert len(confusion.axes[0].texts) == len(labels) ** 2
