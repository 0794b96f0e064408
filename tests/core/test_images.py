"""open_image: every kind of bad file gives one ImageError with a one-line reason; odd modes still work."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core import ImageError, open_image
from core.images import MAX_PIXELS, MAX_SIDE, to_rgb
from tests._face_fixtures import astronaut, encode, sixteen_bit


def _reason(source) -> str:
    with pytest.raises(ImageError) as caught:
        open_image(source)
    reason = str(caught.value)
    assert reason and "\n" not in reason
    return reason


def test_reads_a_png_from_a_path_and_from_bytes(tmp_path):
    path = tmp_path / "photo.png"
    astronaut().save(path)
    assert open_image(path).size == open_image(path.read_bytes()).size == (512, 512)


def test_text_file_is_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("hello, not a picture")
    assert "not an image" in _reason(path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert "0 bytes" in _reason(path)


def test_missing_file(tmp_path):
    assert "no such file" in _reason(tmp_path / "absent.png")


def test_truncated_jpeg():
    data = encode(astronaut(), "JPEG", quality=90)
    assert "truncated" in _reason(data[: len(data) // 2])


def test_decompression_bomb_is_refused_before_decoding():
    side = int(MAX_PIXELS**0.5) + 100  # within MAX_SIDE, above the pixel limit; compresses to a few KB
    bomb = encode(Image.new("1", (side, side)), "PNG")
    assert len(bomb) < 100_000
    assert "decompression bomb" in _reason(bomb)


def test_huge_dimensions_are_refused():
    banner = encode(Image.new("L", (MAX_SIDE + 1, 8)), "PNG")
    assert f"{MAX_SIDE}" in _reason(banner)


def test_animated_gif_gives_its_first_frame():
    first, second = Image.new("RGB", (32, 32), (255, 0, 0)), Image.new("RGB", (32, 32), (0, 0, 255))
    gif = encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    frame = to_rgb(open_image(gif))
    assert frame.getpixel((5, 5))[0] > 200 and frame.getpixel((5, 5))[2] < 50


def test_exif_orientation_is_applied():
    wide = Image.new("RGB", (60, 30))
    exif = wide.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    rotated = open_image(encode(wide, "JPEG", exif=exif.tobytes()))
    assert rotated.size == (30, 60)


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "CMYK", "I;16", "LA", "1"])
def test_every_mode_converts_to_8bit_rgb(mode):
    source = astronaut()
    if mode == "I;16":
        image = sixteen_bit(source)
    else:
        image = source.convert(mode)
    rgb = to_rgb(image)
    assert rgb.mode == "RGB" and rgb.size == source.size
    assert np.asarray(rgb).std() > 10  # still a picture, not a flat frame


@pytest.mark.parametrize("mode", ["I;16", "I", "F", "RGBA", "LA"])
def test_photos_and_crops_are_flattened_alike(mode):
    """16-bit, float and transparent images: the detector's RGB and the classifier's gray crop see the same pixels."""
    from core.data.tensors import to_gray_array
    from core.images import to_rgb

    ramp = np.linspace(0, 1, 48 * 48).reshape(48, 48)
    if mode in ("I;16", "I", "F"):
        image = Image.fromarray((ramp * 4000).astype(np.float32 if mode == "F" else np.int32)).convert(mode)
    else:
        gray = Image.fromarray((ramp * 255).astype(np.uint8))
        image = Image.merge("RGBA", [gray, gray, gray, gray]).convert(mode)
    expected = np.asarray(to_rgb(image).convert("L"))
    assert np.array_equal(to_gray_array(image), expected)
    assert expected.max() >= 250  # scaled to the image's own peak, or composited on white
