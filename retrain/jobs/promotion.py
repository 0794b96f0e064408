"""Candidate vs current on each evaluation set, and the rule that decides promotion.

The store's test split is small and its faces come in groups (one person's near-identical shots), so a point
difference says little: the candidate must be *better* there, judged by a paired bootstrap over groups (the
lower end of a one-sided confidence interval of the accuracy gain above zero). On the base benchmark (FER+
FER2013Valid, thousands of independent faces) it must stay within a fixed tolerance. A set that was not run or is
too small to judge is said to be so, never counted as "no regression".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.classifier import Classifier

from ..settings import PromotionRules
from ..training import Dataset, evaluate_dataset

__all__ = [
    "evaluate",
    "paired_bootstrap",
    "compare",
    "decide",
    "format_comparison",
    "STORE_TEST",
    "BASE_BENCHMARK",
    "BOOTSTRAP_DRAWS",
]

STORE_TEST = "store_test"
BASE_BENCHMARK = "base_benchmark"
BOOTSTRAP_DRAWS = 4000


def evaluate(classifier: Classifier, data: Dataset) -> dict[str, Any]:
    """Batched metrics (accuracy, macro recall, per-class accuracy, confusion matrix) of one model on one set,
    plus ``correct``: whether each face was classified right (what the paired bootstrap resamples)."""
    return evaluate_dataset(classifier, data, per_face=True)


def paired_bootstrap(
    candidate_correct: Sequence[int],
    current_correct: Sequence[int],
    groups: Sequence[str],
    confidence: float,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = 0,
) -> tuple[float, float]:
    """One-sided lower and upper bounds of the accuracy gain, resampling whole groups (paired: same faces)."""
    names, group_index = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    gain = np.asarray(candidate_correct, dtype=np.float64) - np.asarray(current_correct, dtype=np.float64)
    gain_per_group = np.bincount(group_index, weights=gain, minlength=len(names))
    faces_per_group = np.bincount(group_index, minlength=len(names)).astype(np.float64)
    picks = np.random.default_rng(seed).integers(0, len(names), size=(draws, len(names)))
    deltas = gain_per_group[picks].sum(axis=1) / faces_per_group[picks].sum(axis=1)
    return float(np.quantile(deltas, 1 - confidence)), float(np.quantile(deltas, confidence))


def _store_row(mine: dict, theirs: dict, groups: Sequence[str] | None, rules: PromotionRules) -> dict[str, Any]:
    group_count = len(set(groups)) if groups is not None else mine["samples"]
    enough = mine["samples"] >= rules.min_store_test and group_count >= rules.min_store_groups
    if enough and groups is not None:
        low, high = paired_bootstrap(mine["correct"], theirs["correct"], groups, rules.confidence)
    else:
        low = high = mine["accuracy"] - theirs["accuracy"]
    limit = rules.max_store_drop  # 0: the gain's lower bound must be above zero; > 0 tolerates a drop
    passed = bool(low > -limit - (1e-9 if limit > 0 else 0.0))
    return {"groups": group_count, "counted": enough, "passed": passed, "delta_low": low, "delta_high": high}


def _benchmark_row(mine: dict, theirs: dict, rules: PromotionRules) -> dict[str, Any]:
    delta = mine["accuracy"] - theirs["accuracy"]
    return {"groups": None, "counted": True, "passed": delta >= -rules.max_benchmark_drop - 1e-9}


def compare(
    candidate: dict[str, dict],
    current: dict[str, dict],
    rules: PromotionRules,
    groups: dict[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Per set: samples, both accuracies and macro recalls, the gain and its interval, the rule and the verdict."""
    table = {}
    for name, mine in candidate.items():
        theirs = current[name]
        if name == BASE_BENCHMARK:
            verdict = _benchmark_row(mine, theirs, rules)
            limit = rules.max_benchmark_drop
        else:
            verdict = _store_row(mine, theirs, (groups or {}).get(name), rules)
            limit = rules.max_store_drop
        table[name] = {
            "samples": mine["samples"],
            "candidate_accuracy": mine["accuracy"],
            "current_accuracy": theirs["accuracy"],
            "delta": mine["accuracy"] - theirs["accuracy"],
            "candidate_macro_recall": mine["macro_recall"],
            "current_macro_recall": theirs["macro_recall"],
            "candidate_per_class": mine["per_class_accuracy"],
            "current_per_class": theirs["per_class_accuracy"],
            "allowed_drop": limit,
            "confidence": rules.confidence if name != BASE_BENCHMARK else None,
            **verdict,
        }
    return table


