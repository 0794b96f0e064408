"""Deriving an image's current label from its label history.

Each annotator's latest live (not undone) event is their vote; the current label is the majority of
those votes. A tie goes to the label voted most recently, so the newest opinion settles it. The vote
counts are the FER+-style distribution, used as the soft training target.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Vote", "Tally", "tally"]


@dataclass(frozen=True)
class Vote:
    """One annotator's standing vote: the label of their latest live event (``event_id`` orders them)."""

    annotator: str
    label: str
    event_id: int


@dataclass(frozen=True)
class Tally:
    votes: dict[str, int]  # label -> number of annotators whose current vote it is
    current: str | None

    @property
    def annotators(self) -> int:
        return sum(self.votes.values())

    @property
    def unanimous(self) -> bool:
        return len(self.votes) == 1

    def soft_target(self, labels: Sequence[str]) -> np.ndarray:
        """Vote shares in ``labels`` order (zeros when nobody voted for an in-set label)."""
        target = np.array([self.votes.get(name, 0) for name in labels], dtype=np.float32)
        total = target.sum()
        return target / total if total > 0 else target


def tally(votes: Iterable[Vote]) -> Tally:
    counts: dict[str, int] = {}
    latest: dict[str, int] = {}
    for vote in votes:
        counts[vote.label] = counts.get(vote.label, 0) + 1
        latest[vote.label] = max(latest.get(vote.label, -1), vote.event_id)
    if not counts:
        return Tally({}, None)
    current = max(counts, key=lambda label: (counts[label], latest[label]))
    return Tally(dict(sorted(counts.items())), current)
