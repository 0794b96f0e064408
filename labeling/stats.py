"""Store statistics: class x split counts (by current label), per-annotator activity, agreement."""

from __future__ import annotations

from itertools import combinations
from typing import TYPE_CHECKING, Any

from .splits import SPLITS

if TYPE_CHECKING:
    from .store import AnnotationStore

__all__ = ["compute_stats"]


def compute_stats(store: AnnotationStore) -> dict[str, Any]:
    """A JSON-ready summary; ``counts[split][class]`` counts labelled images by their current label."""
    images = store._read("SELECT id, split FROM images")
    tallies = store.tallies()
    counts = {split: dict.fromkeys(store.labels, 0) for split in SPLITS}
    for row in images:
        result = tallies.get(row["id"])
        if row["split"] and result and result.current in store.labels:
            counts[row["split"]][result.current] += 1

    annotators: dict[str, dict[str, int]] = {}
    for row in store._read(
        "SELECT annotator, count(*) AS events, sum(undone_at IS NOT NULL) AS undone, count(DISTINCT image_id) AS images"
        " FROM label_events GROUP BY annotator ORDER BY annotator"
    ):
        annotators[row["annotator"]] = {"events": row["events"], "undone": row["undone"], "images": row["images"]}

    # Agreement over images with two or more standing votes: all-agree rate and pairwise agreement.
    multi = [t for t in tallies.values() if t.annotators >= 2]
    agreeing_pairs = total_pairs = 0
    for result in multi:
        ballots = [label for label, n in result.votes.items() for _ in range(n)]
        for a, b in combinations(ballots, 2):
            total_pairs += 1
            agreeing_pairs += a == b
    unanimous = sum(t.unanimous for t in multi)
    events = store._read("SELECT count(*) AS n, sum(undone_at IS NOT NULL) AS undone FROM label_events")[0]
    return {
        "labels": list(store.labels),
        "images": len(images),
        "labelled": sum(1 for row in images if row["id"] in tallies),
        "unlabelled": sum(1 for row in images if row["id"] not in tallies),
        "label_events": events["n"],
        "undone_events": events["undone"] or 0,
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
