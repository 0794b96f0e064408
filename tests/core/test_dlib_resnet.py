"""dlib's face-recognition ResNet read in Python: the same 128-D descriptors as dlib itself, clear errors otherwise."""

from __future__ import annotations

from dataclasses import dataclass

import dlib
import numpy as np
import pytest
import torch
from PIL import Image

from core.faces.detector import landmark_model_path
from core.models.dlib_format import DlibFormatError, read_dlib_network
from core.models.dlib_resnet import Affine2d, DlibFaceResNet, dlib_input_tensor, dlib_model_path
from tests._face_fixtures import astronaut

TOLERANCE = 1e-4  # max abs difference per descriptor element (descriptors have norm ~1.5)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _photos() -> dict[str, np.ndarray]:
    """The astronaut as shot, mirrored, at 80 % scale (a smaller, softer face) and rotated by 12 degrees."""
    photo = astronaut()
    return {
        "original": np.asarray(photo),
        "mirrored": np.asarray(photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
        "scaled": np.asarray(photo.resize((410, 410), Image.Resampling.BICUBIC)),
        "rotated": np.asarray(photo.rotate(12, resample=Image.Resampling.BICUBIC, fillcolor=(128, 128, 128))),
    }


@dataclass
class Case:
    chip: np.ndarray  # dlib.get_face_chip: 150x150 RGB, padding 0.25
    from_chip: np.ndarray  # dlib's descriptor of the chip
    from_photo: np.ndarray  # dlib's descriptor computed from the photo and the 5 landmarks


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    """Each photo's best-scoring face through dlib once: its chip and dlib's two descriptors."""
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(landmark_model_path()))
    recognizer = dlib.face_recognition_model_v1(str(dlib_model_path()))
    found = {}
    for name, photo in _photos().items():
        boxes, scores, _ = detector.run(photo, 0, 0.0)
        assert len(boxes), f"dlib found no face in the {name} photo"
        shape = predictor(photo, boxes[int(np.argmax(scores))])
        chip = dlib.get_face_chip(photo, shape, size=150, padding=0.25)
        found[name] = Case(
            chip,
            np.asarray(recognizer.compute_face_descriptor(chip), dtype=np.float32),
            np.asarray(recognizer.compute_face_descriptor(photo, shape), dtype=np.float32),
        )
    return found


@pytest.fixture(scope="module")
def ours(cases) -> dict[str, np.ndarray]:
    """The converted network's descriptors of every chip, in one batch."""
    model = DlibFaceResNet.from_dlib()
    with torch.no_grad():
        batch = model(dlib_input_tensor(np.stack([case.chip for case in cases.values()]))).numpy()
    return dict(zip(cases, batch))


@pytest.mark.parametrize("variant", ["original", "mirrored", "scaled", "rotated"])
def test_descriptor_matches_dlib_on_aligned_chips(variant, cases, ours):
    assert np.abs(ours[variant] - cases[variant].from_chip).max() < TOLERANCE
    assert np.abs(ours[variant] - cases[variant].from_photo).max() < TOLERANCE


def test_one_chip_alone_gives_the_batched_descriptor(cases, ours):
    model = DlibFaceResNet.from_dlib()
    with torch.no_grad():
        alone = model(dlib_input_tensor(cases["rotated"].chip))[0].numpy()
    np.testing.assert_allclose(alone, ours["rotated"], atol=1e-5)


def test_folding_the_affines_keeps_the_descriptors(cases, ours):
    model = DlibFaceResNet.from_dlib().fold_affine()
    assert all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in model.modules() if isinstance(m, Affine2d))
    with torch.no_grad():
        folded = model(dlib_input_tensor(np.stack([case.chip for case in cases.values()]))).numpy()
    assert np.abs(folded - np.stack(list(ours.values()))).max() < TOLERANCE


def test_same_face_stays_within_dlibs_threshold_and_noise_does_not(ours):
    """As dlib documents its descriptor: the same person under changes within 0.6, a random chip beyond it."""
    model = DlibFaceResNet.from_dlib()
    noise = np.random.default_rng(0).integers(0, 256, (150, 150, 3), dtype=np.uint8)
    with torch.no_grad():
        random_chip = model(dlib_input_tensor(noise))[0].numpy()
    assert np.linalg.norm(ours["original"] - ours["scaled"]) < 0.6
    assert np.linalg.norm(ours["original"] - ours["rotated"]) < 0.6
    assert np.linalg.norm(ours["original"] - random_chip) > 0.6


def test_reader_lists_dlibs_layers():
    network = read_dlib_network(dlib_model_path())
    kinds = [layer.kind for layer in network.layers]
    assert kinds.count("con") == 29 and kinds.count("fc") == 1 and kinds.count("add_prev") == 14
    assert network.input.options["size"] == (150, 150)
    assert network.loss.kind == "loss_metric"
    first = network.layers[0]
    assert first.weights["weight"].shape == (32, 3, 7, 7) and first.options["stride"] == (2, 2)


def test_truncated_file_is_a_clear_error():
    data = dlib_model_path().read_bytes()
    with pytest.raises(DlibFormatError, match="ends early"):
        read_dlib_network(data[: len(data) // 2])


def test_another_dlib_model_is_a_clear_error():
    with pytest.raises(DlibFormatError):
        read_dlib_network(landmark_model_path())


def test_input_must_be_rgb_chips():
    with pytest.raises(ValueError, match="RGB chips"):
        dlib_input_tensor(np.zeros((150, 150), dtype=np.uint8))
