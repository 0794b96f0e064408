"""Labelled real photos measured the way a user meets the model: detect, align, classify (the photo pipeline).

FER+ is web crops; a model's FER2013Valid figure does not say how it does on photos. A photo folder here has
``labels.csv`` with ``path,label,subject`` and optionally ``raters_agree`` (``../shared/data/taiwanese-dev``).
Faces are found once per folder (:func:`load_photo_set`), so a run can score every epoch on them cheaply; a
photo whose face is not found counts as wrong, as it would for the user.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from core.classifier import Classifier
from core.data.tensors import SHARP_SIZE, to_gray_array

from .evaluation import class_lines, score

__all__ = [
    "DomainPhoto",
    "PhotoSet",
    "read_domain_photos",
    "load_photo_set",
    "photo_set",
    "photo_crops",
    "evaluate_photos",
    "format_photo_report",
]


@dataclass(frozen=True)
class DomainPhoto:
    """One photo of a labelled photo folder: where it is, its posed label, whose it is, whether raters agreed."""

    path: Path
    label: str
    subject: str
    raters_agree: bool


def read_domain_photos(folder: Path, labels: Sequence[str]) -> list[DomainPhoto]:
    """The photos of ``labels.csv`` whose label is one of the model's classes (others, e.g. fear, are left out)."""
    table = Path(folder) / "labels.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{folder} needs labels.csv with path,label,subject columns (e.g. taiwanese-dev)")
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        DomainPhoto(Path(folder) / row["path"], row["label"], row["subject"], row.get("raters_agree", "1") == "1")
        for row in rows
        if row["label"] in labels
    ]


def photo_crops(photos: Sequence[DomainPhoto]) -> list[Image.Image | None]:
    """Each photo's first (largest) aligned face, or None when the detector finds none."""
    from core.faces import FaceDetector

    detector = FaceDetector()
    crops: list[Image.Image | None] = []
    for photo in photos:
        try:
            with Image.open(photo.path) as image:
                faces = detector.detect(image.convert("RGB"))
        except (OSError, ValueError) as error:  # missing, truncated or not an image: say which row of labels.csv
            raise ValueError(f"labels.csv lists {photo.path}, which cannot be read as a photo ({error})") from error
        crops.append(faces[0].aligned_crop if faces else None)
    return crops


@dataclass
class PhotoSet:
    """A photo folder's found faces as grey aligned crops (96 px: each classifier reduces them to its own
    ``face_size``, as the photo pipeline does) and their labels."""

    folder: str
    images: torch.Tensor  # uint8 (F, 1, 96, 96), the photos whose face was found
    label_indices: torch.Tensor  # int64 (F,)
    photos: int  # all photos scored, found or not
    labels: list[str]

    @property
    def no_face(self) -> int:
        return self.photos - len(self.images)


def load_photo_set(folder: str | Path, labels: Sequence[str], agreed_only: bool = True) -> PhotoSet:
    """Detect and align every photo of ``folder`` once (only those raters agreed on, when that column exists)."""
    photos = [p for p in read_domain_photos(Path(folder), labels) if p.raters_agree or not agreed_only]
    return photo_set(photos, labels, str(folder))


def photo_set(photos: Sequence[DomainPhoto], labels: Sequence[str], folder: str = "") -> PhotoSet:
    """``photos`` (of ``labels``' classes) detected and aligned once, e.g. the unseen people of the retrain bench."""
    crops = photo_crops(photos)
    found = [
        (to_gray_array(crop, SHARP_SIZE), labels.index(photo.label))
        for crop, photo in zip(crops, photos)
        if crop is not None
    ]
    images = (
        torch.from_numpy(np.stack([array for array, _ in found]))[:, None]
        if found
        else torch.zeros(0, 1, SHARP_SIZE, SHARP_SIZE)
    )
    indices = torch.tensor([index for _, index in found], dtype=torch.int64)
    return PhotoSet(folder, images.to(torch.uint8), indices, len(photos), list(labels))


def evaluate_photos(classifier: Classifier, photos: PhotoSet) -> dict[str, Any]:
    """:func:`.evaluation.score` on the found faces (per-class recall, confusion matrix), with ``accuracy`` over
    every photo (no face found: wrong) and ``found_accuracy`` over the found faces only."""
    probs = classifier.predict_gray_batch(photos.images)
    report = score(probs, photos.label_indices.numpy(), photos.labels)
    right = int((probs.argmax(axis=1) == photos.label_indices.numpy()).sum()) if len(probs) else 0
    report["found_accuracy"] = report["accuracy"]
    report["accuracy"] = right / max(photos.photos, 1)
    report.update(photos=photos.photos, no_face=photos.no_face, data=photos.folder)
    return report


def format_photo_report(report: dict[str, Any]) -> str:
    """An :func:`evaluate_photos` report as a user reads it."""
    found = report["photos"] - report["no_face"]
    lines = [
        f"model      {report['model']}",
        f"photos     {report['data']}: {report['photos']} photos, face found in {found} (photo pipeline:"
        " detect, align, classify)",
        f"accuracy   {report['accuracy']:.4f} over every photo ({report['found_accuracy']:.4f} over the found faces)",
        f"macro recall {report['macro_recall']:.4f} (classes with photos)",
    ]
    return "\n".join(lines + class_lines(report))
