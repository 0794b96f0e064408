"""The retrain job end to end on tiny models: register, promote or reject, serve, roll back, list, publish."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.classifier import shipped_weights_folder
from core.weights import load_weights, read_config
from retrain import RetrainService
from retrain.layout import DataLayout
from retrain.registry import ModelRegistry
from tests._retrain_fixtures import LABELS, configure, fill_store, served_classifier, set_rule
from tests._weights import write_random_weights
from tests.support.hub_server import HubServer
from tsnet.cli import main

LIST_FIELDS = {"version", "created", "parent", "metrics", "promoted", "pushed"}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = configure(monkeypatch, tmp_path)
    fill_store(tmp_path / "store.db").close()
    return home


def _retrain(home: Path, *extra: str) -> int:
    return main(["retrain", "--db", str(home.parent / "store.db"), *extra])


def _listing(capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert main(["models", "list", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_promoted_version_is_registered_and_served(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _retrain(home) == 0
    table = capsys.readouterr().out
    assert "store_test" in table and "base_benchmark" in table and "version v1: promoted" in table

    registry = ModelRegistry(home)
    assert registry.current() == "v1"
    assert (
        DataLayout.from_env().weights_folder("student").resolve() == (registry.version_dir("v1") / "student").resolve()
    )
    assert served_classifier("student").version == "v1"
    assert served_classifier("teacher").version == "v1"

    record = registry.record("v1")
    assert record["parent"] == "base" and record["created"]
    store_ids = set(record["snapshot"]["splits"]["train"])
    assert len(store_ids) == 18 and len(record["snapshot"]["replay"]["files"]) == 12
    assert not store_ids & set(record["snapshot"]["splits"]["test"])
    metrics = registry.metrics("v1")
    assert len(metrics["evaluations"]["store_test"]["confusion_matrix"]) == 3
    assert [epoch["epoch"] for epoch in metrics["training_curves"]["student"]] == [1]
    assert (registry.version_dir("v1") / "student" / "README.md").is_file()

    listing = _listing(capsys)
    assert listing["current"] == "v1"
    assert [entry["version"] for entry in listing["versions"]] == ["base", "v1"]
    assert all(set(entry) == LIST_FIELDS for entry in listing["versions"])
    assert listing["versions"][1]["promoted"] is True and listing["versions"][1]["pushed"] is None


def test_rollback_and_promote_switch_the_served_model(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _retrain(home) == 0
    assert main(["models", "rollback"]) == 0
    assert _listing(capsys)["current"] == "base"
    assert DataLayout.from_env().weights_folder("student") == shipped_weights_folder(
        "student"
    )  # the shipped default again
    with pytest.raises(ValueError, match="nothing to roll back"):
        ModelRegistry(home).rollback()

    assert main(["models", "promote", "v1"]) == 0
    assert served_classifier("student").version == "v1"
    assert main(["models", "promote", "v9"]) == 2  # unknown version: a clear error, nothing switched
    assert ModelRegistry(home).current() == "v1"


def test_regressing_candidate_is_registered_but_not_promoted(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_rule(monkeypatch, promote=False)
    monkeypatch.setenv("TSNET_RETRAIN_STAGES", "teacher+student")  # the optional teacher stage runs and is recorded
    assert _retrain(home) == 0
    assert "version v1: not promoted" in capsys.readouterr().out

    service = RetrainService()
    job = service.status()
    assert job is not None and job.state == "succeeded" and job.promoted is False and job.version == "v1"
    assert set(job.comparison) == {"store_test", "base_benchmark"}
    assert job.comparison["store_test"]["passed"] is False
    assert job.decision[0].startswith("rejected") and "regressed" in " ".join(job.decision)
    assert [event["stage"] for event in job.events if event["epoch"]] == ["teacher", "student"]
    assert service.registry.current() == "base"
    assert service.registry.record("v1")["decision"]["promote"] is False
    assert DataLayout.from_env().weights_folder("student") == shipped_weights_folder("student")


def test_promoted_version_is_pushed_with_card_and_message(
    home: Path, hub_server: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", hub_server.token)
    repo = f"{hub_server.username}/tsnet-fer"
    assert _retrain(home, "--push", repo) == 0

    job = RetrainService().status()
    assert job is not None and job.push is not None and job.push.startswith("pushed http")
    assert hub_server.commits(repo)[0].title.startswith("T-SNet Studio v1")
    files = hub_server.repo_files(repo)
    assert {"README.md", "config.json", "model.safetensors", "metrics.json", "teacher/config.json"} <= set(files)
    assert "store_test_accuracy" in hub_server.read_file(repo, "README.md").decode()
    assert ModelRegistry(home).list()["versions"][1]["pushed"].startswith("http")


def test_hub_down_leaves_pending_push_that_a_later_run_pushes(
    home: Path, hub_server: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", hub_server.token)
    monkeypatch.setenv("TSNET_HUB_REPO", f"{hub_server.username}/tsnet-fer")
    hub_server.stop()
    assert _retrain(home) == 0
    assert RetrainService().status().push == "pending push"
    assert ModelRegistry(home).record("v1")["pushed"] == "pending push"
    assert ModelRegistry(home).current() == "v1"  # the Hub being down does not block promotion

    hub_server.start()
    set_rule(monkeypatch, promote=False)  # the later run's own candidate is rejected; the pending push still goes
    assert _retrain(home) == 0
    titles = [commit.title for commit in hub_server.commits(f"{hub_server.username}/tsnet-fer")]
    assert titles[0].startswith("T-SNet Studio v1")
    assert ModelRegistry(home).record("v1")["pushed"].startswith("http")
    assert ModelRegistry(home).record("v2")["pushed"] is None


def test_without_ferplus_the_job_says_what_it_did_without_everywhere(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TSNET_REPLAY_DATA", "")
    monkeypatch.setenv("TSNET_BENCHMARK_DATA", "")
    assert _retrain(home) == 0
    out = capsys.readouterr().out
    assert "no regression" not in out

    job = RetrainService().status()
    assert set(job.comparison) == {"store_test"}
    assert any("no replay data" in warning for warning in job.warnings)
    assert any("benchmark not run" in warning for warning in job.warnings)
    assert "the benchmark was not run" in job.decision[0] or job.decision[0].startswith("rejected")
    assert all(warning in job.decision for warning in job.warnings)  # the decision carries them too

    registry = ModelRegistry(home)
    assert registry.record("v1")["warnings"] == job.warnings
    card = (registry.version_dir("v1") / "student" / "README.md").read_text()
    assert "benchmark not run" in card and "no replay data" in card
    assert registry.record("v1")["snapshot"]["replay"]["files"] == []


def test_the_candidate_is_shrunk_on_the_benchmark_or_on_faces_outside_the_replay_sample(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _retrain(home) == 0
    shrink = ModelRegistry(home).metrics("v1")["shrink"]
    assert shrink["probe"] == "the benchmark" and shrink["probe_faces"] == 12 and 0 <= shrink["fraction"] <= 1

    monkeypatch.setenv("TSNET_BENCHMARK_DATA", "")
    monkeypatch.setenv("TSNET_REPLAY_SIZE", "6")  # of the 12 replay-folder faces: 6 rehearsed, 6 left to probe
    assert _retrain(home) == 0
    shrink = ModelRegistry(home).metrics("v2")["shrink"]
    assert shrink["probe"].startswith("FER+ training faces outside") and shrink["probe_faces"] == 6


def test_logit_adjustment_photo_augmentation_the_anchor_and_mixup_reach_the_retrained_student(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TSNET_RETRAIN_MIXUP", "0.4")
    monkeypatch.setenv("TSNET_RETRAIN_LOGIT_ADJUST", "0.5")
    monkeypatch.setenv("TSNET_RETRAIN_PHOTO_AUGMENT", "1")
    monkeypatch.setenv("TSNET_RETRAIN_ANCHOR", "0.1")
    monkeypatch.setenv("TSNET_RETRAIN_SHRINK", "0")
    assert _retrain(home) == 0
    made_with = read_config(ModelRegistry(home).weights_folder("v1", "student")).training
    assert made_with["logit_adjust"] == 0.5 and made_with["photo_augment"] is True
    assert made_with["anchor_weight"] == 0.1 and made_with["mixup"] == 0.4


@pytest.mark.parametrize("side, sharp, face_size", [(96, "1", 64), (48, "1", 48), (96, "0", 48)])
def test_photo_faces_are_learnt_as_sharp_as_the_retrained_student_reads_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: int, sharp: str, face_size: int
) -> None:
    home = configure(monkeypatch, tmp_path)
    base = write_random_weights(tmp_path / "base-64px", "shufflenet_v2", labels=LABELS, input_size=64, seed=0)
    monkeypatch.setenv("TSNET_BASE_STUDENT", str(base))
    monkeypatch.setenv("TSNET_RETRAIN_SHARP_FACES", sharp)
    fill_store(tmp_path / "store.db", side=side).close()  # 96 px: a photo's face as the store keeps it
    assert _retrain(home) == 0
    retrained = read_config(ModelRegistry(home).weights_folder("v1", "student"))
    assert retrained.input_size == 64 and retrained.face_size == face_size


def test_trainable_fine_tunes_only_the_named_modules_of_the_served_student(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TSNET_RETRAIN_TRAINABLE", "conv5, fc")
    monkeypatch.setenv("TSNET_RETRAIN_SHRINK", "0")
    assert _retrain(home) == 0
    before = load_weights(home.parent / "base-student")[0].state_dict()
    after = load_weights(ModelRegistry(home).weights_folder("v1", "student"))[0].state_dict()
    frozen = [key for key in before if key.startswith(("conv1", "stage"))]
    changed = [key for key in frozen if not before[key].half().equal(after[key].half())]
    assert frozen and not changed, changed  # weights saved as half
    assert not before["fc.1.weight"].half().equal(after["fc.1.weight"].half())

    monkeypatch.setenv("TSNET_RETRAIN_TRAINABLE", "head")
    capsys.readouterr()
    assert _retrain(home) != 0
    printed = capsys.readouterr()
    assert "does not have" in printed.out + printed.err
