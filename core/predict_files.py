"""Classify every face of many photos, one result per file: what ``tsnet predict`` runs over its inputs.

A bad file (missing, empty, not an image, too large) becomes a one-line ``error`` in its result and never
raises, so one unreadable photo cannot stop a folder of thousands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .data.folder import list_images
from .explain import explainer
from .images import ImageError, open_image

__all__ = ["collect_inputs", "predict_file", "predict_files", "save_cams"]


def collect_inputs(paths: list[str]) -> list[Path]:
    """Files as given, folders expanded to the images below them (sorted); missing paths are kept to report."""
    found: list[Path] = []
    for text in paths:
        path = Path(text)
        found.extend(list_images(path) if path.is_dir() else [path])
    return found


def save_cams(classifier: Any, image: Any, faces: list[Any], stem: Path) -> list[Path]:
    """``<stem>_cam.png``: every face's Grad-CAM on the photo; ``<stem>_face<i>_cam.png``: on each aligned crop.

    Returns the files written, the photo's overlay first.
    """
    from .explain import overlay_heatmap

    stem.parent.mkdir(parents=True, exist_ok=True)
    explanations = explainer(classifier).explain_image(image, faces)
    combined = np.max([explanation.image_heatmap for explanation in explanations], axis=0)
    written = [Path(f"{stem}_cam.png")]
    overlay_heatmap(image, combined).save(written[0])
    for index, (face, explanation) in enumerate(zip(faces, explanations), start=1):
        written.append(Path(f"{stem}_face{index}_cam.png"))
        overlay_heatmap(face.aligned_crop, explanation.crop_heatmap).save(written[-1])
    return written


def predict_file(classifier: Any, path: Path, cam_dir: Path | None = None) -> dict[str, Any]:
    """``{"file", "faces": [{"box", "label", "probs", ...}], "error"}``; with ``cam_dir`` also ``"cams"``, the files
    written."""
    result: dict[str, Any] = {"file": str(path), "faces": [], "error": None}
    if cam_dir is not None:
        result["cams"] = []
    try:
        image = open_image(path)
    except ImageError as error:
        result["error"] = str(error)
        return result
    faces = classifier.predict_image(image)
    result["faces"] = [face.to_dict() for face in faces]
    if cam_dir is not None and faces:
        result["cams"] = [str(written) for written in save_cams(classifier, image, faces, cam_dir / path.stem)]
    return result


def predict_files(classifier: Any, paths: list[Path], cam_dir: Path | None = None) -> list[dict[str, Any]]:
    """One :func:`predict_file` result per path, in order; bad files never raise."""
    return [predict_file(classifier, path, cam_dir) for path in paths]
