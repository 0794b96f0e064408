"""Photo folders scored through the photo pipeline (detect, align, classify): ``tsnet evaluate --photos`` and a run's
per-epoch ``--photo-val``; a photo whose face is not found counts as wrong, as it would for a user."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core import load_classifier
from core.faces.canvas import ASTRONAUT_FACE_BOX
from retrain.training import TrainConfig, run_training
from retrain.training.photos import evaluate_photos, load_photo_set
from tests._core_fixtures import tiny_training_settings, write_ferplus_folder
from tests._retrain_fixtures import LABELS, tiny_weights, write_photo_table


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two astronaut photos labelled happy, one face-free photo labelled sad, one the raters disagreed on and one
    of a class the models do not know."""
    from skimage import data

    root = tmp_path_factory.mktemp("photos")
    astronaut = Image.fromarray(data.astronaut())
    left, top, right, bottom = ASTRONAUT_FACE_BOX
    rows = []
    for index, (label, agree) in enumerate([("happy", "1"), ("happy", "1"), ("neutral", "0"), ("fear", "1")]):
        margin = 50 + 20 * index
        path = Path(label) / f"S0{index}.jpg"
        (root / label).mkdir(exist_ok=True)
        astronaut.crop((left - margin, top - margin, right + margin, bottom + margin)).save(root / path)
        rows.append({"path": str(path), "label": label, "subject": f"S0{index}", "raters_agree": agree})
    (root / "sad").mkdir()
    Image.fromarray(np.full((240, 200, 3), 128, dtype=np.uint8)).save(root / "sad" / "wall.jpg")
    rows.append({"path": "sad/wall.jpg", "label": "sad", "subject": "S09", "raters_agree": "1"})
    return write_photo_table(root, rows)


def test_only_agreed_photos_of_known_classes_are_scored_and_a_missed_face_counts_wrong(
    photo_folder: Path, tmp_path: Path
) -> None:
    photos = load_photo_set(photo_folder, list(LABELS))
    assert (photos.photos, photos.no_face, tuple(photos.images.shape)) == (3, 1, (2, 1, 96, 96))
    classifier = load_classifier(tiny_weights(tmp_path / "model", "shufflenet_v2", seed=0))
    report = evaluate_photos(classifier, photos)
    right = round(report["found_accuracy"] * 2)
    assert report["accuracy"] == pytest.approx(right / 3)  # the face-free photo is never right
    assert report["photos"] == 3 and report["no_face"] == 1


def test_evaluate_photos_from_the_command_line(photo_folder: Path, tmp_path: Path) -> None:
    model = tiny_weights(tmp_path / "model", "shufflenet_v2", seed=1)
    out = tmp_path / "report.json"
    command = ["evaluate", "--photos", "--data", str(photo_folder), "--model", str(model), "--json", str(out)]
    result = subprocess.run([sys.executable, "-m", "tsnet", *command], check=True, capture_output=True, text=True)
    assert "3 photos, face found in 2" in result.stdout and "confusion matrix" in result.stdout
    report = json.loads(out.read_text())
    assert (report["photos"], report["no_face"]) == (3, 1)
    assert set(report["per_class_accuracy"]) == set(LABELS)


def test_a_run_scores_its_photos_each_epoch_and_selects_on_both(photo_folder: Path, tmp_path: Path) -> None:
    config = TrainConfig(
        architecture="shufflenet_v2",
        out=str(tmp_path / "run"),
        epochs=2,
        logit_adjust=1.0,
        photo_augment=True,
        photo_val=str(photo_folder),
        **tiny_training_settings(tmp_path, LABELS, train_per_class=24, val_per_class=6),
    )
    best = run_training(config, log=lambda *_: None)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    for record in records:
        assert 0.0 <= record["photo_accuracy"] <= 2 / 3  # at most the two found faces are right
        assert record["selection_score"] == pytest.approx((record["val_accuracy"] + record["photo_accuracy"]) / 2)
    chosen = max(records, key=lambda r: r["selection_score"])
    saved = json.loads((best / "config.json").read_text())["training"]
    assert saved["best_epoch"] == chosen["epoch"] and saved["photo_accuracy"] == chosen["photo_accuracy"]
    assert saved["logit_adjust"] == 1.0 and saved["photo_augment"] is True
    assert load_classifier(best).labels == LABELS


def test_report_photos_writes_a_kept_cross_dataset_section(photo_folder: Path, tmp_path: Path) -> None:
    val = write_ferplus_folder(tmp_path / "val", LABELS, 4, seed=2)
    first = tiny_weights(tmp_path / "a", "shufflenet_v2", seed=3)
    second = tiny_weights(tmp_path / "b", "eff_resnet18", seed=4)
    out = tmp_path / "docs"
    out.mkdir()
    (out / "RESULTS.md").write_text("# Results\n\n## Table II\n\nkept text\n")
    command = ["report", "--valid", str(val), "--photos", str(photo_folder), "--out", str(out)]
    command += ["--model", f"small={first}", "--model", f"large={second}"]
    for _ in range(2):  # a second run replaces its section, not appends another
        subprocess.run([sys.executable, "-m", "tsnet", *command], check=True, capture_output=True, text=True)
    text = (out / "RESULTS.md").read_text()
    assert "kept text" in text and text.count("## Cross-dataset") == 1
    assert "| small |" in text and "| large |" in text
    figures = json.loads((out / "cross_dataset.json").read_text())
    assert set(figures["models"]) == {"small", "large"}
    assert figures["models"]["small"]["photos"]["photos"] == 3
    assert figures["models"]["small"]["valid"]["samples"] == 12


def test_regenerating_the_fer_tables_keeps_the_cross_dataset_section(tmp_path: Path) -> None:
    from retrain.training import write_report
    from retrain.training.cross_dataset import SECTION_END, SECTION_START

    section = f"{SECTION_START}\n## Cross-dataset: measured earlier\n\n| a | b |\n{SECTION_END}"
    (tmp_path / "RESULTS.md").write_text(f"# Old\n\n{section}\n")
    write_report({}, tmp_path, "FER2013Valid", "tsnet report ...")
    text = (tmp_path / "RESULTS.md").read_text()
    assert "# Old" not in text and section in text and "## Table II" in text


def test_a_listed_photo_that_cannot_be_read_is_named(photo_folder: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    (broken / "happy").mkdir(parents=True)
    (broken / "happy" / "cut.jpg").write_bytes((photo_folder / "happy" / "S00.jpg").read_bytes()[:200])
    write_photo_table(broken, [{"path": "happy/cut.jpg", "label": "happy", "subject": "S1", "raters_agree": "1"}])
    with pytest.raises(ValueError, match="cut.jpg, which cannot be read as a photo"):
        load_photo_set(broken, list(LABELS))
