"""The store's face finder over core's face detector: what the app and ``tsnet label import`` both use.

Photos become aligned face crops, the crops the model sees: every face found is kept (largest first), and a
photo with no face is refused with :class:`NoFaceFoundError` (plain words), never stored as a whole picture
that would teach the model head-and-shoulders shots.

Pre-cropped faces are recognised by size: an image whose longer side is at most ``FACE_CROP_MAX_SIDE`` pixels
(FER+'s 48x48, RAF-DB's aligned 100x100) is already a face crop and is used whole, without detection (a
detector rarely finds a face that fills a 48 px frame, and re-cropping it would throw the frame away). Larger face
crops go through the detector like photos, so they get the same FER+-like framing; a set of large crops where
no face is found is imported whole with ``tsnet label import --crops``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from PIL import Image

from core.faces import FaceDetector
from core.images import ImageError

__all__ = ["FACE_CROP_MAX_SIDE", "NO_FACE_REASON", "NoFaceFoundError", "is_face_crop", "store_face_finder"]

FACE_CROP_MAX_SIDE = 100
NO_FACE_REASON = (
    "no face found in this photo (it needs a visible, roughly frontal face at least ~60 px wide); it was not added"
)


class NoFaceFoundError(ImageError):
    """A photo in which the detector found no face; ``str(error)`` says so in plain words."""


def is_face_crop(image: Image.Image) -> bool:
    """True for an image small enough to be a face crop already (used whole, not searched for faces)."""
    return max(image.size) <= FACE_CROP_MAX_SIDE


def store_face_finder(
    detector: FaceDetector | None = None,
) -> Callable[[Image.Image], Sequence[tuple[Sequence[float], Image.Image]]]:
    """``image -> [(box, aligned_crop), ...]``, raising :class:`NoFaceFoundError` when there is none.

    The returned function carries ``is_face_crop``: the store uses an image that rule accepts whole. The
    detector's models load at the first photo, so importing face crops only never pays for them.
    """
    loaded: list[FaceDetector] = [detector] if detector is not None else []
    lock = threading.Lock()

    def core_faces(image: Image.Image) -> list[tuple[Sequence[float], Image.Image]]:
        if not loaded:
            with lock:
                if not loaded:
                    loaded.append(FaceDetector())
        faces = loaded[0].detect(image)
        if not faces:
            raise NoFaceFoundError(NO_FACE_REASON)
        return [(face.box, face.aligned_crop) for face in faces]

    core_faces.__name__ = "dlib"
    core_faces.is_face_crop = is_face_crop  # type: ignore[attr-defined]
    return core_faces
