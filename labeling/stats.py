"""Store statistics: class x split counts (by current label), per-annotator activity, agreement."""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING, Any

from .splits import SPLITS

if TYPE_CHECKING:
    from .queries import StoreQueries

__all__ = ["compute_stats"]


def compute_stats(store: StoreQueries) -> dict[str, Any]:
    """A JSON-ready summary; ``counts[split][class]`` counts labelled images by their current label."""
    images = store.image_splits()
    tallies = store.tallies()
    counts = {split: dict.fromkeys(store.labels, 0) for split in SPLITS}
    for image_id, split in images.items():
        result = tallies.get(image_id)
        if split and result and result.current in store.labels:
            counts[split][result.current] += 1
    annotators = store.annotator_activity()

    # Agreement over images with two or more standing votes: all-agree rate and pairwise agreement.
    multi = [t for t in tallies.values() if t.annotators >= 2]
    agreeing_pairs = total_pairs = 0
    for result in multi:
        ballots = [label for label, n in result.votes.items() for _ in range(n)]
        for a, b in combinations(ballots, 2):
            total_pairs += 1
            agreeing_pairs += a == b
    unanimous = sum(t.unanimous for t in multi)
    events = store.event_counts()
    return {
        "labels": list(store.labels),
        "images": len(images),
        "labelled": sum(1 for image_id in images if image_id in tallies),
        "unlabelled": sum(1 for image_id in images if image_id not in tallies),
        "label_events": events["events"],
        "undone_events": events["undone"],
        "counts": counts,
        "split_totals": {split: sum(counts[split].values()) for split in SPLITS},
        "annotators": annotators,
        "agreement": {
            "images_with_several_annotators": len(multi),
            "unanimous": unanimous,
            "unanimous_rate": round(unanimous / len(multi), 4) if multi else None,
            "pairwise_agreement": round(agreeing_pairs / total_pairs, 4) if total_pairs else None,
        },
    }
