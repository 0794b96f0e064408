"""Safe image loading: every way a user file can be bad becomes one :class:`ImageError` with a one-line reason."""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["ImageError", "MAX_PIXELS", "MAX_SIDE", "open_image", "to_rgb"]

MAX_PIXELS = 50_000_000  # 50 MP: above any phone photo; a bomb decodes to gigabytes of pixels
MAX_SIDE = 16_384  # a longer side is a banner or a crafted file, not a photo of faces
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class ImageError(ValueError):
    """A file that cannot be used as a photo; ``str(error)`` is a one-line reason for the user."""


def _read_bytes(source: str | Path | bytes | bytearray | BinaryIO) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"no such file: {path}")
        try:
            return path.read_bytes()
        except OSError as error:
            raise ImageError(f"cannot read file: {error.strerror or error}") from None
    return source.read()


def _check_size(width: int, height: int) -> None:
    if max(width, height) > MAX_SIDE:
        raise ImageError(f"image is {width}x{height}: sides above {MAX_SIDE} px are not supported")
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"refusing a {width}x{height} image ({width * height / 1e6:.0f} MP > {MAX_PIXELS / 1e6:.0f} MP):"
            " possible decompression bomb"
        )


def open_image(source: str | Path | bytes | bytearray | BinaryIO) -> Image.Image:
    """Decode a path, bytes or file object into an upright PIL image (first frame of animations).

    Dimensions are checked from the header before any pixel is decoded, so bombs cost nothing.
    """
    data = _read_bytes(source)
    if not data:
        raise ImageError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            _check_size(*image.size)
            image.seek(0)
            image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(f"possible decompression bomb: {str(error).splitlines()[0]}") from None
    except UnidentifiedImageError:
        raise ImageError("not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImageError(f"truncated or corrupt image: {reason}") from None
    try:
        return ImageOps.exif_transpose(image) or image
    except Exception as error:  # a malformed EXIF block must not lose an otherwise good photo
        warnings.warn(f"ignoring unreadable EXIF orientation: {error}", stacklevel=2)
        return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright 8-bit RGB for detection: EXIF applied, 16-bit scaled, transparency composited on white."""
    try:
        image = ImageOps.exif_transpose(image) or image
    except Exception:
        pass  # keep the pixels as stored when the EXIF block cannot be read
    if image.mode in _SIXTEEN_BIT_MODES:
        array = np.asarray(image, dtype=np.float64)
        peak = array.max() or 1.0
        image = Image.fromarray(np.clip(array / peak * 255.0, 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image if image.mode == "RGB" else image.convert("RGB")
