"""A model reads a photo's face at its own ``face_size``: FER+'s 48 px for FER+-trained weights, its input size
for one retrained on sharp photo faces; every backend and every entry point reads it the same way."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from core import load_classifier
from core.classifier import Classifier, compile_classifier
from core.data import preprocess_batch, to_gray_array
from core.onnx_backend import export_onnx
from tests._face_fixtures import astronaut


def _aligned_crop() -> Image.Image:
    """A 96 px face, the side of the photo pipeline's aligned crop."""
    return astronaut().crop((170, 60, 290, 200)).resize((96, 96), Image.BILINEAR)


def _face(crop: Image.Image, side: int) -> torch.Tensor:
    return torch.from_numpy(to_gray_array(crop, side).copy())[None, None]


@pytest.fixture(scope="module")
def student() -> Classifier:
    """The shipped student (trained weights answer differently for different inputs; random ones barely do)."""
    return load_classifier("student")


@pytest.fixture(scope="module")
def sharp(student) -> Classifier:
    return Classifier(student.model, dataclasses.replace(student.config, face_size=64))


def test_the_shipped_student_reads_a_photo_face_at_48_px(student):
    crop = _aligned_crop()
    assert student.config.face_size == 48
    assert np.allclose(student.predict_crops([crop]), student.predict_gray_batch(_face(crop, 48)), atol=1e-6)
    # a face held sharper (the store keeps 96 px) is reduced to 48 px first, as the photo's crop is
    assert np.allclose(student.predict_gray_batch(_face(crop, 96)), student.predict_crops([crop]), atol=1e-6)


def test_a_sharp_model_reads_the_same_face_at_64_px(student, sharp):
    crop = _aligned_crop()
    assert np.allclose(sharp.predict_crops([crop]), sharp.predict_gray_batch(_face(crop, 64)), atol=1e-6)
    assert np.allclose(sharp.predict_gray_batch(_face(crop, 96)), sharp.predict_crops([crop]), atol=1e-6)
    # the same weights see the detail a 48 px face lacks, so they answer differently
    assert np.abs(sharp.predict_crops([crop]) - student.predict_crops([crop])).max() > 1e-4
    tensor = sharp.crops_to_tensor([crop])  # what Grad-CAM explains: the face as this model reads it
    config = sharp.config
    assert torch.equal(tensor, preprocess_batch(_face(crop, 64), config.input_size, config.mean, config.std))


@pytest.mark.parametrize("backend", ["onnx", "litert"])
def test_compiled_engines_read_faces_at_the_models_face_size(sharp, backend):
    crop = _aligned_crop()
    served = compile_classifier(sharp, backend)
    assert np.abs(served.predict_crops([crop]) - sharp.predict_crops([crop])).max() < 1e-4
    # 48 px faces (FER+'s benchmark, int8 calibration) still go in as they are and are enlarged by the engine
    fer_faces = np.stack([to_gray_array(crop, 48), to_gray_array(crop.rotate(10), 48)])
    reference = sharp.predict_gray_batch(torch.from_numpy(fer_faces)[:, None])
    assert np.abs(served.engine.probabilities(fer_faces) - reference).max() < 1e-4


def test_an_exported_file_keeps_its_face_size(sharp, tmp_path):
    path = tmp_path / "sharp.onnx"
    export_onnx(sharp.model, sharp.config, path)
    loaded = load_classifier(path)
    assert loaded.config.face_size == 64
    crop = _aligned_crop()
    assert np.abs(loaded.predict_crops([crop]) - sharp.predict_crops([crop])).max() < 1e-4
