"""Grad-CAM: one target layer per architecture, maps on the crop and on the photo, concentrated on the face."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core import PAPER_LABELS, ModelConfig, create_model, load_classifier, save_weights
from core.explain import TARGET_LAYERS, overlay_heatmap, target_layer
from tests._face_fixtures import astronaut, student_fixture, student_folder_fixture  # noqa: F401


@pytest.mark.parametrize("architecture", sorted(TARGET_LAYERS))
def test_every_architecture_has_a_spatial_target_layer(architecture):
    model = create_model(architecture, num_classes=7, in_chans=1).eval()
    seen = []
    hook = target_layer(model, architecture).register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
    with torch.no_grad():
        model(torch.zeros(1, 1, 64, 64))
    hook.remove()
    assert len(seen) == 1 and len(seen[0]) == 4  # a (B, C, H, W) feature map


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(ValueError, match="no Grad-CAM target layer"):
        target_layer(torch.nn.Linear(2, 2), "mystery_net")


def test_student_map_on_the_photo_is_concentrated_on_the_face(student):
    photo = astronaut()
    face = student.predict_image(photo)[0]
    explanation = student.gradcam.explain_face(face, photo.size)
    assert explanation.label == face.label
    assert explanation.crop_heatmap.shape == face.aligned_crop.size[::-1]
    heat = explanation.image_heatmap
    assert heat.shape == (photo.height, photo.width) and heat.max() > 0.5
    x0, y0, x1, y1 = face.box
    margin = 0.5 * (x1 - x0)
    near_face = heat[int(y0 - margin) : int(y1 + margin), int(x0 - margin) : int(x1 + margin)].sum()
    assert near_face / heat.sum() > 0.99
    assert heat[:, : int(x0 - margin)].max() == 0 and heat[int(y1 + margin) :, :].max() == 0


def test_a_chosen_class_changes_the_map_and_the_cam_is_built_once(student):
    face = student.predict_image(astronaut())[0]
    maps = {label: student.gradcam.crop_heatmap(face.aligned_crop, label)[0] for label in ("happy", "sad")}
    assert student.gradcam is student.gradcam
    assert not np.allclose(maps["happy"], maps["sad"])
    with pytest.raises(ValueError, match="unknown class"):
        student.gradcam.crop_heatmap(face.aligned_crop, "bored")


def test_explaining_leaves_ordinary_predictions_unchanged(student):
    crop = student.predict_image(astronaut())[0].aligned_crop
    before = student.predict_crops([crop])
    student.gradcam.crop_heatmap(crop)
    np.testing.assert_array_equal(before, student.predict_crops([crop]))


def test_teacher_gets_a_map_too(tmp_path):
    torch.manual_seed(1)
    config = ModelConfig(
        architecture="eff_resnet18", labels=list(PAPER_LABELS), model_kwargs={"ffe_channels": [64, 128]}
    )
    model = create_model(config.architecture, num_classes=7, ffe_channels=(64, 128)).eval()
    teacher = load_classifier(save_weights(model, config, tmp_path / "teacher"))
    photo = astronaut()
    explanations = teacher.gradcam.explain_image(photo)
    assert len(explanations) == 1 and explanations[0].image_heatmap.shape == (photo.height, photo.width)
    overlay = overlay_heatmap(photo, explanations[0].image_heatmap)
    assert overlay.size == photo.size and overlay.mode == "RGB"
