"""Exports: a datasets.DatasetDict (to disk and to a Hub repo) and a plain image folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from datasets import ClassLabel, DatasetDict, Image, load_dataset, load_from_disk

from labeling import AnnotationStore
from tests._labeling_fixtures import png_bytes


@pytest.fixture
def labelled_store(tmp_path: Path):
    with AnnotationStore(tmp_path / "e.db") as store:
        for i in range(10):
            image_id = store.add_image(png_bytes(i, side=40))
            store.label(image_id, "happy" if i % 2 else "sad", "ana")
        store.label(store.image_ids()[0], "happy", "ben")
        store.add_image(png_bytes(100))  # unlabelled: not exported
        yield store


def _labels_by_id(store: AnnotationStore) -> dict[str, str]:
    return {i: store.current_label(i) for i in store.image_ids() if store.current_label(i)}


def test_dataset_dict_has_three_splits_with_image_and_classlabel(labelled_store: AnnotationStore):
    dataset = labelled_store.export_dataset()
    assert isinstance(dataset, DatasetDict) and list(dataset) == ["train", "validation", "test"]
    assert sum(len(split) for split in dataset.values()) == 10
    features = dataset["train"].features
    assert isinstance(features["image"], Image) and isinstance(features["label"], ClassLabel)
    assert features["label"].names == list(labelled_store.labels)
    expected = _labels_by_id(labelled_store)
    for name, split in dataset.items():
        for row in split:
            assert labelled_store.split_of(row["image_id"]) == name
            assert features["label"].int2str(row["label"]) == expected[row["image_id"]]
            assert row["image"].size == (48, 48)
            assert np.isclose(sum(row["soft_target"]), 1.0)


def test_save_to_disk_round_trips(labelled_store: AnnotationStore, tmp_path: Path):
    labelled_store.export_dataset().save_to_disk(str(tmp_path / "hf"))
    loaded = load_from_disk(str(tmp_path / "hf"))
    assert {name: len(split) for name, split in loaded.items()} == {
        n: len(s) for n, s in labelled_store.export_dataset().items()
    }


def test_original_images_can_be_exported_instead_of_crops(labelled_store: AnnotationStore):
    row = labelled_store.export_dataset(image="original")["train"][0]
    assert row["image"].size == (40, 40)


def test_folder_export_is_split_label_id(labelled_store: AnnotationStore, tmp_path: Path):
    out = labelled_store.export_folder(tmp_path / "folder")
    files = sorted(out.rglob("*.png"))
    assert len(files) == 10
    expected = _labels_by_id(labelled_store)
    for path in files:
        split, label, name = path.relative_to(out).parts
        image_id = name.removesuffix(".png")
        assert (labelled_store.split_of(image_id), expected[image_id]) == (split, label)


def test_push_to_a_hub_dataset_repo(labelled_store: AnnotationStore, tmp_path: Path, request: pytest.FixtureRequest):
    pytest.importorskip("tests.support.hub_server")
    hub = request.getfixturevalue("hub_server")
    url = labelled_store.push_dataset(f"{hub.username}/fer-labels", token=hub.token, endpoint=hub.endpoint)
    assert "fer-labels" in url
    files = set(hub.repo_files(f"{hub.username}/fer-labels", "dataset"))
    assert {"README.md", "data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"} <= files
    assert len(hub.commits(f"{hub.username}/fer-labels", "dataset")) >= 1
    loaded = load_dataset(f"{hub.username}/fer-labels", token=hub.token)
    assert loaded["train"].features["label"].names == list(labelled_store.labels)
    assert sum(len(split) for split in loaded.values()) == 10
    # Pushing again (after more labels) is another commit to the same repo.
    labelled_store.label(labelled_store.image_ids()[-1], "surprise", "ana")
    labelled_store.push_dataset(f"{hub.username}/fer-labels", token=hub.token)  # endpoint from HF_ENDPOINT
    again = load_dataset(f"{hub.username}/fer-labels", token=hub.token, download_mode="force_redownload")
    assert sum(len(split) for split in again.values()) == 11
