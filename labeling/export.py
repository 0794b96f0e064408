"""Export: a Hugging Face ``DatasetDict`` (train/validation/test) on disk or on the Hub, or an image folder.

Rows are the labelled images of each split with ``image`` (the aligned grey face crop by default, or the
original photo), ``label`` (a ``ClassLabel`` in the store's label order), ``soft_target`` (the vote
shares) and ``image_id``. The Hub push writes the same parquet layout ``DatasetDict.push_to_hub``
does, but through an ``HfApi`` built for the endpoint given here or in ``HF_ENDPOINT`` *at call
time* (``datasets`` freezes ``HF_ENDPOINT`` when it is first imported), and lands as one commit.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from .splits import SPLITS

if TYPE_CHECKING:
    from datasets import DatasetDict, Features

    from .queries import StoreQueries

__all__ = ["dataset_features", "build_dataset_dict", "export_folder", "push_dataset", "IMAGE_KINDS"]

IMAGE_KINDS = ("crop", "original")


def dataset_features(labels: tuple[str, ...]) -> Features:
    from datasets import ClassLabel, Features, Image, List, Value

    return Features(
        {
            "image": Image(),
            "label": ClassLabel(names=list(labels)),
            "soft_target": List(Value("float32")),
            "image_id": Value("string"),
        }
    )


def _image_path(store: StoreQueries, image_id: str, crop: Path, image: str) -> Path:
    if image not in IMAGE_KINDS:
        raise ValueError(f"image must be one of {IMAGE_KINDS}, not {image!r}")
    return crop if image == "crop" else store.image(image_id).original


def build_dataset_dict(store: StoreQueries, image: str = "crop") -> DatasetDict:
    """The labelled images as a ``DatasetDict`` with ``train``, ``validation`` and ``test`` (possibly empty)."""
    from datasets import Dataset, DatasetDict

    features = dataset_features(store.labels)
    splits = {}
    for split in SPLITS:
        columns: dict[str, list] = {"image": [], "label": [], "soft_target": [], "image_id": []}
        for sample in store.samples(split):
            path = _image_path(store, sample.image_id, sample.crop, image)
            columns["image"].append({"bytes": path.read_bytes(), "path": path.name})
            columns["label"].append(sample.label_index)
            columns["soft_target"].append(sample.soft_target.tolist())
            columns["image_id"].append(sample.image_id)
        splits[split] = Dataset.from_dict(columns, features=features)
    return DatasetDict(splits)


def export_folder(store: StoreQueries, directory: str | Path, image: str = "crop") -> Path:
    """``directory/<split>/<label>/<image id>.<ext>``: the layout ``core.data.read_image_folder`` reads."""
    directory = Path(directory)
    for split in SPLITS:
        for sample in store.samples(split):
            source = _image_path(store, sample.image_id, sample.crop, image)
            target = directory / split / store.labels[sample.label_index] / f"{sample.image_id}{source.suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    return directory


def _dataset_card(dataset: DatasetDict, labels: tuple[str, ...]) -> str:
    header = {
        "configs": [
            {"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in dataset]},
        ],
        "dataset_info": {
            "features": dataset_features(labels)._to_yaml_list(),
            "splits": [{"name": s, "num_examples": len(dataset[s])} for s in dataset],
        },
    }
    body = (
        "# Facial expression annotations\n\nExported by T-SNet Studio's annotation store: aligned face crops, "
        f"the current (majority) label among {', '.join(labels)}, and the annotators' vote shares as `soft_target`.\n"
    )
    return f"---\n{yaml.safe_dump(header, sort_keys=False)}---\n\n{body}"


def push_dataset(
    store: StoreQueries,
    repo_id: str,
    token: str | None = None,
    endpoint: str | None = None,
    private: bool | None = None,
    image: str = "crop",
) -> str:
    """Push the ``DatasetDict`` to the dataset repo ``repo_id`` in one commit; returns the commit URL."""
    from huggingface_hub import HfApi

    dataset = build_dataset_dict(store, image=image)
    api = HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=token)
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=private)
    with tempfile.TemporaryDirectory() as staging:
        root = Path(staging)
        (root / "data").mkdir()
        for split in dataset:
            dataset[split].to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
        (root / "README.md").write_text(_dataset_card(dataset, store.labels))
        commit = api.upload_folder(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=root,
            commit_message=f"Export {sum(map(len, dataset.values()))} labelled faces",
        )
    return str(getattr(commit, "commit_url", commit))
