"""``tsnet retrain --bench``: people split by subject, the store's people imported like ``tsnet label import``,
one job, and the unseen people scored through the photo pipeline; tiny generated photos and random models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance

from core.faces.canvas import ASTRONAUT_FACE_BOX
from tests._retrain_fixtures import LABELS, configure, write_photo_table
from tsnet.cli import main


def _domain_folder(root: Path, people: int = 6) -> Path:
    """Astronaut photos standing in for people: each person's shots share a brightness, each label a crop."""
    from skimage import data

    astronaut = Image.fromarray(data.astronaut())
    left, top, right, bottom = ASTRONAUT_FACE_BOX
    rows = []
    for person in range(people):
        for index, label in enumerate(LABELS):
            for shot in range(2):
                margin = 60 + 10 * index + 3 * shot
                photo = astronaut.crop((left - margin, top - margin, right + margin, bottom + margin))
                photo = ImageEnhance.Brightness(photo).enhance(0.7 + 0.1 * person)
                path = Path(label) / f"P{person}-{shot}.jpg"
                (root / label).mkdir(parents=True, exist_ok=True)
                photo.save(root / path, quality=90)
                rows.append({"path": str(path), "label": label, "subject": f"P{person}", "raters_agree": "1"})
    return write_photo_table(root, rows)


def test_bench_reports_unseen_people_and_the_benchmark_before_and_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(monkeypatch, tmp_path)
    folder = _domain_folder(tmp_path / "photos")
    report = tmp_path / "bench.json"
    code = main(
        [
            "retrain",
            "--bench",
            "--bench-data",
            str(folder),
            "--bench-store-people",
            "3",
            "--json",
            "--bench-json",
            str(report),
        ]
    )
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and printed == json.loads(report.read_text())
    assert len(printed["store_people"]) == 3 and len(printed["unseen_people"]) == 3
    assert not set(printed["store_people"]) & set(printed["unseen_people"])
    assert printed["imported"]["photos"] == 3 * len(LABELS) * 2 and printed["imported"]["faces"] > 0
    assert printed["unseen_photos"] == 3 * len(LABELS) * 2
    assert printed["state"] == "succeeded" and printed["job_seconds"] > 0
    assert printed["machine"]["cpu"] and printed["machine"]["torch_threads"] >= 1  # figures name their machine
    for name in ("unseen_before", "unseen_after", "benchmark_before", "benchmark_after"):
        assert 0.0 <= printed[name] <= 1.0
    assert printed["benchmark_measured_by"] == "the job"
    assert isinstance(printed["promoted"], bool) and printed["decision"]
    assert not (tmp_path / "home" / "annotations.db").exists()  # the scenario ran in a scratch data folder


def test_bench_without_benchmark_data_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(monkeypatch, tmp_path)
    monkeypatch.setenv("TSNET_REPLAY_DATA", "")
    monkeypatch.setenv("TSNET_BENCHMARK_DATA", "")
    monkeypatch.setattr("retrain.jobs.domain_bench.DEFAULT_SHARED_FERPLUS", tmp_path / "no-ferplus")
    folder = _domain_folder(tmp_path / "photos", people=4)
    assert main(["retrain", "--bench", "--bench-data", str(folder), "--bench-store-people", "2"]) == 0
    out = capsys.readouterr().out
    assert "unseen people (photo pipeline):" in out and "torch threads" in out
    assert "benchmark FER2013Valid: not measured" in out
    assert "benchmark not run" in out and "no replay data" in out
    assert "no regression" not in out


def test_bench_refuses_a_folder_without_subjects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "photos").mkdir()
    assert main(["retrain", "--bench", "--bench-data", str(tmp_path / "photos")]) == 2
    assert "labels.csv" in capsys.readouterr().err


def test_bench_over_seeds_runs_each_job_on_one_import_and_reports_the_spread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(monkeypatch, tmp_path)
    monkeypatch.setenv("TSNET_RETRAIN_SEED", "4")
    folder = _domain_folder(tmp_path / "photos", people=4)
    arguments = ["retrain", "--bench", "--bench-data", str(folder), "--bench-store-people", "2", "--bench-seeds", "2"]
    assert main([*arguments, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    first, second = printed["runs"]
    assert [first["recipe"]["seed"], second["recipe"]["seed"]] == [4, 5] == printed["summary"]["seeds"]
    assert first["store_people"] == second["store_people"] and first["imported"] == second["imported"]
    assert first["state"] == second["state"] == "succeeded"
    summary = printed["summary"]
    after = summary["unseen_after"]
    assert after["runs"] == 2 and after["min"] <= after["mean"] <= after["max"]
    assert {after["min"], after["max"]} == {first["unseen_after"], second["unseen_after"]}
    assert summary["promoted"] == first["promoted"] + second["promoted"] and summary["succeeded"] == 2
    assert summary["machine"] == first["machine"]

    assert main(arguments) == 0
    out = capsys.readouterr().out
    assert "seed 4:" in out and "seed 5:" in out
    assert "over seeds 4, 5 (TSNET_RETRAIN_SEED):" in out and "promoted:" in out and " of 2 " in out


def test_bench_refuses_zero_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(monkeypatch, tmp_path)
    folder = _domain_folder(tmp_path / "photos", people=2)
    assert (
        main(["retrain", "--bench", "--bench-data", str(folder), "--bench-store-people", "1", "--bench-seeds", "0"])
        == 2
    )
    assert "--bench-seeds must be 1 or more" in capsys.readouterr().err
