"""Eight processes labelling one database file at once: nothing lost, nothing doubled, no lock errors."""

from __future__ import annotations

from pathlib import Path

from labeling.bench import label_concurrently


def test_eight_processes_write_two_thousand_labels_without_loss_or_lock_errors(tmp_path: Path):
    result = label_concurrently(tmp_path / "shared.db", workers=8, events=250)
    print(
        f"\nconcurrency: {result['events_found']} events in {result['seconds']}s"
        f" ({result['events_per_second']} events/s)"
    )
    assert result["errors"] == [] and result["exit_codes"] == [0] * 8
    assert result["events_found"] == result["distinct_events"] == 2000
    assert set(result["per_worker"].values()) == {250}
