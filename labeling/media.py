"""The content-addressed media folder beside the database: originals by SHA-256, and face crops.

Paths come only from the hash (``originals/ab/abcdef....jpg``), never from a user's file name, so
odd names, duplicates and path tricks cannot reach the file system. Files are written to a temporary
name, flushed to disk and renamed into place before any row points at them: a crash can leave an
unreferenced file (harmless, reused by the next import), never a row without its file.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from core.atomic import write_bytes_atomically
from core.data import to_gray_array
from core.data.tensors import SHARP_SIZE, STORE_SIZE
from core.images import decode_photo

__all__ = ["FaceFinder", "DecodedImage", "MediaFolder", "content_id", "decode_image", "find_faces", "kept_face"]

# ``detect_faces(image) -> [(box, aligned_crop), ...]``; box is (left, top, right, bottom) in pixels.
FaceFinder = Callable[[Image.Image], Sequence[tuple[Sequence[float], Image.Image]]]

_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "BMP": ".bmp", "WEBP": ".webp", "TIFF": ".tif"}


def content_id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  # upright (EXIF orientation applied), fully decoded
    media_type: str
    width: int
    height: int


def decode_image(data: bytes) -> DecodedImage:
    """Fully decode ``data`` with core's decoder (its byte, side and pixel limits); raises ``core.ImageError``.

    One decoder for every way an image enters the product, so an import cannot accept what a prediction
    refuses; ``str(error)`` is a one-line reason in plain words.
    """
    decoded = decode_photo(data)
    return DecodedImage(decoded.image, decoded.format, decoded.image.width, decoded.image.height)


@dataclass(frozen=True)
class FoundFace:
    """One face the store keeps for an image (not ``core.faces.Face``: only its box and model-input crop)."""

    box: tuple[float, float, float, float] | None  # None: no detector, the whole image is the crop
    crop: np.ndarray  # uint8 square grayscale (see kept_face), the training/inference input


def kept_face(image: Image.Image) -> np.ndarray:
    """The face as the store keeps it: grey, square, as sharp as the image allows between FER+'s 48 px and an
    aligned photo crop's own 96 px, so a model can read it at its own ``face_size``."""
    return to_gray_array(image, min(SHARP_SIZE, max(STORE_SIZE, min(image.size))))


def find_faces(image: Image.Image, detect_faces: FaceFinder | None) -> list[FoundFace]:
    """Faces largest first (index 0 is the face an image label refers to); whole image without a detector."""
    if detect_faces is None:
        return [FoundFace(None, kept_face(image))]
    found = [(tuple(float(v) for v in box), crop) for box, crop in detect_faces(image)]
    found.sort(key=lambda item: -(item[0][2] - item[0][0]) * (item[0][3] - item[0][1]))
    return [FoundFace(box, kept_face(crop)) for box, crop in found]  # type: ignore[arg-type]


def _png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


class MediaFolder:
    """Where bytes live: ``originals/`` and ``crops/``, both sharded by the first two hex digits."""

    def __init__(self, root: Path, durable: bool = True) -> None:
        self.root = root
        self.durable = durable

    def original_path(self, image_id: str, media_type: str) -> str:
        return f"originals/{image_id[:2]}/{image_id}{_EXTENSIONS.get(media_type, '.bin')}"

    def crop_path(self, image_id: str, face_index: int) -> str:
        return f"crops/{image_id[:2]}/{image_id}-{face_index}.png"

    def resolve(self, relative: str) -> Path:
        return self.root / relative

    def write_original(self, image_id: str, media_type: str, data: bytes) -> str:
        relative = self.original_path(image_id, media_type)
        self._write_once(self.resolve(relative), data)
        return relative

    def write_crop(self, image_id: str, face_index: int, crop: np.ndarray) -> str:
        relative = self.crop_path(image_id, face_index)
        self._write_once(self.resolve(relative), _png_bytes(crop))
        return relative

    def _write_once(self, path: Path, data: bytes) -> None:
        """Atomic and idempotent: same address, same bytes, so an existing file is already right."""
        if path.is_file() and path.stat().st_size == len(data):
            return
        write_bytes_atomically(path, data, durable=self.durable)
