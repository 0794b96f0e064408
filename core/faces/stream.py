"""Live video: detect on a reduced frame now and then, follow faces by their landmarks in between.

Detection is the slow stage (MTCNN on a 480 px frame, faces from 40 px there); the 5-point model re-fitted
inside last frame's box costs ~0.2 ms, so tracking between detections keeps a webcam stream well above 30
frames per second while boxes still follow the face every frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .detector import Face, FaceDetector

__all__ = ["FaceStream"]

_STREAM_DETECT_SIDE = 480  # webcam frames are detected at 480 px ...
_STREAM_MIN_FACE = 40  # ... down to 40 px there (53 px in a 640 px frame): a person within a few metres


@dataclass
class _Track:
    box: tuple[float, float, float, float]
    score: float
    anchor: np.ndarray  # landmark centroid minus the box's top-left corner, fixed at detection time


def _centroid(shape: Any) -> np.ndarray:
    return np.mean([(shape.part(i).x, shape.part(i).y) for i in range(shape.num_parts)], axis=0)


class FaceStream:
    """Feed RGB frames to :meth:`process`; get classified :class:`Face` objects for every frame.

    ``classifier`` is anything with ``predict_crops`` and ``labels`` (PyTorch or ONNX Runtime backend);
    without one, faces come back unclassified.
    """

    def __init__(
        self,
        classifier: Any = None,
        detector: FaceDetector | None = None,
        detect_every: int = 5,
        detect_side: int = _STREAM_DETECT_SIDE,
    ) -> None:
        self.classifier = classifier
        self.detector = detector or FaceDetector(min_face=_STREAM_MIN_FACE, max_side=detect_side)
        self.detect_every = max(1, detect_every)
        self.frame_index = 0
        self._tracks: list[_Track] = []

    def reset(self) -> None:
        """Forget tracked faces (a new camera or a scene cut): the next frame runs detection."""
        self.frame_index = 0
        self._tracks = []

    def _follow(self, gray: np.ndarray, track: _Track) -> tuple[Any, _Track] | None:
        """Re-fit landmarks in the previous box and move the box with them; None when the face left."""
        height, width = gray.shape
        shape = self.detector.landmarks(gray, track.box)
        x0, y0 = _centroid(shape) - track.anchor
        moved = (x0, y0, x0 + track.box[2] - track.box[0], y0 + track.box[3] - track.box[1])
        if moved[2] <= 0 or moved[3] <= 0 or moved[0] >= width or moved[1] >= height:
            return None
        return shape, _Track(moved, track.score, track.anchor)

    def process(self, frame: np.ndarray | Image.Image) -> list[Face]:
        """Faces in one frame (RGB uint8 array or PIL image), classified when a classifier was given."""
        pixels = np.ascontiguousarray(np.asarray(frame.convert("RGB")) if isinstance(frame, Image.Image) else frame)
        gray = pixels if pixels.ndim == 2 else np.asarray(Image.fromarray(pixels).convert("L"))
        faces: list[Face] = []
        if self.frame_index % self.detect_every == 0 or not self._tracks:
            self._tracks = []
            for box, score in self.detector.find_boxes(pixels):
                shape = self.detector.landmarks(gray, box)
                faces.append(self.detector.align(pixels, shape, box, score))
                self._tracks.append(_Track(box, score, _centroid(shape) - np.asarray(box[:2])))
        else:
            followed = [self._follow(gray, track) for track in self._tracks]
            self._tracks = []
            for result in followed:
                if result is None:
                    continue
                shape, track = result
                faces.append(self.detector.align(pixels, shape, track.box, track.score))
                self._tracks.append(track)
        self.frame_index += 1
        if self.classifier is None or not faces:
            return faces
        probabilities = self.classifier.predict_crops([face.aligned_crop for face in faces])
        return [face.with_probs(self.classifier.labels, row) for face, row in zip(faces, probabilities)]
