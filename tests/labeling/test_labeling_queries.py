"""The store's public queries, the only way import, queue, stats and export read or write it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labeling import AnnotationStore
from labeling.queries import StoreQueries
from tests._labeling_fixtures import png_bytes


def test_queries_answer_what_stats_and_the_queue_need(tmp_path: Path) -> None:
    with AnnotationStore(tmp_path / "labels.db") as store:
        assert isinstance(store, AnnotationStore) and _satisfies(store)
        first = store.ingest(png_bytes(1), "a", "a.png", votes=[("happy", "ana")])
        second = store.ingest(png_bytes(2), "b", "b.png")
        assert first.added and first.label_events == 1 and first.image_id == store.add_image(png_bytes(1))
        splits = store.image_splits()
        assert set(splits) == {first.image_id, second.image_id}
        assert splits[first.image_id] is not None and splits[second.image_id] is None  # split set at the first label
        store.label(first.image_id, "sad", "bo")
        store.undo_last("bo")
        assert store.annotator_activity() == {
            "ana": {"events": 1, "undone": 0, "images": 1},
            "bo": {"events": 1, "undone": 1, "images": 1},
        }
        assert store.event_counts() == {"events": 2, "undone": 1}


def test_predictions_are_cached_per_model_version(tmp_path: Path) -> None:
    with AnnotationStore(tmp_path / "labels.db") as store:
        image_id = store.add_image(png_bytes(3))
        assert store.stored_predictions("v1") == {}
        row = np.linspace(0, 1, len(store.labels), dtype=np.float32)
        store.save_predictions("v1", {image_id: row})
        stored = store.stored_predictions("v1")
        assert list(stored) == [image_id] and np.allclose(stored[image_id], row)
        assert store.stored_predictions("v2") == {}


def _satisfies(store: StoreQueries) -> bool:  # the store is what the job modules are typed against
    return all(callable(getattr(store, name)) for name in ("ingest", "image_splits", "stored_predictions"))
