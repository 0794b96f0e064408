"""Face pipeline: MTCNN detection, dlib 5-point landmarks, FER+-framed aligned crops and a tracker for live video."""

from .detector import (
    ALIGNED_CROP_SIZE,
    ALIGNMENT_PADDING,
    ALIGNMENT_SHIFT_UP,
    DETECT_MAX_SIDE,
    DETECT_MIN_FACE,
    DETECTION_THRESHOLD,
    FERPLUS_KEY_POINTS,
    Face,
    FaceDetector,
    landmark_model_path,
)
from .stream import FaceStream

__all__ = [
    "ALIGNED_CROP_SIZE",
    "ALIGNMENT_PADDING",
    "ALIGNMENT_SHIFT_UP",
    "DETECT_MAX_SIDE",
    "DETECT_MIN_FACE",
    "DETECTION_THRESHOLD",
    "FERPLUS_KEY_POINTS",
    "Face",
    "FaceDetector",
    "FaceStream",
    "landmark_model_path",
]
