"""ONNX Runtime serving: export, parity with PyTorch, int8, and the same predict API."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import load_classifier
from core.classifier import compile_classifier
from core.explain import explainer
from core.onnx_backend import export_onnx
from tests._face_fixtures import astronaut, gray_faces, student_fixture, student_folder_fixture  # noqa: F401


def test_onnx_runtime_agrees_with_pytorch(student):
    served = compile_classifier(student, "onnx")
    faces = gray_faces(16)
    reference = student.predict_gray_batch(torch.from_numpy(faces)[:, None])
    assert np.abs(served.engine.probabilities(faces) - reference).max() < 1e-5
    assert np.abs(served.predict_gray_batch(torch.from_numpy(faces)[:, None]) - reference).max() < 1e-5


def test_exported_file_carries_its_config(tmp_path, student):
    path = tmp_path / "student.onnx"
    export_onnx(student.model, student.config, path)
    loaded = load_classifier(path)
    assert loaded.labels == student.labels and loaded.config.input_size == student.config.input_size
    assert loaded.predict_crops([]).shape == (0, len(student.labels))
    with pytest.raises(ValueError, match="Grad-CAM needs the PyTorch weights"):
        explainer(loaded)


def test_int8_export_stays_close_to_float(student):
    calibration = gray_faces(64, seed=1)[:, None]
    quantized = compile_classifier(student, "onnx", calibration=calibration)
    assert quantized.engine.int8
    faces = gray_faces(32, seed=2)
    reference = student.predict_gray_batch(torch.from_numpy(faces)[:, None])
    assert np.abs(quantized.engine.probabilities(faces) - reference).max() < 0.1


def test_unknown_backend_is_refused(student_folder):
    with pytest.raises(ValueError, match="unknown backend"):
        load_classifier(student_folder, backend="tensorrt")


@pytest.mark.parametrize("input_size", [48, 64])
def test_routed_export_model_computes_what_torchvision_computes(student, input_size):
    from core.shufflenet_export import ShuffleNetForExport

    before = {name: tensor.clone() for name, tensor in student.model.state_dict().items()}
    routed = ShuffleNetForExport(student.model)
    faces = torch.randn(3, 1, input_size, input_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(routed(faces), student.model(faces), atol=1e-4)
    # The weights it permutes are its own copy: the served model is untouched.
    assert all(torch.equal(before[name], tensor) for name, tensor in student.model.state_dict().items())
