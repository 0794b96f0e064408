"""The face-pretrained teacher: dlib's face stages in the FFE design, trainable, saved and loaded as weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from core import PAPER_LABELS, ModelConfig, create_model, load_classifier, save_weights
from core.models import DlibFaceResNet, EFFFaceResNet, list_models
from core.models.dlib_resnet import dlib_input_tensor
from core.weights import load_weights
from tests._face_fixtures import gray_faces

ARCHITECTURE = "eff_face_resnet"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def teacher() -> EFFFaceResNet:
    torch.manual_seed(0)
    return create_model(ARCHITECTURE, num_classes=7, in_chans=1, pretrained=True).eval()


def _normalised(faces: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) grey faces as the project feeds models: (pixel / 255 - 0.5) / 0.5, (N, 1, H, W)."""
    return (torch.from_numpy(faces).float()[:, None] / 255.0 - 0.5) / 0.5


def test_registered_under_its_name():
    assert ARCHITECTURE in list_models()


@pytest.mark.parametrize("size", [48, 96])
def test_logits_and_a_spatial_map_at_the_grad_cam_layer(teacher, size):
    seen = []
    hook = teacher.ffe2.register_forward_hook(lambda _module, _inputs, output: seen.append(output.shape))
    with torch.no_grad():
        logits = teacher(torch.zeros(1, 1, size, size))
    hook.remove()
    assert logits.shape == (1, 7)
    assert len(seen) == 1 and len(seen[0]) == 4 and seen[0][1] == 1024  # (B, C, H, W): last map before pooling


def test_rgb_input_and_class_count_follow_the_arguments():
    model = create_model(ARCHITECTURE, num_classes=8, in_chans=3, pretrained=False).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 8)


def test_lowres_stem_keeps_twice_the_map_side():
    side = {}
    for stem in ("imagenet", "lowres"):
        model = create_model(ARCHITECTURE, stem=stem, pretrained=False).eval()
        with torch.no_grad():
            side[stem] = model.face_features(torch.zeros(1, 1, 64, 64)).shape[-1]
    assert side["lowres"] >= 2 * side["imagenet"]


def test_pretrained_face_stages_hold_dlibs_weights_folded(teacher):
    prefixes = ("stem.", "level4.", "level3.", "level2.")
    converted = DlibFaceResNet.from_dlib().fold_affine().state_dict()
    ours = {k: v for k, v in teacher.state_dict().items() if k.startswith(prefixes)}
    assert ours.keys() == {k for k in converted if k.startswith(prefixes)}
    assert len(ours) == 4 + 10 * 8  # stem + 10 blocks of 2 convs and 2 affines, weight and bias each
    for key, value in ours.items():
        assert torch.equal(value, converted[key]), key


def test_face_stages_compute_dlibs_function_on_a_grey_face(teacher):
    """Grey input, the fixed input layer and the folded stages give dlib's own level-2 features of that face in RGB."""
    faces = np.stack([np.asarray(Image.fromarray(face).resize((96, 96))) for face in gray_faces(2, seed=4)])
    dlib_net = DlibFaceResNet.from_dlib()
    with torch.no_grad():
        ours = teacher.face_features(_normalised(faces))
        rgb = dlib_input_tensor(np.repeat(faces[..., None], 3, axis=-1))
        theirs = dlib_net.level2(dlib_net.level3(dlib_net.level4(dlib_net.stem(rgb))))
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_without_pretrained_the_face_stages_are_random():
    random_init = create_model(ARCHITECTURE, pretrained=False)
    converted = DlibFaceResNet.from_dlib()
    assert not torch.equal(random_init.level3[0].conv1.weight, converted.level3[0].conv1.weight)


def test_training_steps_lower_the_loss_and_move_every_stage():
    torch.manual_seed(0)
    model = create_model(ARCHITECTURE, num_classes=7, in_chans=1, dropout=0.0).train()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    images, targets = _normalised(gray_faces(4, seed=1)), torch.arange(4)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    losses = []
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(model(images), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        losses.append(float(torch.nn.functional.cross_entropy(model(images), targets)))
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    for prefix in ("stem.0.", "level4.", "level2.", "ffe1.", "ffe2.", "fc."):
        assert any(
            not torch.equal(p, before[name]) for name, p in model.named_parameters() if name.startswith(prefix)
        ), prefix


def test_weights_folder_round_trip(teacher, tmp_path):
    config = ModelConfig(
        architecture=ARCHITECTURE,
        labels=list(PAPER_LABELS),
        input_size=96,
        model_kwargs={"stem": "imagenet", "dropout": 0.5},
    )
    folder = save_weights(teacher, config, tmp_path / "teacher")
    loaded, loaded_config = load_weights(folder)
    assert isinstance(loaded, EFFFaceResNet) and loaded_config.architecture == ARCHITECTURE
    x = _normalised(gray_faces(3, seed=2))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), teacher(x))
    probabilities = load_classifier(folder).predict_crops([Image.fromarray(face) for face in gray_faces(2, seed=3)])
    assert probabilities.shape == (2, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
