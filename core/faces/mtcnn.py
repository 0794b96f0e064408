"""MTCNN face detection (Zhang et al., 2016) with the weights the ``mtcnn`` wheel ships, without TensorFlow.

Three small CNNs in a cascade: P-Net slides over an image pyramid and proposes boxes down to ``min_face`` px,
R-Net (24x24 crops) and O-Net (48x48 crops) reject most proposals and refine the rest. The ``mtcnn`` package
(MIT) keeps the original weights as lz4-compressed lists of NumPy arrays; its own code needs TensorFlow, so it
is never imported: the arrays are read with joblib and the networks written as LiteRT graphs
(:mod:`.mtcnn_litert`), run by XNNPACK.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .mtcnn_litert import NetPool, onet_graph, pnet_graph, rnet_graph

__all__ = ["MtcnnDetector", "Proposal", "mtcnn_weights_path"]

_PNET_CELL = 12  # P-Net sees 12x12 windows with a stride of 2 px
_INPUT_SCALE = 0.0078125  # MTCNN's input: (pixel - 127.5) / 128
_GREY = (128, 128, 128)  # what crops reaching past the photo are filled with: it normalises to ~0


def mtcnn_weights_path(name: str) -> Path:
    """``pnet``/``rnet``/``onet`` weights inside the installed ``mtcnn`` wheel, found without importing it."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the mtcnn package is not installed (pip install mtcnn): it ships the detector weights")
    path = Path(next(iter(spec.submodule_search_locations))) / "assets" / "weights" / f"{name}.lz4"
    if not path.is_file():
        raise FileNotFoundError(f"MTCNN weights {path.name} are missing from the mtcnn package")
    return path


def _load_arrays(name: str) -> list[np.ndarray]:
    import joblib

    return [np.asarray(array, dtype=np.float32) for array in joblib.load(mtcnn_weights_path(name))]


_NETS_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _build_nets() -> tuple[NetPool, NetPool, NetPool]:
    pnet, rnet, onet = (_load_arrays(name) for name in ("pnet", "rnet", "onet"))
    return (
        NetPool(lambda shape: pnet_graph(pnet, *shape)),
        NetPool(lambda shape: rnet_graph(rnet, *shape)),
        NetPool(lambda shape: onet_graph(onet, *shape)),
    )


def _nets() -> tuple[NetPool, NetPool, NetPool]:
    """P-Net, R-Net and O-Net interpreter pools (safe to call from many threads at once), built once."""
    with _NETS_LOCK:
        return _build_nets()


@dataclass(frozen=True)
class Proposal:
    """One detected face: MTCNN's box, its O-Net probability and MTCNN's own 5 points (eyes, nose, mouth)."""

    box: tuple[float, float, float, float]
    score: float
    points: tuple[tuple[float, float], ...]


