"""The Hub stand-in works with the real ``huggingface_hub`` and ``datasets`` clients (no mocks of either)."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError
from PIL import Image

from tests.support.hub_server import HubServer

BIG = 12 * 1024 * 1024  # above the Hub's 10 MB LFS threshold


def _folder(root: Path) -> tuple[Path, bytes]:
    folder = root / "upload"
    (folder / "nested").mkdir(parents=True)
    (folder / "config.json").write_text('{"architecture": "shufflenet_v2"}\n')
    (folder / "nested" / "notes.txt").write_text("small text file\n")
    big = os.urandom(BIG)
    (folder / "blob.dat").write_bytes(big)  # no .gitattributes rule: LFS only because of its size
    return folder, big


def test_whoami_checks_the_token(hub_server: HubServer) -> None:
    assert HfApi(token=hub_server.token).whoami()["name"] == hub_server.username
    with pytest.raises(HfHubHTTPError) as wrong:
        HfApi(token="hf_wrong").whoami()
    assert wrong.value.response.status_code == 401
    with pytest.raises(urllib.error.HTTPError) as missing:  # the client refuses to call whoami without a token
        urllib.request.urlopen(f"{hub_server.endpoint}/api/whoami-v2", timeout=10)
    assert missing.value.code == 401
    with pytest.raises(HfHubHTTPError) as anonymous:
        HfApi(token=False).create_repo("anonymous")
    assert anonymous.value.response.status_code == 401


def test_clients_point_at_the_stand_in(hub_server: HubServer) -> None:
    import datasets.config
    from huggingface_hub import constants

    assert constants.ENDPOINT == hub_server.endpoint
    assert datasets.config.HF_ENDPOINT == hub_server.endpoint
    assert os.environ["HF_ENDPOINT"] == hub_server.endpoint
    assert constants.HF_HUB_DISABLE_XET


def test_upload_folder_small_and_lfs_files_round_trip(hub_server: HubServer, tmp_path: Path) -> None:
    api = HfApi(token=hub_server.token)
    repo_id = api.create_repo("roundtrip").repo_id
    assert api.create_repo("roundtrip", exist_ok=True).repo_id == repo_id
    folder, big = _folder(tmp_path)

    info = api.upload_folder(folder_path=folder, repo_id=repo_id, commit_message="Add weights v1")

    assert info.commit_url.startswith(hub_server.endpoint)
    expected = [".gitattributes", "blob.dat", "config.json", "nested/notes.txt"]
    assert sorted(api.list_repo_files(repo_id)) == expected
    assert hub_server.repo_files(repo_id) == expected
    assert hub_server.file_is_lfs(repo_id, "blob.dat") and not hub_server.file_is_lfs(repo_id, "config.json")
    # the LFS protocol really ran: batch, upload to the CDN, verify
    assert [method for method, _, _ in hub_server.requests_matching("/info/lfs/objects/")] == ["POST", "POST"]
    assert hub_server.requests_matching("/lfs-upload/")

    commits = api.list_repo_commits(repo_id)
    assert [commit.title for commit in commits] == ["Add weights v1", "initial commit"]
    assert commits[0].commit_id == info.oid == hub_server.commits(repo_id)[0].oid

    downloaded = hf_hub_download(repo_id, "blob.dat")
    assert hashlib.sha256(Path(downloaded).read_bytes()).digest() == hashlib.sha256(big).digest()
    snapshot = Path(snapshot_download(repo_id, local_dir=tmp_path / "snapshot"))
    assert (snapshot / "blob.dat").read_bytes() == big
    assert (snapshot / "nested" / "notes.txt").read_text() == "small text file\n"

    model = api.model_info(repo_id, files_metadata=True)
    lfs = {sibling.rfilename: sibling.lfs for sibling in model.siblings}
    assert model.sha == info.oid and lfs["blob.dat"].size == BIG and lfs["config.json"] is None
    tree = {entry.path: entry for entry in api.list_repo_tree(repo_id, recursive=True)}
    assert set(tree) == {*expected, "nested"}
    paths = api.get_paths_info(repo_id, ["config.json", "nested", "missing.txt"])
    assert [entry.path for entry in paths] == ["config.json", "nested"]


def test_upload_file_create_commit_and_errors(hub_server: HubServer, tmp_path: Path) -> None:
    api = HfApi(token=hub_server.token)
    repo_id = api.create_repo("single").repo_id
    api.upload_file(path_or_fileobj=b"v1", path_in_repo="a.txt", repo_id=repo_id, commit_message="one")
    api.upload_file(path_or_fileobj=b"v2", path_in_repo="a.txt", repo_id=repo_id, commit_message="two")
    first = api.list_repo_commits(repo_id)[1].commit_id

    assert Path(hf_hub_download(repo_id, "a.txt")).read_bytes() == b"v2"
    assert Path(hf_hub_download(repo_id, "a.txt", revision=first, cache_dir=tmp_path / "c")).read_bytes() == b"v1"
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "nope.txt")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("tsnet-tester/does-not-exist")
    with pytest.raises(HfHubHTTPError) as denied:
        HfApi(token=hub_server.read_token).upload_file(path_or_fileobj=b"x", path_in_repo="b.txt", repo_id=repo_id)
    assert denied.value.response.status_code == 403


def test_dataset_push_to_hub_and_load_dataset_round_trip(hub_server: HubServer) -> None:
    from datasets import ClassLabel, Dataset, DatasetDict, Features, load_dataset
    from datasets import Image as ImageFeature

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8), mode="L") for _ in range(6)]
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=["neutral", "happy", "sad"])})
    dataset = DatasetDict(
        {
            "train": Dataset.from_dict({"image": images[:4], "label": [0, 1, 2, 1]}, features=features),
            "test": Dataset.from_dict({"image": images[4:], "label": [2, 0]}, features=features),
        }
    )
    repo_id = f"{hub_server.username}/faces"

    dataset.push_to_hub(repo_id, token=hub_server.token, commit_message="Labelled faces batch 1")

    files = hub_server.repo_files(repo_id, repo_type="dataset")
    assert "README.md" in files and any(name.startswith("data/train-") for name in files)
    assert hub_server.commits(repo_id, repo_type="dataset")[0].title == "Labelled faces batch 1"
    loaded = load_dataset(repo_id, token=hub_server.token)
    assert set(loaded) == {"train", "test"}
    assert loaded["train"].features["label"].names == ["neutral", "happy", "sad"]
    assert loaded["train"]["label"] == [0, 1, 2, 1] and loaded["test"]["label"] == [2, 0]
    assert np.array_equal(np.asarray(loaded["test"][1]["image"]), np.asarray(images[5]))


def test_space_upload(hub_server: HubServer, tmp_path: Path) -> None:
    api = HfApi(token=hub_server.token)
    repo_id = api.create_repo("demo", repo_type="space", space_sdk="gradio").repo_id
    bundle = tmp_path / "space"
    bundle.mkdir()
    (bundle / "app.py").write_text("import gradio as gr\n")
    (bundle / "requirements.txt").write_text("tsnet-studio\n")
    (bundle / "README.md").write_text("---\ntitle: Demo\nsdk: gradio\napp_file: app.py\n---\n# Demo\n")

    api.upload_folder(folder_path=bundle, repo_id=repo_id, repo_type="space", commit_message="Deploy Space")

    info = api.space_info(repo_id)
    assert info.sdk == "gradio" and info.card_data.get("app_file") == "app.py"
    assert sorted(api.list_repo_files(repo_id, repo_type="space")) == [
        ".gitattributes",
        "README.md",
        "app.py",
        "requirements.txt",
    ]
    assert hub_server.read_file(repo_id, "app.py", repo_type="space") == b"import gradio as gr\n"
    assert api.repo_info(repo_id, repo_type="space").sha == hub_server.commits(repo_id, repo_type="space")[0].oid


def test_fail_next_and_stop(hub_server: HubServer) -> None:
    api = HfApi(token=hub_server.token)
    hub_server.fail_next(1, status=503, path_contains="/api/repos/create")
    with pytest.raises(HfHubHTTPError) as failed:
        api.create_repo("flaky")
    assert failed.value.response.status_code == 503
    assert api.create_repo("flaky").repo_id.endswith("/flaky")

    hub_server.stop()
    assert not hub_server.running
    with pytest.raises(Exception) as unreachable:
        api.model_info("tsnet-tester/flaky")
    assert not isinstance(unreachable.value, HfHubHTTPError)  # a connection error, not an HTTP answer
    hub_server.start()  # same ports: the Hub "comes back"
    assert api.model_info("tsnet-tester/flaky").id == "tsnet-tester/flaky"
    assert hub_server.errors == []


def test_listings_paginate_with_link_headers(hub_server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support import hub_server as hub_module

    monkeypatch.setattr(hub_module, "COMMITS_PAGE_SIZE", 2)
    monkeypatch.setattr(hub_module, "TREE_PAGE_SIZE", 2)
    api = HfApi(token=hub_server.token)
    repo_id = api.create_repo("paged").repo_id
    for index in range(3):
        api.upload_file(path_or_fileobj=b"x", path_in_repo=f"f{index}.txt", repo_id=repo_id, commit_message=f"c{index}")

    assert [commit.title for commit in api.list_repo_commits(repo_id)] == ["c2", "c1", "c0", "initial commit"]
    assert sorted(api.list_repo_files(repo_id)) == [".gitattributes", "f0.txt", "f1.txt", "f2.txt"]
    # 4 commits and 4 files at 2 per page: each listing followed one Link header
    assert len(hub_server.requests_matching("/commits/main")) == 2
    assert len(hub_server.requests_matching("/tree/main")) == 2
