"""Grad-CAM for every architecture we ship: which part of the face drove a prediction.

The one place that knows each model's target layer (the last feature map before pooling). The
CAM object is built once per loaded classifier, on a private copy of its model, so the hooks
``pytorch-grad-cam`` installs never slow down or alter ordinary inference.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch.nn as nn
from PIL import Image

if TYPE_CHECKING:
    from .classifier import Classifier
    from .faces import Face

__all__ = ["TARGET_LAYERS", "Explanation", "GradCamExplainer", "target_layer", "overlay_heatmap"]

# architecture name in config.json -> attribute holding the last spatial feature map
TARGET_LAYERS: dict[str, str] = {"shufflenet_v2": "conv5", "eff_resnet18": "ffe2", "resnet18": "layer4"}


def target_layer(model: nn.Module, architecture: str) -> nn.Module:
    """The Grad-CAM layer of ``model`` built as ``architecture``."""
    try:
        return getattr(model, TARGET_LAYERS[architecture])
    except KeyError:
        raise ValueError(f"no Grad-CAM target layer known for {architecture!r}; add it to TARGET_LAYERS") from None


@dataclass
class Explanation:
    """Grad-CAM heat maps in [0, 1] for one face and one class."""

    label: str
    crop_heatmap: np.ndarray  # over the face's aligned crop (crop side x crop side)
    image_heatmap: np.ndarray  # over the whole photo (H x W), zero outside the crop


class GradCamExplainer:
    """Grad-CAM for one classifier; get it through ``classifier.gradcam`` so it is built once."""

    def __init__(self, classifier: Classifier) -> None:
        from pytorch_grad_cam import GradCAM

        if classifier.model is None:
            raise ValueError("Grad-CAM needs the PyTorch weights; this classifier only has an ONNX graph")
        self.classifier = classifier
        model = copy.deepcopy(classifier.model).eval()
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        self._cam = GradCAM(model=model, target_layers=[target_layer(model, classifier.config.architecture)])

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

    def crop_heatmap(self, crop: Image.Image, label: str | int | None = None) -> tuple[np.ndarray, str]:
        """Heat map over ``crop`` (its own size) for ``label`` (default: the predicted class)."""
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        index = self._class_index(label, crop)
        batch = self.classifier.crops_to_tensor([crop])
        heat = self._cam(input_tensor=batch, targets=[ClassifierOutputTarget(index)])[0]
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
