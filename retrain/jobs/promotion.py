"""Candidate vs current on each evaluation set, and the no-regression rule that decides promotion."""

from __future__ import annotations

from typing import Any

from core.classifier import Classifier

from ..settings import PromotionRules
from ..training import Dataset, evaluate_dataset

__all__ = ["evaluate", "compare", "decide", "format_comparison", "STORE_TEST", "BASE_BENCHMARK"]

STORE_TEST = "store_test"
BASE_BENCHMARK = "base_benchmark"


def evaluate(classifier: Classifier, data: Dataset) -> dict[str, Any]:
    """Batched metrics (accuracy, macro recall, per-class accuracy, confusion matrix) of one model on one set."""
    return evaluate_dataset(classifier, data)


def compare(candidate: dict[str, dict], current: dict[str, dict], rules: PromotionRules) -> dict[str, Any]:
    """Per set: samples, both accuracies and macro recalls, the delta, the allowed drop and whether it passed."""
    table = {}
    for name, mine in candidate.items():
        theirs = current[name]
        limit = rules.max_benchmark_drop if name == BASE_BENCHMARK else rules.max_store_drop
        votes = name != STORE_TEST or mine["samples"] >= rules.min_store_test
        delta = mine["accuracy"] - theirs["accuracy"]
        table[name] = {
            "samples": mine["samples"],
            "candidate_accuracy": mine["accuracy"],
            "current_accuracy": theirs["accuracy"],
            "delta": delta,
            "candidate_macro_recall": mine["macro_recall"],
            "current_macro_recall": theirs["macro_recall"],
            "allowed_drop": limit,
            "counted": votes,
            "passed": delta >= -limit - 1e-9,
        }
    return table


def decide(comparison: dict[str, Any]) -> tuple[bool, list[str]]:
    """Promote when every counted set passed and at least one set was counted; the reasons say why."""
    counted = {name: row for name, row in comparison.items() if row["counted"]}
    if not counted:
        return False, ["rejected: no evaluation set to compare on (label test images or provide the base benchmark)"]
    reasons = []
    for name, row in counted.items():
        verdict = "ok" if row["passed"] else "regressed"
        reasons.append(
            f"{name}: {100 * row['current_accuracy']:.2f}% -> {100 * row['candidate_accuracy']:.2f}%"
            f" ({100 * row['delta']:+.2f} points, allowed drop {100 * row['allowed_drop']:.2f}) {verdict}"
        )
    promote = all(row["passed"] for row in counted.values())
    summary = "promoted: no regression" if promote else "rejected: accuracy dropped beyond the allowed tolerance"
    return promote, [summary, *reasons]


def format_comparison(result: dict[str, Any]) -> str:
    """Candidate vs current per evaluation set, then the decision, the version and the push outcome."""
    lines = [f"{'evaluation set':<16} {'faces':>6} {'current':>9} {'candidate':>10} {'delta':>8}  verdict"]
    for name, row in (result.get("comparison") or {}).items():
        verdict = ("ok" if row["passed"] else "regressed") if row["counted"] else "not counted"
        lines.append(
            f"{name:<16} {row['samples']:>6} {100 * row['current_accuracy']:>8.2f}%"
            f" {100 * row['candidate_accuracy']:>9.2f}% {100 * row['delta']:>+8.2f}  {verdict}"
        )
    promoted = result.get("promoted")
    lines.append(f"version {result.get('version')}: {'promoted' if promoted else 'not promoted'}")
    lines += [f"  {reason}" for reason in (result.get("decision") or [])[1:]]
    if result.get("push"):
        lines.append(f"push: {result['push']}")
    return "\n".join(lines)
