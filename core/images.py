"""Safe image loading: every way a user file can be bad becomes one :class:`ImageError` with a one-line reason."""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "DecodedPhoto",
    "ImageError",
    "MAX_FILE_BYTES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "decode_photo",
    "open_image",
    "read_image_bytes",
    "to_eight_bit",
    "to_rgb",
]

MAX_PIXELS = 50_000_000  # 50 MP: above any phone photo; a bomb decodes to gigabytes of pixels
MAX_SIDE = 16_384  # a longer side is a banner or a crafted file, not a photo of faces
MAX_FILE_BYTES = 256 * 1024 * 1024  # a 50 MP photo is well below this even as an uncompressed TIFF
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


class ImageError(ValueError):
    """A file that cannot be used as a photo; ``str(error)`` is a one-line reason for the user."""


def _too_big(size: int) -> ImageError:
    return ImageError(f"file is {size / 2**20:.0f} MB: files above {MAX_FILE_BYTES // 2**20} MB are not supported")


def read_image_bytes(source: str | Path | bytes | bytearray | BinaryIO) -> bytes:
    """The file's bytes, refusing files over MAX_FILE_BYTES before reading them; messages name no folder."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"no such file: {path.name}")
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                raise _too_big(path.stat().st_size)
            data = path.read_bytes()
        except OSError as error:
            raise ImageError(f"cannot read file: {error.strerror or 'input/output error'}") from None
    else:
        data = source.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise _too_big(len(data))
    return data


def _check_size(width: int, height: int) -> None:
    if max(width, height) > MAX_SIDE:
        raise ImageError(f"image is {width}x{height}: sides above {MAX_SIDE} px are not supported")
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"refusing a {width}x{height} image ({width * height / 1e6:.0f} MP > {MAX_PIXELS / 1e6:.0f} MP):"
            " possible decompression bomb"
        )


@dataclass(frozen=True)
class DecodedPhoto:
    image: Image.Image  # upright (EXIF orientation applied), fully decoded, first frame
    format: str  # PIL's name of the file format: "JPEG", "PNG", ...


def open_image(source: str | Path | bytes | bytearray | BinaryIO) -> Image.Image:
    """Decode a path, bytes or file object into an upright PIL image (first frame of animations).

    Dimensions are checked from the header before any pixel is decoded, so bombs cost nothing.
    """
    return decode_photo(source).image


def decode_photo(source: str | Path | bytes | bytearray | BinaryIO) -> DecodedPhoto:
    """:func:`open_image` plus the file's format: the one decoder every path of the product uses.

    Prediction, live frames, import, add-to-dataset and zip members all come through here, so the
    size limits (bytes, sides, pixels) and the one-line :class:`ImageError` reasons hold everywhere.
    """
    data = read_image_bytes(source)
    if not data:
        raise ImageError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit is lower: see below
            image = Image.open(io.BytesIO(data))
            _check_size(*image.size)
            image_format = image.format or "unknown"
            image.seek(0)
            image.load()
    except ImageError:
        raise
    except Image.DecompressionBombError as error:  # PIL refuses in open(), before we learn the dimensions
        found = re.search(r"\((\d+) pixels\)", str(error))
        size = f" of {int(found.group(1)) / 1e6:.0f} MP" if found else ""
        raise ImageError(
            f"refusing an image{size} (> {MAX_PIXELS / 1e6:.0f} MP): possible decompression bomb"
        ) from None
    except UnidentifiedImageError:
        raise ImageError("not an image (unrecognised format)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ImageError(f"truncated or corrupt image: {reason}") from None
    try:
        upright = ImageOps.exif_transpose(image) or image
    except Exception as error:  # a malformed EXIF block must not lose an otherwise good photo
        warnings.warn(f"ignoring unreadable EXIF orientation: {error}", stacklevel=2)
        upright = image
    return DecodedPhoto(upright, image_format)


def to_eight_bit(image: Image.Image) -> Image.Image:
    """16-bit and float pixels scaled to 8 bits by the image's own peak, transparency composited on white; any
    other image as it is. The one place a photo or a crop is flattened before colour conversion."""
    if image.mode in _SIXTEEN_BIT_MODES:
        array = np.asarray(image, dtype=np.float64)
        peak = array.max() or 1.0
        image = Image.fromarray(np.clip(array / peak * 255.0, 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Upright 8-bit RGB for detection: EXIF applied, 16-bit scaled, transparency composited on white."""
    try:
        image = ImageOps.exif_transpose(image) or image
    except Exception:
        pass  # keep the pixels as stored when the EXIF block cannot be read
    image = to_eight_bit(image)
    return image if image.mode == "RGB" else image.convert("RGB")
