"""The promotion rule: better on the store's test faces by a paired bootstrap over groups, within tolerance on the
benchmark, and honest about what was not run."""

from __future__ import annotations

import numpy as np

from retrain.jobs.promotion import BASE_BENCHMARK, STORE_TEST, compare, decide, paired_bootstrap
from retrain.settings import PromotionRules

LABELS = ["happy", "sad"]


def _evaluation(correct: list[int]) -> dict:
    accuracy = float(np.mean(correct)) if correct else 0.0
    return {
        "samples": len(correct),
        "accuracy": accuracy,
        "macro_recall": accuracy,
        "per_class_accuracy": {"happy": accuracy, "sad": accuracy},
        "correct": correct,
    }


def _groups(people: int, shots: int) -> list[str]:
    return [f"person{p}" for p in range(people) for _ in range(shots)]


def test_a_clear_gain_over_many_groups_is_shown_better() -> None:
    groups = _groups(20, 5)
    current = [0, 0, 1, 1, 1] * 20
    candidate = [1, 1, 1, 1, 1] * 20
    low, high = paired_bootstrap(candidate, current, groups, confidence=0.95)
    assert 0 < low <= 0.4 <= high


def test_a_gain_carried_by_one_person_is_not_enough() -> None:
    groups = _groups(10, 10)
    current = [0] * 100
    candidate = [1] * 10 + [0] * 90  # one person's ten near-identical shots flipped, nobody else changed
    comparison = compare(
        {STORE_TEST: _evaluation(candidate)}, {STORE_TEST: _evaluation(current)}, PromotionRules(), {STORE_TEST: groups}
    )
    row = comparison[STORE_TEST]
    assert row["delta"] > 0 and row["delta_low"] <= 0 and row["passed"] is False
    promote, reasons = decide(comparison)
    assert promote is False and reasons[0].startswith("rejected")


def test_an_unchanged_model_is_not_promoted() -> None:
    groups = _groups(12, 3)
    same = [1, 0, 1] * 12
    comparison = compare(
        {STORE_TEST: _evaluation(same)}, {STORE_TEST: _evaluation(same)}, PromotionRules(), {STORE_TEST: groups}
    )
    assert comparison[STORE_TEST]["passed"] is False
    assert decide(comparison)[0] is False


def test_too_few_groups_give_no_verdict_and_no_promotion() -> None:
    groups = _groups(3, 10)
    comparison = compare(
        {STORE_TEST: _evaluation([1] * 30)}, {STORE_TEST: _evaluation([0] * 30)}, PromotionRules(), {STORE_TEST: groups}
    )
    assert comparison[STORE_TEST]["counted"] is False
    promote, reasons = decide(comparison)
    assert promote is False
    assert "not enough labelled test faces" in reasons[0] and "3 groups is too few" in reasons[1]


def test_a_benchmark_that_was_not_run_is_said_so_never_no_regression() -> None:
    groups = _groups(20, 2)
    comparison = compare(
        {STORE_TEST: _evaluation([1] * 40)},
        {STORE_TEST: _evaluation([0, 1] * 20)},
        PromotionRules(),
        {STORE_TEST: groups},
    )
    promote, reasons = decide(comparison, warnings=["benchmark not run: no benchmark data"])
    assert promote is True
    assert "the benchmark was not run" in reasons[0]
    assert "no regression" not in " ".join(reasons)
    assert reasons[-1] == "benchmark not run: no benchmark data"


def test_a_benchmark_drop_beyond_the_tolerance_rejects_a_better_candidate() -> None:
    groups = _groups(20, 2)
    candidate = {STORE_TEST: _evaluation([1] * 40), BASE_BENCHMARK: _evaluation([1] * 80 + [0] * 20)}
    current = {STORE_TEST: _evaluation([0, 1] * 20), BASE_BENCHMARK: _evaluation([1] * 90 + [0] * 10)}
    comparison = compare(candidate, current, PromotionRules(max_benchmark_drop=0.005), {STORE_TEST: groups})
    assert comparison[STORE_TEST]["passed"] is True and comparison[BASE_BENCHMARK]["passed"] is False
    promote, reasons = decide(comparison)
    assert promote is False and "benchmark regressed" in reasons[0]
