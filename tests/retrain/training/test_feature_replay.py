"""The FER+ feature statistics shipped with the student: what a retrain without FER+ rehearses instead of faces."""

from __future__ import annotations

from pathlib import Path

import torch

from core.classifier import load_classifier, shipped_weights_folder
from core.models.face_head import FACE_FEATURES, STUDENT_FEATURES
from core.weights import load_weights, save_weights
from retrain.training.face_head import face_head_model
from retrain.training.feature_replay import (
    FeatureStatistics,
    fit_statistics,
    main,
    shipped_statistics,
    statistics_for,
    student_fingerprint,
    synthetic_replay,
)
from tests._core_fixtures import write_ferplus_folder
from tests._retrain_fixtures import tiny_weights


def _correlated_rows(count: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    mixing = torch.randn(4, 12, generator=generator)
    noise = 0.1 * torch.randn(count, 12, generator=generator)
    return torch.randn(count, 4, generator=generator) @ mixing + 10 + noise  # positive, as pooled ReLU features


def test_samples_have_the_spread_of_the_rows_they_were_fitted_on(tmp_path: Path) -> None:
    rows = _correlated_rows(4000)
    statistics = fit_statistics(rows, rank=4, student="abc")
    loaded = FeatureStatistics.load(statistics.save(tmp_path / "stats.safetensors"))
    assert loaded.faces == 4000 and loaded.basis.shape == (4, 12) and loaded.student == "abc"
    samples = loaded.sample(20000, torch.Generator().manual_seed(1))
    assert samples.min() >= 0
    torch.testing.assert_close(samples.mean(0), rows.mean(0), atol=0.1, rtol=0.05)
    torch.testing.assert_close(torch.cov(samples.T), torch.cov(rows.T), atol=0.2, rtol=0.05)


def test_the_shipped_statistics_describe_the_shipped_student_only(tmp_path: Path) -> None:
    statistics = shipped_statistics()
    assert statistics is not None and statistics.faces > 20000
    assert statistics.mean.shape == (FACE_FEATURES + STUDENT_FEATURES,)
    assert statistics_for(shipped_weights_folder("student")) is not None

    student, config = load_weights(shipped_weights_folder("student"))
    halved = save_weights(student, config, tmp_path / "halved", half=True)  # how a registered version keeps it
    assert statistics_for(halved) is not None
    with torch.no_grad():
        student.fc[-1].bias.add_(0.1)  # a fine-tuned student reads the features differently
    assert statistics.student != student_fingerprint(student)
    assert statistics_for(tiny_weights(tmp_path / "tiny", "shufflenet_v2", 0)) is None


def test_rehearsed_rows_carry_the_students_own_answers_on_them() -> None:
    student = load_classifier("student")
    model, _ = face_head_model(student.model, student.config)
    rows = synthetic_replay(model, shipped_statistics(), 300, seed=0)
    assert rows.features.shape == (300, FACE_FEATURES + STUDENT_FEATURES) and rows.views == 1
    with torch.no_grad():
        expected = student.model.fc(rows.features[:, FACE_FEATURES:])
    torch.testing.assert_close(rows.logits, expected)
    assert len(rows.labels.unique()) >= 3  # the rows spread over classes as FER+ faces do


def test_the_command_regenerates_the_statistics_from_a_ferplus_folder(tmp_path: Path) -> None:
    labels = tuple(load_classifier("student").labels)
    folder = write_ferplus_folder(tmp_path / "FER2013Train", labels, per_class=2, seed=0)
    out = tmp_path / "fer_features.safetensors"
    main([str(folder), "--out", str(out), "--rank", "4"])
    statistics = FeatureStatistics.load(out)
    assert statistics.faces == 2 * len(labels) and statistics.basis.shape == (4, FACE_FEATURES + STUDENT_FEATURES)
    assert statistics.student == shipped_statistics().student  # keyed to the shipped student it was read by
