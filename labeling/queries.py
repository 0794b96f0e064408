"""What the store answers: the queries that import, queue, stats and export are written against.

``AnnotationStore`` satisfies :class:`StoreQueries`; the single-job modules take any object that does, so they
depend on this protocol and the store's facade methods can call them without an import cycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from .records import ImageRecord, LabelEvent, Sample
from .votes import Tally

__all__ = ["Ingested", "StoreQueries"]


class Ingested(NamedTuple):
    """What one :meth:`AnnotationStore.ingest` did."""

    image_id: str
    added: bool  # the file was new
    label_events: int
    faces: int  # face crops detected in a new photo (each one a sample); 0 when used whole or already present
    whole: bool  # a new file used whole: no detector, or already a face crop


class StoreQueries(Protocol):
    """The store's public reads and writes that the import, queue, stats and export functions use."""

    labels: tuple[str, ...]

    def ingest(
        self,
        data: bytes,
        source: str | None,
        filename: str | None,
        votes: Iterable[tuple[str, str]] = (),
        origin: str = "import",
        group: str | None = None,
    ) -> Ingested: ...

    def image(self, image_id: str) -> ImageRecord: ...

    def image_ids(self) -> list[str]: ...

    def crop_paths(self, image_ids: Sequence[str] | None = None) -> dict[str, Path]: ...

    def history(self, image_id: str | None = None, annotator: str | None = None) -> list[LabelEvent]: ...

    def tallies(self, image_ids: Sequence[str] | None = None) -> dict[str, Tally]: ...

    def samples(self, split: str) -> list[Sample]: ...

    def image_splits(self) -> dict[str, str | None]: ...

    def annotator_activity(self) -> dict[str, dict[str, int]]: ...

    def event_counts(self) -> dict[str, int]: ...

    def stored_predictions(self, model_version: str) -> dict[str, np.ndarray]: ...

    def save_predictions(self, model_version: str, probabilities: Mapping[str, Any]) -> None: ...
