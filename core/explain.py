"""Grad-CAM for every architecture we ship: which part of the face drove a prediction.

The last feature map of our models is 2x2 at the 64 px input, too coarse to tell eyes from mouth.
A :class:`CamRecipe` says which ``pytorch-grad-cam`` method explains, on which feature maps (named
by their output stride, so one recipe fits student and teacher) and on how large a copy of the
crop; :data:`DEFAULT_RECIPE` is the one ``core.explain_bench`` measured best (see its docstring).
The CAM object is built once per loaded classifier (:func:`explainer`), on a private copy of its model, so the hooks
never slow down or alter ordinary inference; a lock keeps concurrent calls from mixing the
activations the CAM object holds between forward and backward.
"""

from __future__ import annotations

import copy
import math
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

if TYPE_CHECKING:
    from .classifier import Classifier
    from .faces import Face

__all__ = [
    "CAM_METHODS",
    "DEFAULT_RECIPE",
    "FEATURE_STAGES",
    "TARGET_LAYERS",
    "CamRecipe",
    "Explanation",
    "GradCamExplainer",
    "explainer",
    "feature_stages",
    "overlay_heatmap",
    "target_layer",
    "warp_to_image",
    "EXTRA_TARGETS",
]

# architecture name in config.json -> attribute holding the last spatial feature map
TARGET_LAYERS: dict[str, str] = {
    "shufflenet_v2": "conv5",
    "eff_resnet18": "ffe2",
    "eff_face_resnet": "ffe2",
    "resnet18": "layer4",
    "shufflenet_v2_face_head": "student.conv5",
}
# architecture -> its stages, shallow to deep (other architectures: their top-level children are probed)
FEATURE_STAGES: dict[str, tuple[str, ...]] = {
    "shufflenet_v2": ("maxpool", "stage2", "stage3", "stage4", "conv5"),
    "eff_resnet18": ("layer1", "layer2", "ffe1", "ffe2"),
    "eff_face_resnet": ("level4", "level3", "level2", "ffe1", "ffe2"),  # unpadded dlib convs: strides ~5, 9, 21, 32
    "resnet18": ("layer1", "layer2", "layer3", "layer4"),
    # strided from the 64 px the student inside reads (its stage2 is 8x8 of the 96 px face)
    "shufflenet_v2_face_head": ("student.stage2", "student.stage3", "student.stage4", "student.conv5"),
}
# architecture -> maps explained beside the recipe's: a face head also decides from dlib's 8x8 level
EXTRA_TARGETS: dict[str, tuple[str, ...]] = {"shufflenet_v2_face_head": ("face.level2",)}
# recipe method -> pytorch-grad-cam class name
CAM_METHODS: dict[str, str] = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "hirescam": "HiResCAM",
    "layercam": "LayerCAM",
}


@dataclass(frozen=True)
class CamRecipe:
    """How to explain: a CAM method, target feature maps by output stride, and the explaining input size.

    ``strides=(8,)`` targets the deepest stage whose map is 1/8 of the input (8x8 at 64 px);
    several strides fuse their maps (pytorch-grad-cam averages the per-layer normalised maps).
    ``upsample`` runs the explaining forward on the crop enlarged that many times (the prediction
    itself is unchanged); ``flip`` averages the map with the mirrored crop's, as flip-TTA predicts.
    """

    method: str = "gradcam"
    strides: tuple[int, ...] = (32,)
    upsample: int = 1
    flip: bool = False

    @property
    def name(self) -> str:
        name = f"{self.method}-s{'+'.join(str(s) for s in self.strides)}"
        return name + (f"-x{self.upsample}" if self.upsample != 1 else "") + ("-flip" if self.flip else "")

    def __post_init__(self) -> None:
        if self.method not in CAM_METHODS:
            raise ValueError(f"unknown CAM method {self.method!r}; choose one of {sorted(CAM_METHODS)}")
        if not self.strides or self.upsample < 1:
            raise ValueError("a CAM recipe needs at least one target stride and an upsample factor of 1 or more")


# The measured choice (core.explain_bench, 150 FER+ validation faces, both shipped models): HiResCAM (gradient x
# activation per position, no spatial averaging) on the stride-8 stage, 8x8 at 64 px. Effective grid 8 for both
# (2 before); deletion score 2.9 student, 3.3 teacher (2.8 and 1.8 with Grad-CAM on the last layer).
DEFAULT_RECIPE = CamRecipe(method="hirescam", strides=(8,))


def target_layer(model: nn.Module, architecture: str) -> nn.Module:
    """The last spatial feature map of ``model`` built as ``architecture`` (classic Grad-CAM's layer)."""
    try:
        return model.get_submodule(TARGET_LAYERS[architecture])
    except KeyError:
        raise ValueError(f"no Grad-CAM target layer known for {architecture!r}; add it to TARGET_LAYERS") from None


