"""The face-head retrain: the student keeps its answers until a head on dlib's face features is fitted beside it,
and the result is registered, served, explained and refitted like any retrained student."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from core.classifier import Classifier, load_classifier, shipped_weights_folder
from core.explain import explainer
from core.models.face_head import FACE_FEATURES, FACE_LEVELS, STUDENT_FEATURES, StudentWithFaceHead
from core.weights import load_weights, read_config
from retrain.registry import ModelRegistry
from retrain.training.face_head import (
    FACE_HEAD_ARCHITECTURE,
    FaceHeadRecipe,
    HeadInputs,
    face_head_model,
    fit_head,
    head_accuracy,
    head_inputs,
    plain_student,
    save_face_head,
)
from tests._face_fixtures import astronaut
from tests._retrain_fixtures import configure, fill_store, served_classifier
from tsnet.cli import main


def test_a_head_of_zeros_answers_exactly_as_the_student_does() -> None:
    student = load_classifier("student")
    model, config = face_head_model(student.model, student.config)
    with_head = Classifier(model, config)
    faces = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (6, 1, 48, 48), dtype=np.uint8))
    np.testing.assert_allclose(with_head.predict_gray_batch(faces), student.predict_gray_batch(faces), atol=1e-5)
    photo = astronaut()
    assert with_head.predict_image(photo)[0].label == student.predict_image(photo)[0].label == "happy"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = configure(monkeypatch, tmp_path)
    monkeypatch.setenv("TSNET_RETRAIN_STAGES", "face-head")
    fill_store(tmp_path / "store.db", side=96).close()  # photo faces, as the store keeps them
    return home


def _retrain(home: Path) -> int:
    return main(["retrain", "--db", str(home.parent / "store.db")])


def test_a_face_head_version_is_served_explained_and_refitted_from_its_own_student(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _retrain(home) == 0
    printed = capsys.readouterr().out
    assert "version v1: promoted" in printed
    registry = ModelRegistry(home)
    folder = registry.weights_folder("v1", "student")
    config = read_config(folder)
    assert config.architecture == FACE_HEAD_ARCHITECTURE and config.face_size == 96
    fit = registry.metrics("v1")["training_curves"]["student"][0]
    assert fit["store_faces"] == 18 and fit["replay_faces"] == 12 and 0 <= fit["val_accuracy"] <= 1
    assert "gate_store_faces" not in fit and "its domain gate is" not in printed  # real replay faces: no gate
    card = (folder / "README.md").read_text()
    assert "Face head" in card and f"the best of {FaceHeadRecipe().candidates} fits on different seeds" in card
    assert 0 <= registry.metrics("v1")["shrink"]["fraction"] <= 1
    # several heads fitted on different seeds; the kept one holds the benchmark at the most strength, then reads the
    # store's validation faces best, and it is the one shrunk, recorded and served
    candidates = fit["candidates"]
    assert len(candidates) == FaceHeadRecipe().candidates == len({candidate["seed"] for candidate in candidates})
    kept = next(candidate for candidate in candidates if candidate["seed"] == fit["kept_seed"])
    ranks = [(other["kept_strength"], other["val_accuracy"], -other["val_loss"]) for other in candidates]
    assert (kept["kept_strength"], kept["val_accuracy"], -kept["val_loss"]) == max(ranks)
    assert registry.metrics("v1")["shrink"]["fraction"] == kept["kept_strength"]
    assert fit["val_accuracy"] == kept["val_accuracy"] and f"kept seed {fit['kept_seed']}'s" in printed

    served = served_classifier("student")
    assert served.version == "v1" and served.config.architecture == FACE_HEAD_ARCHITECTURE
    photo = astronaut()
    face = served.predict_image(photo)[0]
    explanation = explainer(served).explain_face(face, photo.size)
    assert explanation.crop_heatmap.shape == face.aligned_crop.size[::-1] and explanation.image_heatmap.max() > 0

    base_student = load_weights(home.parent / "base-student")[0].state_dict()
    assert _retrain(home) == 0  # the second head is fitted on v1's student, not stacked on v1's head
    refitted = load_weights(registry.weights_folder("v2", "student"))[0]
    for key, value in base_student.items():
        assert torch.equal(refitted.student.state_dict()[key], value.half().float()), key

    monkeypatch.setenv("TSNET_RETRAIN_STAGES", "student")
    capsys.readouterr()
    assert _retrain(home) != 0
    printed = capsys.readouterr()
    assert "has a face-feature head" in printed.out + printed.err
    assert registry.current() == "v2"  # the failed job changed nothing


def test_the_fitted_head_is_scored_as_the_classifier_serves_it() -> None:
    student = load_classifier("student")
    model, config = face_head_model(student.model, student.config)
    rng = np.random.default_rng(1)
    faces = torch.from_numpy(rng.integers(0, 256, (10, 1, 96, 96), dtype=np.uint8))
    labels = torch.from_numpy(rng.integers(0, 7, 10))
    inputs = head_inputs(model, config, faces, labels)
    fit_head(model, inputs, None, FaceHeadRecipe(steps=30), seed=0)  # fits these ten faces' labels
    served = Classifier(model, config).predict_gray_batch(faces).argmax(1)
    assert head_accuracy(model, inputs) == float((served == labels.numpy()).mean()) > 0.5


def _rows(rng: np.random.Generator, count: int, shift: float) -> torch.Tensor:
    features = rng.normal(0.0, 1.0, (count, FACE_FEATURES + STUDENT_FEATURES))
    features[:, :50] += shift  # the user's kind of photo differs from FER+'s in some of dlib's features
    return torch.from_numpy(features.astype(np.float32))


def test_the_domain_gate_lets_the_head_correct_the_users_kind_of_face_and_leaves_replay_faces_to_the_student() -> None:
    model = StudentWithFaceHead(7, pretrained=False, face_levels=FACE_LEVELS, domain_gate=True)
    rng = np.random.default_rng(3)
    labels = torch.from_numpy(rng.integers(0, 7, 60))
    faces = HeadInputs(torch.zeros(60, 7), _rows(rng, 60, 3.0), labels, views=1)
    replay = HeadInputs(torch.randn(2000, 7), _rows(rng, 2000, 0.0), torch.zeros(2000, dtype=torch.int64), views=1)
    fit = fit_head(model, faces, replay, FaceHeadRecipe(steps=100), seed=0)
    assert fit["gate_store_faces"] > 0.9 and fit["gate_replay_faces"] < 0.1
    new_faces, new_replay = _rows(rng, 200, 3.0), _rows(rng, 200, 0.0)  # faces of neither fit
    with torch.no_grad():
        assert model.head.openness(new_faces).mean() > 0.9 and model.head.openness(new_replay).mean() < 0.1
        corrections = model.head.correction(new_replay).abs().max(1).values
        served = model.head(new_replay).abs().max(1).values
    assert served.mean() < 0.2 * corrections.mean()  # FER+'s kind of face keeps (nearly) the student's answer

    without_gate = StudentWithFaceHead(7, pretrained=False, face_levels=FACE_LEVELS)
    fit_head(without_gate, faces, replay, FaceHeadRecipe(steps=100), seed=0)
    assert without_gate.head.gate is None and torch.equal(without_gate.head.openness(new_faces), torch.ones(200, 1))


def test_by_default_the_head_is_fitted_when_replay_faces_are_at_hand_and_the_student_fine_tuned_when_not(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TSNET_RETRAIN_STAGES")
    assert _retrain(home) == 0
    assert "recipe: face-head (FER+ replay faces at hand" in capsys.readouterr().out
    registry = ModelRegistry(home)
    assert read_config(registry.weights_folder("v1", "student")).architecture == FACE_HEAD_ARCHITECTURE

    assert main(["models", "rollback"]) == 0
    monkeypatch.setenv("TSNET_REPLAY_DATA", "")
    assert _retrain(home) == 0
    assert "recipe: student (no replay" in capsys.readouterr().out
    assert read_config(registry.weights_folder("v2", "student")).architecture == "shufflenet_v2"


@pytest.mark.parametrize("domain_gate", [False, True])
def test_a_face_head_exports_to_onnx_with_the_same_answers(tmp_path: Path, domain_gate: bool) -> None:
    student = load_classifier("student")
    model, config = face_head_model(student.model, student.config, domain_gate=domain_gate)
    torch.manual_seed(0)
    torch.nn.init.normal_(model.head.out.weight, std=0.05)  # a head that changes the answers
    if domain_gate:  # and a gate that is partly shut
        torch.nn.init.normal_(model.head.gate.weight, std=0.02)
        torch.nn.init.zeros_(model.head.gate.bias)
    folder = save_face_head(model, config, tmp_path / "face-head", FaceHeadRecipe())
    assert main(["export-onnx", "--model", str(folder), str(tmp_path / "face-head.onnx")]) == 0
    served, exported = load_classifier(folder), load_classifier(tmp_path / "face-head.onnx")
    crop = served.predict_image(astronaut())[0].aligned_crop
    np.testing.assert_allclose(exported.predict_crops([crop]), served.predict_crops([crop]), atol=1e-4)
    faces = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (4, 1, 48, 48), dtype=np.uint8))
    np.testing.assert_allclose(exported.predict_gray_batch(faces), served.predict_gray_batch(faces), atol=1e-4)
    assert not np.allclose(served.predict_gray_batch(faces), student.predict_gray_batch(faces), atol=1e-3)


def test_a_refitted_head_does_not_inherit_the_earlier_fits_records(tmp_path: Path) -> None:
    student = load_classifier("student")
    model, config = face_head_model(student.model, student.config)
    config.training["shrunk_toward_current"] = 0.5  # as a shrunk earlier version records it
    folder = save_face_head(model, config, tmp_path / "v1", FaceHeadRecipe(), face_head_fit={"epoch": 1})
    inner, inner_config = plain_student(folder)
    _, refit_config = face_head_model(inner, inner_config)
    assert not {"shrunk_toward_current", "face_head", "face_head_fit"} & set(refit_config.training)
    assert refit_config.training["flip_tta"] == student.config.training["flip_tta"]  # the student's recipe stays


def test_a_head_saved_before_dlibs_level2_and_the_gate_still_loads_and_is_refitted_on_all_three_levels(
    tmp_path: Path,
) -> None:
    student = load_classifier("student")
    model, config = face_head_model(student.model, student.config)
    assert model.face_levels == FACE_LEVELS and model.head.hidden.in_features == FACE_FEATURES + STUDENT_FEATURES
    earlier = StudentWithFaceHead(len(config.labels), pretrained=False)  # the layout saved by earlier releases
    earlier.student.load_state_dict(student.model.state_dict())
    earlier.face.load_state_dict(model.face.state_dict())
    torch.manual_seed(0)
    torch.nn.init.normal_(earlier.head.out.weight, std=0.05)
    kwargs = {key: value for key, value in config.model_kwargs.items() if key not in ("face_levels", "domain_gate")}
    folder = save_face_head(earlier, replace(config, model_kwargs=kwargs), tmp_path / "v1", FaceHeadRecipe())
    served = load_classifier(folder)
    assert served.model.face_levels == ("level1", "level0") and served.model.head.gate is None
    faces = torch.randn(3, 1, config.input_size, config.input_size)
    with torch.no_grad():  # saved in half precision, as every version is
        np.testing.assert_allclose(served.model(faces).numpy(), earlier.eval()(faces).numpy(), atol=0.02)
    refitted, _ = face_head_model(*plain_student(folder))
    assert refitted.face_levels == FACE_LEVELS


def test_without_ferplus_the_shipped_students_head_rehearses_the_shipped_feature_statistics_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = configure(monkeypatch, tmp_path)
    for name in ("student", "teacher"):
        monkeypatch.setenv(f"TSNET_BASE_{name.upper()}", str(shipped_weights_folder(name)))
    monkeypatch.setenv("TSNET_REPLAY_DATA", "")
    monkeypatch.setenv("TSNET_BENCHMARK_DATA", "")
    monkeypatch.delenv("TSNET_RETRAIN_STAGES")
    labels = tuple(read_config(shipped_weights_folder("student")).labels)
    fill_store(tmp_path / "store.db", per_class=4, side=96, labels=labels).close()

    assert _retrain(home) == 0
    out = capsys.readouterr().out
    assert "recipe: face-head (no FER+ replay faces: the FER+ feature statistics shipped with the student" in out
    assert "no regression" not in out
    registry = ModelRegistry(home)
    fit = registry.metrics("v1")["training_curves"]["student"][0]
    assert fit["replay_faces"] == 0 and fit["feature_replay_rows"] == FaceHeadRecipe().synthetic_rows
    assert 0 <= fit["gate_replay_faces"] < fit["gate_store_faces"] <= 1 and "its domain gate is" in out
    assert read_config(registry.weights_folder("v1", "student")).model_kwargs["domain_gate"] is True
    # nothing to shrink against: every head keeps its whole strength, and the validation faces choose among them
    assert {candidate["kept_strength"] for candidate in fit["candidates"]} == {1.0}
    assert fit["val_accuracy"] == max(candidate["val_accuracy"] for candidate in fit["candidates"])
    warnings = registry.record("v1")["warnings"]
    assert any("feature statistics shipped with the student" in warning for warning in warnings)
    assert any("benchmark not run" in warning for warning in warnings)
    card = (registry.version_dir("v1") / "student" / "README.md").read_text()
    assert "feature statistics shipped with the student" in card and "a domain gate applies it" in card