def _normalise(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels -> float32 in [-1, 1], as MTCNN was trained (NHWC stays NHWC)."""
    return (pixels.astype(np.float32) - 127.5) * _INPUT_SCALE


_NMS_MATRIX_LIMIT = 1024  # up to this many boxes, NMS takes their overlaps as one matrix (1024^2 floats: 4 MB)


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (overlap over union, or over the smaller box).

    All overlaps are computed at once and the greedy pass only reads them: the same arithmetic and the same
    boxes kept as :func:`_nms_greedy`, in a fraction of its NumPy calls.
    """
    if len(boxes) > _NMS_MATRIX_LIMIT:
        return _nms_greedy(boxes, scores, threshold, by_min)
    order = np.argsort(-scores, kind="stable")
    x0, y0, x1, y1 = boxes[order].T
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    width = np.maximum(0.0, np.minimum(x1[:, None], x1) - np.maximum(x0[:, None], x0) + 1)
    height = np.maximum(0.0, np.minimum(y1[:, None], y1) - np.maximum(y0[:, None], y0) + 1)
    inter = width * height
    overlap = inter / (np.minimum(area[:, None], area) if by_min else area[:, None] + area - inter)
    suppresses = ~(overlap <= threshold)  # written so, a NaN overlap suppresses as in the greedy pass
    removed = np.zeros(len(order), dtype=bool)
    keep = []
    for rank in range(len(order)):
        if not removed[rank]:
            keep.append(order[rank])
            removed |= suppresses[rank]
    return np.asarray(keep, dtype=np.int64)


def _nms_greedy(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False) -> np.ndarray:
    """:func:`_nms` one kept box at a time, against the boxes still left (memory grows with N, not N^2)."""
    order = np.argsort(-scores, kind="stable")
    x0, y0, x1, y1 = boxes.T
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        width = np.maximum(0.0, np.minimum(x1[best], x1[rest]) - np.maximum(x0[best], x0[rest]) + 1)
        height = np.maximum(0.0, np.minimum(y1[best], y1[rest]) - np.maximum(y0[best], y0[rest]) + 1)
        inter = width * height
        overlap = inter / (np.minimum(area[best], area[rest]) if by_min else area[best] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)


def _refine(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    size = np.stack([boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1] * 2, axis=1)
    return boxes + offsets * size


def _crops(image: Image.Image, boxes: np.ndarray, side: int) -> np.ndarray:
    """(N, side, side, 3) network inputs: the windows ``boxes`` of ``image``, bilinear without antialiasing (as
    MTCNN was trained), mid-grey beyond the photo's edges, normalised to [-1, 1]."""
    windows = [tuple(float(v) for v in box) for box in boxes]
    crops = b"".join(
        image.transform((side, side), Image.EXTENT, window, Image.BILINEAR, fillcolor=_GREY).tobytes()
        for window in windows
    )  # one buffer for all: cheaper than an array per crop
    return _normalise(np.frombuffer(crops, dtype=np.uint8).reshape(len(windows), side, side, 3))


class MtcnnDetector:
    """Faces of ``min_face`` px and larger (box side, photo pixels) in an RGB photo.

    ``thresholds`` are the P-Net, R-Net and O-Net face probabilities a box must pass; the last one sets how
    rare false positives are. Thread-safe: no state is kept between calls.
    """

    def __init__(
        self,
        min_face: float = 20.0,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.9),
        scale_factor: float = 0.709,
    ) -> None:
        self.min_face = float(min_face)
        self.thresholds = thresholds
        self.scale_factor = scale_factor
        self._pnet, self._rnet, self._onet = _nets()

    def _scales(self, height: int, width: int) -> list[float]:
        scale, scales = _PNET_CELL / self.min_face, []
        while min(height, width) * scale >= _PNET_CELL:
            scales.append(scale)
            scale *= self.scale_factor
        return scales

    def _propose(self, image: Image.Image) -> np.ndarray:
        """P-Net over the pyramid: candidate boxes (x0, y0, x1, y1, score) in photo pixels."""
        found, level = [], image
        for scale in self._scales(image.height, image.width):
            size = (max(_PNET_CELL, round(image.width * scale)), max(_PNET_CELL, round(image.height * scale)))
            level = level.resize(size, Image.BILINEAR)  # each level from the one before: less work, same detail
            outputs = self._pnet.run_level(_normalise(np.asarray(level)))
            regression, probability = outputs["regression"], outputs["probability"][:, :, 1]
            ys, xs = np.nonzero(probability > self.thresholds[0])
            if not len(ys):
                continue
            sx, sy = size[0] / image.width, size[1] / image.height
            corners = np.stack([xs * 2, ys * 2, xs * 2 + _PNET_CELL, ys * 2 + _PNET_CELL], axis=1).astype(np.float32)
            boxes = corners + regression[ys, xs] * _PNET_CELL
            boxes /= np.array([sx, sy, sx, sy], dtype=np.float32)
            scores = probability[ys, xs]
            keep = _nms(boxes, scores, 0.5)
            found.append(np.hstack([boxes[keep], scores[keep, None]]))
        if not found:
            return np.zeros((0, 5), dtype=np.float32)
        candidates = np.concatenate(found)
        return candidates[_nms(candidates[:, :4], candidates[:, 4], 0.7)]

    def detect(self, pixels: np.ndarray) -> list[Proposal]:
        """Faces in an RGB (H, W, 3) or grayscale (H, W) uint8 array, most probable first."""
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[:, :, None], 3, axis=2)
        image = Image.fromarray(np.ascontiguousarray(pixels[:, :, :3]))
        candidates = self._propose(image)
        if not len(candidates):
            return []
        boxes = _square(candidates[:, :4])
        outputs = self._rnet.run_crops(_crops(image, boxes, 24))
        regression, probability = outputs["regression"], outputs["probability"]
        passed = probability[:, 1] > self.thresholds[1]
        if not passed.any():
            return []
        boxes, scores = _refine(boxes[passed], regression[passed]), probability[passed, 1]
        boxes = _square(boxes[_nms(boxes, scores, 0.7)])
        outputs = self._onet.run_crops(_crops(image, boxes, 48))
        regression, points, probability = outputs["regression"], outputs["points"], outputs["probability"]
        passed = probability[:, 1] > self.thresholds[2]
        if not passed.any():
            return []
        boxes, regression, points, scores = boxes[passed], regression[passed], points[passed], probability[passed, 1]
        size = np.stack([boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1], axis=1)
        xs = points[:, 0:5] * size[:, :1] + boxes[:, :1] - 1
        ys = points[:, 5:10] * size[:, 1:] + boxes[:, 1:2] - 1
        boxes = _refine(boxes, regression)
        keep = _nms(boxes, scores, 0.7, by_min=True)
        height, width = pixels.shape[:2]
        boxes = np.clip(boxes, 0, [width, height, width, height])
        return [
            Proposal(
                tuple(float(v) for v in boxes[i]),
                float(scores[i]),
                tuple((float(x), float(y)) for x, y in zip(xs[i], ys[i])),
            )
            for i in keep
        ]
