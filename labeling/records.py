"""Plain records the store hands out: rows as frozen dataclasses, so callers never see SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = ["FaceRecord", "ImageRecord", "LabelEvent", "Sample", "ImportReport", "QueueItem"]


@dataclass(frozen=True)
class FaceRecord:
    index: int  # 0 is the largest face, the one an image label refers to
    box: tuple[float, float, float, float] | None
    crop: Path  # square grayscale PNG, 96 px for a photo's face (48 px for a FER+ crop)


@dataclass(frozen=True)
class ImageRecord:
    id: str
    filename: str | None
    source: str | None
    media_type: str
    original: Path
    size_bytes: int
    width: int
    height: int
    face_count: int | None  # None when the image was used whole (no detector, or already a face crop)
    added_at: str
    split: str | None
    faces: tuple[FaceRecord, ...]
    group: str = ""  # images of one group share a split: a user group, a near-duplicate's group, or the id
    parent: str | None = None  # a face cut from a photo with several faces: that photo's id

    @property
    def crop(self) -> Path:
        return self.faces[0].crop


@dataclass(frozen=True)
class LabelEvent:
    id: int
    image_id: str
    label: str
    annotator: str
    created_at: str
    undone_at: str | None
    origin: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> LabelEvent:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


class Sample(NamedTuple):
    """One training example: the crop file, the current label's index and the vote shares."""

    image_id: str
    crop: Path
    label_index: int
    soft_target: np.ndarray
    group: str = ""  # the split group (near-duplicates, a user group, or the image id): resample by it


@dataclass(frozen=True)
class QueueItem:
    image_id: str
    reason: str  # "unlabelled", "annotators disagree", "teacher and student disagree"
    crop: Path
    suggested_label: str | None
    confidence: float | None  # the student's top probability
    margin: float | None  # top-1 minus top-2 probability; small means uncertain
    votes: dict[str, int]


@dataclass
class ImportReport:
    """What an import did; ``skipped`` lists (source, reason) for every file that could not be used.

    ``added`` counts new files; ``faces`` the face crops detected in them (a photo with three faces adds
    three samples), ``whole`` the new files used whole (face crops already, or ``--crops``), and ``no_face``
    the photos in which no face was found (also in ``skipped``, with the reason).
    """

    added: int = 0
    already_present: int = 0
    label_events: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    faces: int = 0
    whole: int = 0
    no_face: int = 0

    @property
    def images_per_second(self) -> float:
        return (self.added + self.already_present) / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "already_present": self.already_present,
            "label_events": self.label_events,
            "faces": self.faces,
            "whole": self.whole,
            "no_face": self.no_face,
            "skipped": [{"source": source, "reason": reason} for source, reason in self.skipped],
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
            "images_per_second": round(self.images_per_second, 1),
        }
