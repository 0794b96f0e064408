"""Grad-CAM: target layers per architecture, maps on crop and photo, fine enough to read, faithful, thread-safe."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps

from core import PAPER_LABELS, ModelConfig, create_model, load_classifier, save_weights
from core.classifier import Classifier, shipped_weights_folder
from core.explain import (
    DEFAULT_RECIPE,
    EXTRA_TARGETS,
    TARGET_LAYERS,
    CamRecipe,
    GradCamExplainer,
    explainer,
    overlay_heatmap,
    target_layer,
)
from core.explain_bench import deletion_drops, effective_grid, explain_bench
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
    explanation = explainer(student).explain_face(face, photo.size)
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
    maps = {label: explainer(student).crop_heatmap(face.aligned_crop, label)[0] for label in ("happy", "sad")}
    assert explainer(student) is explainer(student)
    assert not np.allclose(maps["happy"], maps["sad"])
    with pytest.raises(ValueError, match="unknown class"):
        explainer(student).crop_heatmap(face.aligned_crop, "bored")


def test_explaining_leaves_ordinary_predictions_unchanged(student):
    crop = student.predict_image(astronaut())[0].aligned_crop
    before = student.predict_crops([crop])
    explainer(student).crop_heatmap(crop)
    np.testing.assert_array_equal(before, student.predict_crops([crop]))


def test_teacher_gets_a_map_too(tmp_path):
    torch.manual_seed(1)
    config = ModelConfig(
        architecture="eff_resnet18", labels=list(PAPER_LABELS), model_kwargs={"ffe_channels": [64, 128]}
    )
    model = create_model(config.architecture, num_classes=7, ffe_channels=(64, 128)).eval()
    teacher = load_classifier(save_weights(model, config, tmp_path / "teacher"))
    photo = astronaut()
    explanations = explainer(teacher).explain_image(photo)
    assert len(explanations) == 1 and explanations[0].image_heatmap.shape == (photo.height, photo.width)
    overlay = overlay_heatmap(photo, explanations[0].image_heatmap)
    assert overlay.size == photo.size and overlay.mode == "RGB"


# --- resolution, faithfulness and thread safety of the served recipe -------------------------------------


@pytest.fixture(scope="module", name="shipped")
def shipped_fixture():
    """The shipped student and teacher (they ship inside the package, so no shared data is needed)."""
    return {name: load_classifier(shipped_weights_folder(name)) for name in ("student", "teacher")}


@pytest.fixture(scope="module", name="face_crops")
def face_crops_fixture(shipped):
    """A few real face crops: the astronaut's aligned face, mirrored, darker, brighter and slightly turned."""
    crop = shipped["student"].predict_image(astronaut())[0].aligned_crop
    return [
        crop,
        ImageOps.mirror(crop),
        ImageEnhance.Brightness(crop).enhance(0.7),
        ImageEnhance.Contrast(crop).enhance(1.3),
        crop.rotate(8, resample=Image.BILINEAR, fillcolor=(128, 128, 128)),
    ]


@pytest.mark.parametrize("size", [2, 5, 8, 13])
def test_effective_grid_recovers_the_grid_a_map_was_enlarged_from(size):
    grid = np.random.default_rng(size).random((size, size)).astype(np.float32)
    heat = np.asarray(Image.fromarray(grid, mode="F").resize((96, 96), Image.BILINEAR))
    assert effective_grid(heat) == size
    assert effective_grid(heat, fit="block") > size  # block-constant cells need more of them for the same ramps
    assert effective_grid(np.full((48, 48), 0.3)) == 1


@pytest.mark.parametrize("name", ["student", "teacher"])
def test_shipped_maps_on_a_real_face_resolve_at_least_8x8(shipped, face_crops, name):
    heat, label = explainer(shipped[name]).crop_heatmap(face_crops[0])
    assert heat.shape == face_crops[0].size[::-1] and 0.0 <= heat.min() and heat.max() <= 1.0
    assert effective_grid(heat) >= 8
    # the classic last-layer map of the same face stays a 2x2 blur: the recipe is what resolves features
    classic, _ = GradCamExplainer(shipped[name], CamRecipe("gradcam", (32,))).crop_heatmap(face_crops[0], label)
    assert effective_grid(classic) <= 3


