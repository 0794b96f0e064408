"""retrain.hub.transport against the Hub stand-in: one commit per push, retries, clear failures, no token leaks."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from core.weights import ModelConfig
from retrain.hub.transport import PublishError, PushResult, pull_folder, push_folder
from retrain.registry.model_card import render_model_card, write_model_card
from tests.support.hub_server import HubServer

FAST = {"backoff": 0.01}


def _weights_folder(root: Path, *, big: bool = False) -> Path:
    folder = root / "weights"
    folder.mkdir(parents=True, exist_ok=True)
    config = ModelConfig(
        architecture="shufflenet_v2",
        labels=["neutral", "happy", "sad"],
        metrics={"accuracy": 0.8125, "macro_f1": 0.79, "confusion": [[1, 0], [0, 1]]},
    )
    (folder / "config.json").write_text(json.dumps(asdict(config), indent=2))
    (folder / "model.safetensors").write_bytes(os.urandom(12 * 1024 * 1024 if big else 4096))
    return folder


def test_push_folder_creates_repo_and_commits_with_message(hub_server: HubServer, tmp_path: Path) -> None:
    folder = _weights_folder(tmp_path, big=True)
    repo_id = f"{hub_server.username}/fer-student"
    assert not hub_server.repo_exists(repo_id)

    result = push_folder(folder, repo_id, commit_message="Student v1: acc 0.81", token=hub_server.token, **FAST)

    assert isinstance(result, PushResult) and str(result) == result.commit_url
    assert hub_server.repo_exists(repo_id)
    assert hub_server.repo_files(repo_id) == [".gitattributes", "config.json", "model.safetensors"]
    assert [commit.title for commit in hub_server.commits(repo_id)] == ["Student v1: acc 0.81", "initial commit"]
    assert result.commit_oid == hub_server.commits(repo_id)[0].oid
    assert hub_server.read_file(repo_id, "model.safetensors") == (folder / "model.safetensors").read_bytes()

    (folder / "config.json").write_text("{}")
    second = push_folder(folder, repo_id, commit_message="Student v2", token=hub_server.token, **FAST)
    assert [commit.oid for commit in hub_server.commits(repo_id)][:2] == [second.commit_oid, result.commit_oid]


def test_push_folder_retries_through_injected_503s(
    hub_server: HubServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _weights_folder(tmp_path)
    repo_id = f"{hub_server.username}/flaky"
    hub_server.fail_next(2, status=503, path_contains="/api/repos/create")
    hub_server.fail_next(1, status=502, path_contains="/commit/main")  # the client itself never retries a commit

    with caplog.at_level(logging.WARNING, logger="retrain.hub.transport"):
        push_folder(folder, repo_id, commit_message="after retries", token=hub_server.token, retries=4, **FAST)

    creates = [status for _, _, status in hub_server.requests_matching("/api/repos/create")]
    assert creates[:2] == [503, 503] and creates[2] == 200
    assert [status for _, _, status in hub_server.requests_matching("/commit/main")] == [502, 200]
    # exactly one commit landed: the failed one was not applied
    assert [commit.title for commit in hub_server.commits(repo_id)] == ["after retries", "initial commit"]
    assert "attempt 1/5" in caplog.text and "attempt 3/5" in caplog.text


def test_push_folder_raises_publish_error_when_hub_is_down(hub_server: HubServer, tmp_path: Path) -> None:
    folder = _weights_folder(tmp_path)
    hub_server.stop()
    with pytest.raises(PublishError, match=r"after 3 attempt\(s\)"):
        push_folder(folder, "tsnet-tester/offline", commit_message="m", token=hub_server.token, retries=2, **FAST)


def test_push_folder_gives_up_after_persistent_5xx(hub_server: HubServer, tmp_path: Path) -> None:
    hub_server.fail_next(10, status=500, path_contains="/api/repos/create")
    with pytest.raises(PublishError, match="HTTP 500"):
        folder = _weights_folder(tmp_path)
        push_folder(folder, "tsnet-tester/broken", commit_message="m", token=hub_server.token, retries=1, **FAST)
    assert len(hub_server.requests_matching("/api/repos/create")) == 2


def test_rejected_token_fails_fast_without_retries(hub_server: HubServer, tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="HTTP 401.*token"):
        push_folder(_weights_folder(tmp_path), "tsnet-tester/x", commit_message="m", token="hf_wrong", retries=3)
    assert len(hub_server.requests_matching("/api/repos/create")) == 1


def test_missing_token_is_a_clear_error(hub_server: HubServer, tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="HF_TOKEN"):
        push_folder(_weights_folder(tmp_path), "tsnet-tester/x", commit_message="m")
    assert hub_server.requests == []


def test_token_from_env_is_used_and_never_printed(
    hub_server: HubServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from huggingface_hub.utils import logging as hf_logging

    monkeypatch.setenv("HF_TOKEN", hub_server.token)
    monkeypatch.setattr(hf_logging.get_logger(), "propagate", True)
    folder = _weights_folder(tmp_path)
    with caplog.at_level(logging.DEBUG):
        push_folder(folder, "tsnet-tester/env-token", commit_message="from env", retries=1, **FAST)
        hub_server.fail_next(1, status=503, path_contains="/api/repos/create")
        push_folder(folder, "tsnet-tester/env-token", commit_message="again", retries=1, **FAST)
        hub_server.stop()
        with pytest.raises(PublishError) as failure:
            push_folder(folder, "tsnet-tester/env-token", commit_message="down", retries=1, **FAST)

    assert [commit.title for commit in hub_server.commits("tsnet-tester/env-token")][:2] == ["again", "from env"]
    captured = capsys.readouterr()
    assert caplog.records, "expected some log output to check"
    for text in (caplog.text, captured.out, captured.err, str(failure.value), repr(failure.value)):
        assert hub_server.token not in text


def test_pull_folder_round_trip(hub_server: HubServer, tmp_path: Path) -> None:
    folder = _weights_folder(tmp_path, big=True)
    repo_id = "tsnet-tester/pull-me"
    first = push_folder(folder, repo_id, commit_message="v1", token=hub_server.token, **FAST)
    original = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(b"v2 weights")
    push_folder(folder, repo_id, commit_message="v2", token=hub_server.token, **FAST)

    latest = pull_folder(repo_id, tmp_path / "latest", **FAST)  # public repo: no token needed
    assert (latest / "model.safetensors").read_bytes() == b"v2 weights"
    assert json.loads((latest / "config.json").read_text())["architecture"] == "shufflenet_v2"
    pinned = pull_folder(repo_id, tmp_path / "pinned", revision=first.commit_oid, token=hub_server.token, **FAST)
    assert (pinned / "model.safetensors").read_bytes() == original

    hub_server.stop()
    with pytest.raises(PublishError, match="Pulling"):
        pull_folder(repo_id, tmp_path / "down", retries=1, **FAST)


def test_model_card_metadata_and_metrics_table(hub_server: HubServer, tmp_path: Path) -> None:
    folder = _weights_folder(tmp_path)
    card_path = write_model_card(folder, repo_id="tsnet-tester/carded", metrics={"accuracy": 0.8125, "top2": 0.95})
    text = card_path.read_text()
    assert text.startswith("---\n") and "pipeline_tag: image-classification" in text
    assert "| accuracy | 0.8125 |" in text and "| top2 | 0.9500 |" in text
    assert "neutral, happy, sad" in text

    push_folder(folder, "tsnet-tester/carded", commit_message="with card", token=hub_server.token, **FAST)
    info = HfApi().model_info("tsnet-tester/carded")
    assert info.pipeline_tag == "image-classification"
    assert info.card_data.library_name == "pytorch"
    assert info.card_data.metrics == ["accuracy", "top2"]
    assert "shufflenet_v2" in info.card_data.tags


def test_model_card_defaults_to_config_metrics(tmp_path: Path) -> None:
    text = render_model_card(_weights_folder(tmp_path))
    assert "| accuracy | 0.8125 |" in text and "| macro_f1 | 0.7900 |" in text
    assert "confusion" not in text  # non-scalar metrics stay in config.json


def test_push_space_bundle(hub_server: HubServer, tmp_path: Path) -> None:
    bundle = tmp_path / "space"
    bundle.mkdir()
    (bundle / "app.py").write_text("print('demo')\n")
    (bundle / "README.md").write_text("---\ntitle: FER demo\nsdk: gradio\napp_file: app.py\n---\n")
    result = push_folder(
        bundle, "tsnet-tester/fer-demo", repo_type="space", commit_message="Deploy", token=hub_server.token, **FAST
    )
    assert result.repo_type == "space" and "/spaces/" in result.commit_url
    assert hub_server.repo_files("tsnet-tester/fer-demo", repo_type="space") == [
        ".gitattributes",
        "README.md",
        "app.py",
    ]
