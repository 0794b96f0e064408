"""Datasets: FER+ and image folders read into memory, and batch preprocessing/augmentation."""

from .ferplus import FERPLUS_COLUMNS, FerPlusSamples, is_ferplus_folder, read_ferplus
from .folder import IMAGE_SUFFIXES, list_images, read_image_folder
from .tensors import augment_batch, faces_at, load_gray_images, preprocess_batch, to_gray_array

__all__ = [
    "FERPLUS_COLUMNS",
    "FerPlusSamples",
    "IMAGE_SUFFIXES",
    "augment_batch",
    "faces_at",
    "is_ferplus_folder",
    "list_images",
    "load_gray_images",
    "preprocess_batch",
    "read_ferplus",
    "read_image_folder",
    "to_gray_array",
    "read_labelled_folder",
]


def read_labelled_folder(folder, labels, mode: str = "majority") -> FerPlusSamples:
    """A FER+-layout folder (has label.csv) or an image folder with one subfolder per class."""
    return read_ferplus(folder, labels, mode) if is_ferplus_folder(folder) else read_image_folder(folder, labels)