def _reason(name: str, row: dict[str, Any]) -> str:
    change = (
        f"{name}: {100 * row['current_accuracy']:.2f}% -> {100 * row['candidate_accuracy']:.2f}%"
        f" ({100 * row['delta']:+.2f} points"
    )
    if not row["counted"]:
        return f"{change}) not counted: {row['samples']} faces in {row['groups']} groups is too few to judge"
    if name == BASE_BENCHMARK:
        verdict = "within tolerance" if row["passed"] else "regressed beyond the allowed drop"
        return f"{change}, allowed drop {100 * row['allowed_drop']:.2f}) {verdict}"
    interval = (
        f"{100 * row['confidence']:.0f}% interval {100 * row['delta_low']:+.1f} to {100 * row['delta_high']:+.1f}"
        f" over {row['groups']} groups"
    )
    verdict = "better" if row["passed"] else ("regressed" if row["delta"] < 0 else "not shown better")
    return f"{change}, {interval}) {verdict}"


def decide(comparison: dict[str, Any], warnings: Sequence[str] = ()) -> tuple[bool, list[str]]:
    """Promote when every counted set passed and the store's test split was counted; the reasons say why.

    ``warnings`` (missing replay or benchmark data) follow the summary, so they travel wherever the decision does.
    """
    reasons = [_reason(name, row) for name, row in comparison.items()]
    store = comparison.get(STORE_TEST)
    benchmark = comparison.get(BASE_BENCHMARK)
    if store is None or not store["counted"]:
        summary = "rejected: not enough labelled test faces to show the candidate is better (label more images)"
        return False, [summary, *reasons, *warnings]
    failed = [name for name, row in comparison.items() if row["counted"] and not row["passed"]]
    if not failed:
        promote = True
        summary = "promoted: better on your test faces"
        summary += " and within tolerance on the benchmark" if benchmark else "; the benchmark was not run"
    else:
        promote = False
        why = {STORE_TEST: "not shown better on your test faces", BASE_BENCHMARK: "the benchmark regressed too far"}
        summary = "rejected: " + "; ".join(why.get(name, f"{name} failed") for name in failed)
    return promote, [summary, *reasons, *warnings]


def _verdict_word(name: str, row: dict[str, Any]) -> str:
    if not row["counted"]:
        return "not counted"
    if name == BASE_BENCHMARK:
        return "within tolerance" if row["passed"] else "regressed"
    return "better" if row["passed"] else ("regressed" if row["delta"] < 0 else "not shown better")


def format_comparison(result: dict[str, Any]) -> str:
    """Candidate vs current per evaluation set, then the decision, the version and the push outcome."""
    lines = [f"{'evaluation set':<16} {'faces':>6} {'current':>9} {'candidate':>10} {'delta':>8}  verdict"]
    for name, row in (result.get("comparison") or {}).items():
        verdict = _verdict_word(name, row)
        lines.append(
            f"{name:<16} {row['samples']:>6} {100 * row['current_accuracy']:>8.2f}%"
            f" {100 * row['candidate_accuracy']:>9.2f}% {100 * row['delta']:>+8.2f}  {verdict}"
        )
    promoted = result.get("promoted")
    lines.append(f"version {result.get('version')}: {'promoted' if promoted else 'not promoted'}")
    lines += [f"  {reason}" for reason in (result.get("decision") or [])]
    if result.get("push"):
        lines.append(f"push: {result['push']}")
    return "\n".join(lines)