@pytest.mark.parametrize("name", ["student", "teacher"])
def test_masking_the_map_hurts_more_than_masking_random_pixels(shipped, face_crops, name):
    classifier = shipped[name]
    rng = np.random.default_rng(0)
    top, random = [], []
    for crop in face_crops:
        heat, label = explainer(classifier).crop_heatmap(crop)
        drops = deletion_drops(classifier, crop, heat, classifier.labels.index(label), rng)
        top.append(drops["top"])
        random.append(drops["random"])
    assert np.mean(top) / np.mean(random) > 1.0


def test_concurrent_explanations_each_get_their_own_map(student):
    face = student.predict_image(astronaut())[0]
    crops = [face.aligned_crop, ImageOps.mirror(face.aligned_crop), ImageOps.flip(face.aligned_crop)]
    jobs = [(crop, label) for crop in crops for label in ("happy", "sad", "angry", None)]
    expected = [explainer(student).crop_heatmap(crop, label) for crop, label in jobs]
    barrier = threading.Barrier(len(jobs))
    results: dict[int, tuple[np.ndarray, str]] = {}

    def explain(number: int) -> None:
        crop, label = jobs[number]
        barrier.wait()
        for _ in range(2):
            results[number] = explainer(student).crop_heatmap(crop, label)

    threads = [threading.Thread(target=explain, args=(number,)) for number in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for number, (heat, label) in enumerate(expected):
        assert results[number][1] == label
        np.testing.assert_allclose(results[number][0], heat, atol=1e-6)


@pytest.mark.parametrize("architecture", sorted(TARGET_LAYERS))
def test_every_architecture_is_explained_on_a_map_of_about_8x8(architecture):
    config = ModelConfig(architecture=architecture, labels=list(PAPER_LABELS))
    classifier = Classifier(create_model(architecture, num_classes=7, in_chans=1), config)
    explainer = GradCamExplainer(classifier)
    extra = EXTRA_TARGETS.get(architecture, ())  # a face head is also explained on dlib's map
    assert explainer.recipe == DEFAULT_RECIPE and len(explainer.target_names) == len(DEFAULT_RECIPE.strides) + len(
        extra
    )
    assert 7 <= min(explainer.target_sides) <= 9  # dlib's unpadded face stages give 7x7 where others give 8x8
    heat, label = explainer.crop_heatmap(Image.new("L", (48, 48), 100), "happy")
    assert heat.shape == (48, 48) and label == "happy"


def test_a_recipe_the_model_cannot_serve_is_a_clear_error(student):
    with pytest.raises(ValueError, match="no feature map of stride"):
        GradCamExplainer(student, CamRecipe("gradcam", (64,)))
    with pytest.raises(ValueError, match="unknown CAM method"):
        CamRecipe("magic", (8,))


def test_explain_bench_reports_grid_and_deletion_per_model_and_option(student, tmp_path):
    face = student.predict_image(astronaut())[0].aligned_crop
    for number, variant in enumerate([face, ImageOps.mirror(face), ImageEnhance.Brightness(face).enhance(0.8)]):
        folder = tmp_path / ("happy" if number % 2 else "neutral")
        folder.mkdir(exist_ok=True)
        variant.save(folder / f"face{number}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    report = explain_bench(tmp_path, models=[student], limit=2, options=[CamRecipe("gradcam", (32,))])
    assert report["faces"] == 2 and report["recipe"] == DEFAULT_RECIPE.name
    (row,) = report["models"].values()
    assert row["effective_grid"] >= 8 and row["layer_grid"] >= 8
    for key in ("deletion_score", "deletion_score_scattered", "top_drop", "random_drop", "ms_per_explanation"):
        assert np.isfinite(row[key])
    (option,) = row["options"]
    assert option["recipe"] == "gradcam-s32" and option["layer_grid"] == 2 and option["effective_grid"] <= 3


def test_explain_bench_on_a_folder_without_images_says_so(tmp_path):
    (tmp_path / "readme.txt").write_text("no faces here")
    with pytest.raises(ValueError, match="found no readable images"):
        explain_bench(tmp_path, models=[])
    with pytest.raises(ValueError, match="is not a folder"):
        explain_bench(tmp_path / "missing", models=[])
