"""Retrain settings read from ``TSNET_*`` variables: typed, and a wrong value names its variable in plain words."""

from __future__ import annotations

import pytest

from retrain.settings import RetrainSettings


def test_variables_fill_typed_settings_and_overrides_win(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("TSNET_RETRAIN_EPOCHS", "9")
    monkeypatch.setenv("TSNET_RETRAIN_ANCHOR", "0.5")
    monkeypatch.setenv("TSNET_RETRAIN_PHOTO_AUGMENT", "yes")
    monkeypatch.setenv("TSNET_RETRAIN_EMA", "")
    monkeypatch.setenv("TSNET_MAX_BENCHMARK_DROP", "0.01")
    monkeypatch.setenv("TSNET_RETRAIN_SEED", "2")
    monkeypatch.setenv("TSNET_RETRAIN_MIXUP", "0.4")
    settings = RetrainSettings.from_env(home=tmp_path, epochs=4)
    assert settings.mixup == 0.4
    assert (settings.epochs, settings.anchor_weight, settings.photo_augment, settings.seed) == (4, 0.5, True, 2)
    assert settings.ema_decay is None and settings.rules.max_benchmark_drop == 0.01


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TSNET_RETRAIN_EPOCHS", "six", "TSNET_RETRAIN_EPOCHS must be a whole number, not 'six'"),
        ("TSNET_RETRAIN_LR", "fast", "TSNET_RETRAIN_LR must be a number, not 'fast'"),
        ("TSNET_RETRAIN_ANCHOR", "-1", "TSNET_RETRAIN_ANCHOR must be 0 or more, not '-1'"),
        ("TSNET_GUARD_ALPHA", "-0.2", "TSNET_GUARD_ALPHA must be 0 or more"),
        ("TSNET_RETRAIN_SEED", "one", "TSNET_RETRAIN_SEED must be a whole number, not 'one'"),
        ("TSNET_RETRAIN_MIXUP", "-0.4", "TSNET_RETRAIN_MIXUP must be 0 or more"),
        (
            "TSNET_RETRAIN_STAGES",
            "head",
            "TSNET_RETRAIN_STAGES must be one of auto, face-head, student, teacher\\+student",
        ),
    ],
)
def test_a_wrong_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=message):
        RetrainSettings.from_env(home=tmp_path)


def test_a_negative_benchmark_drop_asks_the_candidate_to_gain(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("TSNET_MAX_BENCHMARK_DROP", "-0.01")
    assert RetrainSettings.from_env(home=tmp_path).rules.max_benchmark_drop == -0.01