def _probe_sides(model: nn.Module, names: tuple[str, ...], input_size: int, in_chans: int) -> dict[str, int]:
    """Name -> spatial side of that module's 4D output (> 1 px) in one forward of a blank ``input_size`` image."""
    sides: dict[str, int] = {}
    hooks = []
    for name in names:

        def record(_module: nn.Module, _inputs: object, output: object, name: str = name) -> None:
            if isinstance(output, torch.Tensor) and output.dim() == 4 and output.shape[-1] > 1:
                sides[name] = int(output.shape[-1])

        hooks.append(model.get_submodule(name).register_forward_hook(record))
    try:
        with torch.no_grad():
            model(torch.zeros(1, in_chans, input_size, input_size))
    finally:
        for hook in hooks:
            hook.remove()
    return sides


def feature_stages(model: nn.Module, architecture: str, input_size: int, in_chans: int = 1) -> dict[int, str]:
    """Output stride -> name of the deepest stage with that stride, found by one probing forward."""
    names = FEATURE_STAGES.get(architecture) or tuple(name for name, _ in model.named_children())
    sides = _probe_sides(model, names, input_size, in_chans)
    # a model that reads its input at another side inside (a face head's student) gives its strides from that
    reference = getattr(model, "feature_input_size", input_size)
    by_stride: dict[int, str] = {}
    for name in names:  # shallow to deep: a deeper stage of the same stride wins
        if name in sides:
            by_stride[max(1, round(reference / sides[name]))] = name
    if not by_stride:
        raise ValueError(f"no Grad-CAM target layer known for {architecture!r}; add it to FEATURE_STAGES")
    return by_stride


def _nearest_stage(stages: dict[int, str], stride: int) -> str | None:
    """The stage of exactly ``stride``, else the one nearest it within a factor of 1.5 (finer on a tie)."""
    if stride in stages:
        return stages[stride]
    distance = {available: abs(math.log(available / stride)) for available in stages}
    best = min(sorted(distance), key=distance.__getitem__)
    return stages[best] if distance[best] <= math.log(1.5) else None


def _recipe_layers(model: nn.Module, architecture: str, input_size: int, in_chans: int, recipe: CamRecipe) -> list[str]:
    stages = feature_stages(model, architecture, input_size, in_chans)
    names = [_nearest_stage(stages, stride) for stride in recipe.strides]
    missing = [stride for stride, name in zip(recipe.strides, names) if name is None]
    if missing:
        raise ValueError(
            f"{architecture} has no feature map of stride {missing} at {input_size} px; it has {sorted(stages)}"
        )
    return [name for name in names if name is not None]


@dataclass
class Explanation:
    """Grad-CAM heat maps in [0, 1] for one face and one class."""

    label: str
    crop_heatmap: np.ndarray  # over the face's aligned crop (crop side x crop side)
    image_heatmap: np.ndarray  # over the whole photo (H x W), zero outside the crop


