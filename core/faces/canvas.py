"""Group photos with known face boxes, composed from real faces, so a detector's recall can be counted.

A real face photo and its face box are cut out around the face, scaled so the box has a chosen width, and
pasted onto a textured background, one face per grid cell. The pasted boxes are the ground truth; a found
box matches a pasted face when its centre lies inside that face's box and its width is within a factor of
two (detectors frame faces differently: dlib's box is the inner face, CNN boxes include the forehead).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

__all__ = [
    "ASTRONAUT_FACE_BOX",
    "FACE_FREE_IMAGES",
    "GroupCanvas",
    "astronaut_group",
    "compose_group",
    "count_matches",
    "face_free_images",
]

Box = tuple[float, float, float, float]

# dlib HOG's box for the face in skimage.data.astronaut() (512x512), upsample 0.
ASTRONAUT_FACE_BOX: Box = (179.0, 83.0, 267.0, 171.0)
_CROP_SIDE = 2.2  # the pasted square is this many face-box widths: hair, chin and a little background
# skimage.data photos without a human face, for counting false positives (chelsea and cat are a cat's face).
FACE_FREE_IMAGES = (
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "coins",
    "moon",
    "page",
    "text",
    "brick",
    "grass",
    "gravel",
    "retina",
    "cell",
    "colorwheel",
    "clock",
)


@dataclass(frozen=True)
class GroupCanvas:
    """A composed photo and the box of every face pasted into it (photo pixels, x0, y0, x1, y1)."""

    image: Image.Image
    boxes: tuple[Box, ...]


def _background(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """Smooth random colour blotches with fine grain: clutter for false positives, no face-like structure."""
    width, height = size
    coarse = rng.integers(40, 216, (max(2, height // 60), max(2, width // 60), 3), dtype=np.uint8)
    smooth = Image.fromarray(coarse).resize(size, Image.BICUBIC).filter(ImageFilter.GaussianBlur(8))
    grain = rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(smooth, dtype=np.float64) + grain, 0, 255).astype(np.uint8))


def _cut(source: Image.Image, box: Box, width: int) -> tuple[Image.Image, Box]:
    """A square around the face scaled so its box is ``width`` px wide, and that box inside the square."""
    x0, y0, x1, y1 = box
    scale = width / (x1 - x0)
    side = _CROP_SIDE * (x1 - x0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    window = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
    out = max(1, round(side * scale))
    cut = source.convert("RGB").transform((out, out), Image.EXTENT, window, Image.BILINEAR, fillcolor=(128, 128, 128))
    inner = ((x0 - window[0]) * scale, (y0 - window[1]) * scale, (x1 - window[0]) * scale, (y1 - window[1]) * scale)
    return cut, inner


def compose_group(
    faces: Sequence[tuple[Image.Image, Box]],
    widths: Sequence[int],
    size: tuple[int, int] = (1920, 1080),
    seed: int = 0,
) -> GroupCanvas:
    """One face per entry of ``widths`` (face-box width in px), taken from ``faces`` in turn, on a grid.

    Each face sits at a random place in its own grid cell (``seed`` fixes it), half of them mirrored.
    Raises ValueError when a face does not fit its cell.
    """
    rng = np.random.default_rng(seed)
    canvas = _background(size, rng)
    count = len(widths)
    columns = max(1, math.ceil(math.sqrt(count * size[0] / size[1])))
    rows = math.ceil(count / columns)
    cell_w, cell_h = size[0] // columns, size[1] // rows
    order = rng.permutation(count)
    boxes: list[Box] = []
    for index, width in enumerate(widths):
        source, box = faces[index % len(faces)]
        cut, inner = _cut(source, box, int(width))
        if rng.random() < 0.5:
            cut = cut.transpose(Image.FLIP_LEFT_RIGHT)
            inner = (cut.width - inner[2], inner[1], cut.width - inner[0], inner[3])
        if cut.width > cell_w or cut.height > cell_h:
            raise ValueError(f"a {width} px face needs a {cut.width} px cell; the grid gives {cell_w}x{cell_h}")
        cell = int(order[index])
        left = (cell % columns) * cell_w + int(rng.integers(0, cell_w - cut.width + 1))
        top = (cell // columns) * cell_h + int(rng.integers(0, cell_h - cut.height + 1))
        canvas.paste(cut, (left, top))
        boxes.append((inner[0] + left, inner[1] + top, inner[2] + left, inner[3] + top))
    return GroupCanvas(canvas, tuple(boxes))


def astronaut_group(
    count: int = 20, size: tuple[int, int] = (1920, 1080), smallest: int = 30, largest: int = 120, seed: int = 0
) -> GroupCanvas:
    """``count`` copies of the astronaut's face, box widths spread evenly from ``smallest`` to ``largest`` px."""
    from skimage import data

    widths = np.linspace(smallest, largest, count).round().astype(int)
    return compose_group([(Image.fromarray(data.astronaut()), ASTRONAUT_FACE_BOX)], widths.tolist(), size, seed)


def count_matches(found: Sequence[Box], truth: Sequence[Box]) -> tuple[int, int]:
    """(pasted faces found, found boxes that are no pasted face); each face and each box is matched once."""
    unmatched = list(range(len(truth)))
    hits = 0
    for x0, y0, x1, y1 in found:
        cx, cy, width = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0
        for i in unmatched:
            t0, u0, t1, u1 = truth[i]
            if t0 <= cx <= t1 and u0 <= cy <= u1 and 0.5 <= width / (t1 - t0) <= 2.0:
                unmatched.remove(i)
                hits += 1
                break
    return hits, len(found) - hits


def face_free_images() -> dict[str, Image.Image]:
    """The :data:`FACE_FREE_IMAGES` as RGB photos."""
    from skimage import data

    return {name: Image.fromarray(getattr(data, name)()).convert("RGB") for name in FACE_FREE_IMAGES}
