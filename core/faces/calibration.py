"""Where FER+ puts the eyes and nose: the numbers that set the aligned crop's geometry.

FER+ faces are tight 48x48 crops. A photo's face must reach the model framed the same way, so we
measure the median 5-point landmark positions on FER+ crops (upscaled so dlib can see them) and
choose ``dlib.get_face_chip``'s padding so its template lands on those positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["LandmarkGeometry", "measure_ferplus_geometry"]

FERPLUS_SIZE = 48
_UPSCALE = 4
_BORDER = 48  # px of edge-replicated margin so the HOG window fits around a tight crop


@dataclass(frozen=True)
class LandmarkGeometry:
    """Median key points as fractions of a crop side: image-left eye, image-right eye (corner midpoints), nose base.

    ``ferplus`` is where they sit in FER+ crops; ``chip`` is where ``dlib.get_face_chip`` puts the same
    faces' points at padding 0, so the padding that reconciles the two can be solved for.
    """

    ferplus: np.ndarray
    chip: np.ndarray
    samples: int

    @staticmethod
    def eye_distance(points: np.ndarray) -> float:
        return float(np.hypot(*(points[1] - points[0])))

    def padding(self) -> float:
        """p with (chip + p) / (1 + 2p) matching FER+'s eye distance: the scale of the crop."""
        return (self.eye_distance(self.chip) / self.eye_distance(self.ferplus) - 1.0) / 2.0

    def vertical_shift(self) -> float:
        """How far (fraction of the side) FER+ frames the face lower than dlib's chip at the fitted padding."""
        return float(np.mean(self.ferplus[:, 1] - self.chip_at(self.padding())[:, 1]))

    def chip_at(self, padding: float) -> np.ndarray:
        """Where the key points land in an aligned crop made with ``padding``."""
        return (self.chip + padding) / (1.0 + 2.0 * padding)


def _key_points(points: np.ndarray) -> np.ndarray:
    """5-point dlib shape (0,1: image-right eye corners; 2,3: image-left eye; 4: nose base) -> 3 key points."""
    return np.stack([points[2:4].mean(axis=0), points[0:2].mean(axis=0), points[4]])


def measure_ferplus_geometry(folder: str | Path, limit: int = 400) -> LandmarkGeometry:
    """Detect faces and 5-point landmarks on ``limit`` upscaled FER+ crops and return the median geometry."""
    import dlib

    from .detector import chip_affine, load_dlib_models

    detector, predictor = load_dlib_models()
    paths = sorted(Path(folder).glob("*.png"))[:limit]
    if not paths:
        raise FileNotFoundError(f"no FER+ PNG crops in {folder}")
    side = FERPLUS_SIZE * _UPSCALE
    in_crop, in_chip = [], []
    for path in paths:
        with Image.open(path) as image:
            gray = image.convert("L").resize((side, side), Image.BICUBIC)
        padded = np.pad(np.asarray(gray), _BORDER, mode="edge")
        boxes, scores, _ = detector.run(padded, 0, 0.0)
        if not boxes:
            continue
        shape = predictor(padded, boxes[int(np.argmax(scores))])
        key = _key_points(np.asarray([(shape.part(i).x, shape.part(i).y) for i in range(5)], dtype=np.float64))
        in_crop.append((key - _BORDER) / side)
        to_photo = np.vstack([chip_affine(dlib.get_face_chip_details(shape, side, 0.0)), [0.0, 0.0, 1.0]])
        to_chip = np.linalg.inv(to_photo)[:2]
        in_chip.append((key @ to_chip[:, :2].T + to_chip[:, 2]) / (side - 1))
    if not in_crop:
        raise RuntimeError(f"no face found in the first {len(paths)} crops of {folder}")
    return LandmarkGeometry(np.median(in_crop, axis=0), np.median(in_chip, axis=0), samples=len(in_crop))


def main(folder: str = "../shared/data/ferplus/FER2013Train") -> None:
    found = measure_ferplus_geometry(folder)
    padding = found.padding()
    print(f"{found.samples} FER+ crops with a face; key points [x, y] as fractions of the side")
    print(f"FER+ crops:\n{found.ferplus.round(4)}\ndlib chip at padding 0:\n{found.chip.round(4)}")
    print(f"fitted padding {padding:.4f}; chip at that padding:\n{found.chip_at(padding).round(4)}")
    print(f"vertical shift to FER+ framing {found.vertical_shift():.4f} of the side")


if __name__ == "__main__":
    import sys

    main(*sys.argv[1:2])
