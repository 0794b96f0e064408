"""Train/validation/test assignment: stratified 6:2:2, decided once per image, never revised.

The rule
--------
An image gets its split in the same transaction as its first label event, and that split is frozen:
relabelling, undoing, or re-importing the same bytes (same SHA-256, same row) never moves it, so an
image that was ever in ``test`` can never leak into training.

The stratum is the class of that first label. Within a stratum the choice depends only on how many
images of that class each split already holds, by *largest deficit*: after adding the new image the
class has ``n + 1`` images; split ``s`` "should" hold ``ratio_s * (n + 1)`` of them; the new image goes
to the split furthest below its share (ties go to the earlier of train, validation, test).

Why this keeps every class within one image of 6:2:2, whatever the arrival order: the deficits
``d_s = ratio_s * n - count_s`` always sum to zero; each step adds ``ratio_s`` to every ``d_s`` and
subtracts 1 from the largest. For 6:2:2 the rule is a fixed cycle of period 5 - train, validation,
train, test, train - after which all deficits are exactly 0 again, and inside the cycle they stay in
(-1, 1). Arrival order between classes cannot matter because each class only sees its own counts;
``tests/labeling/test_labeling_splits.py`` checks this exhaustively and with hypothesis.

Consequence worth knowing: counts by *current* label can drift when images are relabelled across
classes (the split stays where it was, by design); counts by first label never drift.

Groups
------
Images that belong together share one split (``labeling.groups``): near-duplicates found by a perceptual
hash, and images the user puts in one group (``--group-by``, a CSV's group column). An image whose group
(or a near-duplicate's group) already has a split takes that split; only a group's first labelled image is
placed by the rule above, with its class as the stratum and the counts of images already in each split, so
the 6:2:2 balance is kept at group level as well as group sizes allow (20 equal groups: 12/4/4). It stays
deterministic - the same arrivals give the same splits - and uses no random state. Singleton images (the
common case) behave exactly as before, so the within-one-image guarantee holds for them.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["SPLITS", "SPLIT_RATIOS", "choose_split"]

SPLITS: tuple[str, ...] = ("train", "validation", "test")
SPLIT_RATIOS: dict[str, float] = {"train": 0.6, "validation": 0.2, "test": 0.2}


def choose_split(counts: Mapping[str, int], ratios: Mapping[str, float] = SPLIT_RATIOS) -> str:
    """The split for the next image of a class whose images are already spread as ``counts``."""
    total = sum(counts.get(split, 0) for split in SPLITS) + 1
    best, best_deficit = SPLITS[0], float("-inf")
    for split in SPLITS:
        deficit = ratios[split] * total - counts.get(split, 0)
        if deficit > best_deficit + 1e-9:
            best, best_deficit = split, deficit
    return best
