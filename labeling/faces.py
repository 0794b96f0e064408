"""The store's ``detect_faces`` hook over core's dlib detector, so labels refer to the crops the model sees."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PIL import Image

from core.faces import FaceDetector

__all__ = ["store_face_finder"]


def store_face_finder(
    detector: FaceDetector | None = None,
) -> Callable[[Image.Image], Sequence[tuple[Sequence[float], Image.Image]]]:
    """``image -> [(box, aligned_crop), ...]``; the store falls back to the whole image when none is found."""
    detector = detector or FaceDetector()

    def core_faces(image: Image.Image) -> list[tuple[Sequence[float], Image.Image]]:
        return [(face.box, face.aligned_crop) for face in detector.detect(image)]

    core_faces.__name__ = "dlib"
    return core_faces
