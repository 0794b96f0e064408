"""``tsnet label``: import, stats --json, export, and help text for every subcommand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import load_from_disk

from tests._labeling_fixtures import jpeg_bytes
from tsnet.cli import main


@pytest.fixture
def faces(tmp_path: Path) -> Path:
    for n, label in enumerate(["happiness"] * 5 + ["anger"] * 5):
        (tmp_path / "faces" / label).mkdir(parents=True, exist_ok=True)
        (tmp_path / "faces" / label / f"{n}.jpg").write_bytes(jpeg_bytes(n))
    return tmp_path / "faces"


@pytest.mark.parametrize("command", [[], ["import"], ["stats"], ["export"], ["bench"]])
def test_every_label_subcommand_has_help(command: list[str], capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exit_info:
        main(["label", *command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: tsnet label" in capsys.readouterr().out


def test_import_then_stats_json(faces: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    db = tmp_path / "cli.db"
    assert main(["label", "import", str(faces), "--db", str(db), "--labels-from-folders", "--annotator", "kim"]) == 0
    assert "added 10" in capsys.readouterr().out
    assert main(["label", "stats", "--db", str(db), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert set(stats["counts"]) == {"train", "validation", "test"}
    assert sum(row["happy"] for row in stats["counts"].values()) == 5
    assert sum(row["angry"] for row in stats["counts"].values()) == 5
    assert stats["annotators"]["kim"]["events"] == 10


def test_default_database_lives_in_tsnet_home(
    faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    monkeypatch.setenv("TSNET_HOME", str(tmp_path / "home"))
    assert main(["label", "import", str(faces)]) == 0
    assert (tmp_path / "home" / "annotations.db").is_file()
    assert f"annotation database {(tmp_path / 'home' / 'annotations.db').resolve()}" in capsys.readouterr().err


def test_stats_json_names_the_database_on_stderr_only(tmp_path: Path, capsys: pytest.CaptureFixture):
    db = tmp_path / "fresh.db"
    assert main(["label", "stats", "--db", str(db), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["images"] == 0
    assert str(db.resolve()) in captured.err


def test_import_reports_bad_files_and_exits_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "bad.png").write_bytes(b"nope")
    (tmp_path / "in" / "good.jpg").write_bytes(jpeg_bytes(1))
    assert main(["label", "import", str(tmp_path / "in"), "--db", str(tmp_path / "x.db")]) == 1
    captured = capsys.readouterr()
    assert "added 1" in captured.out and "bad.png" in captured.err


def test_export_to_disk_and_as_folder(faces: Path, tmp_path: Path):
    db = str(tmp_path / "cli.db")
    main(["label", "import", str(faces), "--db", db, "--labels-from-folders"])
    assert main(["label", "export", "--to", str(tmp_path / "hf"), "--db", db]) == 0
    assert sum(len(split) for split in load_from_disk(str(tmp_path / "hf")).values()) == 10
    assert main(["label", "export", "--to", str(tmp_path / "plain"), "--format", "folder", "--db", db]) == 0
    assert len(list((tmp_path / "plain").rglob("*.png"))) == 10


def test_export_needs_exactly_one_target(tmp_path: Path):
    with pytest.raises(SystemExit):
        main(["label", "export", "--db", str(tmp_path / "x.db")])
    with pytest.raises(SystemExit):
        main(["label", "export", "--to", "a", "--push", "me/b"])


def test_stats_on_a_new_database_reports_nothing_yet(tmp_path: Path, capsys: pytest.CaptureFixture):
    assert main(["label", "stats", "--db", str(tmp_path / "fresh.db")]) == 0
    assert "0 images" in capsys.readouterr().out