class GradCamExplainer:
    """Grad-CAM for one classifier; get it through :func:`explainer` so it is built once.

    Thread-safe: calls from several threads are serialised on one lock (the CAM object holds the
    activations of the call in flight); see ``core.explain_bench.thread_cost`` for what it costs.
    """

    def __init__(self, classifier: Classifier, recipe: CamRecipe | None = None) -> None:
        import pytorch_grad_cam

        if classifier.model is None:
            raise ValueError("Grad-CAM needs the PyTorch weights; this classifier only has an exported graph")
        self.classifier = classifier
        self.recipe = recipe or DEFAULT_RECIPE
        config = classifier.config
        model = copy.deepcopy(classifier.model).eval()
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        self.target_names = _recipe_layers(model, config.architecture, config.input_size, config.in_chans, self.recipe)
        self.target_names += EXTRA_TARGETS.get(config.architecture, ())
        # side of each target map at the explaining input: the finest one bounds the map's detail
        explaining_size = config.input_size * self.recipe.upsample
        sides = _probe_sides(model, tuple(self.target_names), explaining_size, config.in_chans)
        self.target_sides = [sides[name] for name in self.target_names]
        cam_class = getattr(pytorch_grad_cam, CAM_METHODS[self.recipe.method])
        self._cam = cam_class(model=model, target_layers=[model.get_submodule(name) for name in self.target_names])
        self._lock = threading.Lock()

    def _class_index(self, label: str | int | None, crop: Image.Image) -> int:
        labels = self.classifier.labels
        if label is None:
            return int(np.argmax(self.classifier.predict_crops([crop])[0]))
        if isinstance(label, int):
            if not 0 <= label < len(labels):
                raise ValueError(f"class index {label} is outside 0..{len(labels) - 1}")
            return label
        if label not in labels:
            raise ValueError(f"unknown class {label!r}; choose one of {list(labels)}")
        return labels.index(label)

    def _input(self, crop: Image.Image) -> torch.Tensor:
        """The crop preprocessed as the classifier does, enlarged ``upsample`` times (and mirrored for ``flip``)."""
        import torch.nn.functional as F

        batch = self.classifier.crops_to_tensor([crop])
        if self.recipe.upsample != 1:
            batch = F.interpolate(batch, scale_factor=self.recipe.upsample, mode="bilinear", align_corners=False)
        return torch.cat([batch, torch.flip(batch, dims=[3])]) if self.recipe.flip else batch

    def raw_heatmap(self, crop: Image.Image, index: int) -> np.ndarray:
        """The CAM at the explaining input's resolution, in [0, 1], for class ``index``."""
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        batch = self._input(crop)
        with self._lock:
            try:
                heat = self._cam(input_tensor=batch, targets=[ClassifierOutputTarget(index)] * len(batch))
            finally:  # drop this call's activations, gradients and graph instead of holding them until the next
                self._cam.activations_and_grads.clear()
                self._cam.outputs = None
        if self.recipe.flip:
            heat = (heat[0] + heat[1][:, ::-1]) / 2
            return (heat - heat.min()) / (heat.max() - heat.min() + 1e-7)
        return heat[0]

    def crop_heatmap(self, crop: Image.Image, label: str | int | None = None) -> tuple[np.ndarray, str]:
        """Heat map over ``crop`` (its own size) for ``label`` (default: the predicted class)."""
        index = self._class_index(label, crop)
        heat = self.raw_heatmap(crop, index)
        resized = Image.fromarray(heat.astype(np.float32), mode="F").resize(crop.size, Image.BILINEAR)
        return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0), self.classifier.labels[index]

    def explain_face(self, face: Face, image_size: tuple[int, int], label: str | int | None = None) -> Explanation:
        """Heat map on the aligned crop and the same map warped back onto a photo of ``image_size`` (w, h)."""
        crop_heat, name = self.crop_heatmap(face.aligned_crop, label)
        return Explanation(name, crop_heat, warp_to_image(crop_heat, face.crop_to_image, image_size))

    def explain_image(
        self, image: Image.Image, faces: list[Face] | None = None, label: str | int | None = None
    ) -> list[Explanation]:
        """One explanation per face (detected now when ``faces`` is None), in the faces' order."""
        from .images import to_rgb

        upright = to_rgb(image)
        faces = self.classifier.predict_image(upright) if faces is None else faces
        return [self.explain_face(face, upright.size, label) for face in faces]


_EXPLAINERS: weakref.WeakKeyDictionary[Classifier, GradCamExplainer] = weakref.WeakKeyDictionary()
_EXPLAINERS_LOCK = threading.Lock()


def explainer(classifier: Classifier) -> GradCamExplainer:
    """The default-recipe Grad-CAM of ``classifier``, built on first use and kept as long as the classifier is."""
    with _EXPLAINERS_LOCK:  # building takes a moment: concurrent first callers wait for one build
        found = _EXPLAINERS.get(classifier)
        if found is None:
            # through a proxy: an explainer holding its key would keep every classifier ever explained alive
            found = _EXPLAINERS[classifier] = GradCamExplainer(weakref.proxy(classifier))
        return found


def warp_to_image(crop_heat: np.ndarray, crop_to_image: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Warp a crop-aligned map into photo pixels with the face's crop-to-photo affine (zero elsewhere)."""
    to_crop = np.linalg.inv(np.vstack([crop_to_image, [0.0, 0.0, 1.0]]))[:2]
    (a, b, c), (d, e, f) = to_crop
    # PIL samples at pixel centres (+0.5); dlib's affine maps integer pixel indices.
    data = (a, b, c - 0.5 * (a + b) + 0.5, d, e, f - 0.5 * (d + e) + 0.5)
    source = Image.fromarray(crop_heat.astype(np.float32), mode="F")
    warped = source.transform(image_size, Image.AFFINE, data, resample=Image.BILINEAR, fillcolor=0.0)
    return np.clip(np.asarray(warped, dtype=np.float32), 0.0, 1.0)


def overlay_heatmap(image: Image.Image, heatmap: np.ndarray, weight: float = 0.5) -> Image.Image:
    """The photo or crop with a jet-coloured heat map blended over it (``pytorch-grad-cam``'s overlay)."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    from .images import to_rgb

    rgb = np.asarray(to_rgb(image), dtype=np.float32) / 255.0
    if heatmap.shape != rgb.shape[:2]:
        raise ValueError(f"heat map {heatmap.shape} does not match image {rgb.shape[:2]}")
    return Image.fromarray(show_cam_on_image(rgb, heatmap.astype(np.float32), use_rgb=True, image_weight=1 - weight))
