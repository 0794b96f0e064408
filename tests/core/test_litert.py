"""LiteRT (TFLite + XNNPACK) serving: the written graph computes the student, int8 stays close, same predict API."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from core import load_classifier
from core.classifier import Classifier, compile_classifier
from core.explain import explainer
from core.litert_backend import LiteRtEngine, export_tflite
from tests._face_fixtures import astronaut, gray_faces, student_fixture, student_folder_fixture  # noqa: F401
from tsnet.cli import main


@pytest.fixture(scope="module", name="served")
def served_fixture(student) -> Classifier:
    return compile_classifier(student, "litert")


def _reference(student, faces: np.ndarray) -> np.ndarray:
    return student.predict_gray_batch(torch.from_numpy(faces)[:, None])


def test_float_graph_agrees_with_pytorch(student, served):
    faces = gray_faces(16)
    assert not served.engine.int8
    assert np.abs(served.engine.probabilities(faces) - _reference(student, faces)).max() < 1e-5
    assert np.abs(served.predict_gray_batch(torch.from_numpy(faces)[:, None]) - _reference(student, faces)).max() < 1e-5


@pytest.mark.parametrize("count", [1, 3, 70])  # batch 1, a padded batch, and more faces than one graph takes
def test_any_number_of_faces_gets_the_same_answer_as_one_at_a_time(served, count):
    faces = gray_faces(count, seed=count)
    one_by_one = np.concatenate([served.engine.probabilities(face[None]) for face in faces])
    together = served.engine.probabilities(faces)
    assert together.shape == (count, len(served.labels))
    assert np.abs(together - one_by_one).max() < 1e-5


def test_int8_graph_stays_close_to_float_and_runs_wholly_in_xnnpack(student):
    quantized = compile_classifier(student, "litert", calibration=gray_faces(64, seed=1)[:, None])
    assert quantized.engine.int8
    faces = gray_faces(32, seed=2)
    assert np.abs(quantized.engine.probabilities(faces) - _reference(student, faces)).max() < 0.1
    interpreter = quantized.engine._interpreter(1)[0]
    operators = [entry["op_name"] for entry in interpreter._get_ops_details()]
    assert operators.count("DELEGATE") == 1  # one XNNPACK partition: no operator falls back to LiteRT's kernels


@pytest.mark.parametrize("backend", ["onnx", "litert"])
def test_backend_option_serves_the_same_predict_image(student_folder, student, backend):
    served = load_classifier(student_folder, backend=backend)
    expected, got = student.predict_image(astronaut()), served.predict_image(astronaut())
    assert [face.box for face in got] == [face.box for face in expected]
    assert np.abs(np.array(list(got[0].probs.values())) - np.array(list(expected[0].probs.values()))).max() < 1e-5


def test_exported_file_carries_its_config(tmp_path, student):
    path = tmp_path / "student.tflite"
    export_tflite(student.model, student.config, path)
    loaded = load_classifier(path)
    assert isinstance(loaded.engine, LiteRtEngine) and loaded.backend == "litert"
    assert loaded.labels == student.labels and loaded.config.input_size == student.config.input_size
    assert loaded.predict_crops([]).shape == (0, len(student.labels))
    with pytest.raises(ValueError, match="Grad-CAM needs the PyTorch weights"):
        explainer(loaded)


def test_a_file_that_is_not_ours_is_refused_clearly(tmp_path):
    path = tmp_path / "other.tflite"
    path.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        load_classifier(path)


def test_only_the_grayscale_shufflenet_is_exported(student):
    from torchvision.models import resnet18

    with pytest.raises(ValueError, match="ShuffleNetV2"):
        export_tflite(resnet18(num_classes=7), student.config)


def test_concurrent_callers_get_their_own_answers(served):
    faces = gray_faces(24, seed=5)
    expected = [served.engine.probabilities(face[None]) for face in faces]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda face: served.engine.probabilities(face[None]), faces))
    assert all(np.abs(a - b).max() < 1e-6 for a, b in zip(got, expected))


def test_export_tflite_command_writes_a_servable_model(student_folder, tmp_path, capsys):
    out = tmp_path / "student.tflite"
    assert main(["export-tflite", str(out), "--model", str(student_folder)]) == 0
    assert "float32" in capsys.readouterr().out
    served, reference = load_classifier(out), load_classifier(student_folder)
    crop = reference.predict_image(astronaut())[0].aligned_crop
    assert np.abs(served.predict_crops([crop]) - reference.predict_crops([crop])).max() < 1e-5
