"""Group photos composed from real faces at 30-120 px: how many faces detection finds, and that it invents none."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.faces import FaceDetector
from core.faces.canvas import ASTRONAUT_FACE_BOX, astronaut_group, compose_group, count_matches, face_free_images

TAIWANESE_DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "taiwanese-dev"


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def test_a_generated_twenty_face_group_canvas_finds_every_face(detector):
    canvas = astronaut_group(20, (1920, 1080), smallest=30, largest=120, seed=0)
    found = [face.box for face in detector.detect(canvas.image)]
    assert count_matches(found, canvas.boxes) == (20, 0)  # all 20 faces, no box that is not a face


def test_small_faces_of_a_640_photo_are_found(detector):
    canvas = astronaut_group(6, (640, 480), smallest=30, largest=60, seed=1)
    found = [face.box for face in detector.detect(canvas.image)]
    assert count_matches(found, canvas.boxes) == (6, 0)


def test_the_composed_boxes_are_where_the_faces_are():
    """The canvas itself: a pasted face at its original size gets exactly its original box back."""
    from skimage import data

    width = ASTRONAUT_FACE_BOX[2] - ASTRONAUT_FACE_BOX[0]
    canvas = compose_group([(Image.fromarray(data.astronaut()), ASTRONAUT_FACE_BOX)], [int(width)], (400, 400))
    hog = FaceDetector(method="hog", min_face=80).detect(canvas.image)
    assert len(hog) == 1
    np.testing.assert_allclose(hog[0].box, canvas.boxes[0], atol=4)


def test_tilted_faces_are_found(detector):
    """Heads tilted by up to 25 degrees (HOG's frontal model misses most beyond ~15)."""
    from skimage import data

    source = Image.fromarray(data.astronaut())
    faces = []
    for angle in (-25, -15, 15, 25):
        cx, cy = (
            (ASTRONAUT_FACE_BOX[0] + ASTRONAUT_FACE_BOX[2]) / 2,
            (ASTRONAUT_FACE_BOX[1] + ASTRONAUT_FACE_BOX[3]) / 2,
        )
        faces.append(
            (source.rotate(angle, Image.BILINEAR, center=(cx, cy), fillcolor=(128, 128, 128)), ASTRONAUT_FACE_BOX)
        )
    canvas = compose_group(faces, [60, 80, 100, 120], (1280, 720), seed=2)
    found = [face.box for face in detector.detect(canvas.image)]
    assert count_matches(found, canvas.boxes)[0] == 4


def test_face_free_photos_give_no_face(detector):
    found = {name: len(detector.detect(image)) for name, image in face_free_images().items()}
    assert sum(found.values()) == 0, found


def _taiwanese_faces(count: int) -> list[tuple[Image.Image, tuple[float, float, float, float]]]:
    """One photo per subject with dlib HOG's box for its face (the box convention of the canvas)."""
    hog = FaceDetector(method="hog", min_face=40)
    faces, subjects = [], set()
    with open(TAIWANESE_DEV / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["subject"] in subjects:
                continue
            with Image.open(TAIWANESE_DEV / row["path"]) as image:
                photo = image.convert("RGB")
            boxes = hog.find_boxes(np.asarray(photo))
            if len(boxes) == 1:
                faces.append((photo, boxes[0][0]))
                subjects.add(row["subject"])
            if len(faces) == count:
                break
    return faces


@pytest.mark.skipif(not (TAIWANESE_DEV / "labels.csv").is_file(), reason="needs ../shared/data/taiwanese-dev photos")
def test_a_group_of_twenty_real_people_is_found(detector):
    people = _taiwanese_faces(20)
    widths = np.linspace(30, 120, len(people)).round().astype(int).tolist()
    canvas = compose_group(people, widths, (1920, 1080), seed=3)
    found = [face.box for face in detector.detect(canvas.image)]
    hits, false_positives = count_matches(found, canvas.boxes)
    assert hits >= len(people) - 1 and false_positives == 0
