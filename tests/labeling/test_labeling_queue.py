"""The annotation queue, with a real (untrained) student and teacher loaded from weights folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from labeling import AnnotationStore
from tests._labeling_fixtures import png_bytes, random_classifier


class CountingClassifier:
    """Wraps a real classifier to see how many crops it was asked about (the cache's visible effect)."""

    def __init__(self, inner) -> None:
        self.inner, self.labels, self.source, self.crops_seen = inner, inner.labels, inner.source, 0

    def predict_crops(self, images):
        self.crops_seen += len(images)
        return self.inner.predict_crops(images)


@pytest.fixture(scope="module")
def student(tmp_path_factory: pytest.TempPathFactory):
    return random_classifier(
        tmp_path_factory.mktemp("student"), ("angry", "disgust", "happy", "sad", "surprise", "neutral", "contempt")
    )


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory):
    # Different class order on purpose: the store maps the model's columns by name.
    return random_classifier(
        tmp_path_factory.mktemp("teacher"), ("neutral", "happy", "surprise", "sad", "angry", "disgust", "contempt"), 1
    )


def _store_with_images(tmp_path: Path, count: int) -> tuple[AnnotationStore, list[str]]:
    store = AnnotationStore(tmp_path / "q.db")
    return store, [store.add_image(png_bytes(i, side=48)) for i in range(count)]


def test_unlabelled_first_then_disagreements_each_by_student_uncertainty(tmp_path: Path, student):
    store, ids = _store_with_images(tmp_path, 8)
    for image_id in ids[:4]:
        store.label(image_id, "happy", "ana")
    store.label(ids[0], "sad", "ben")  # annotators disagree on ids[0]
    store.label(ids[1], "happy", "ben")  # agreement: done, not queued
    queue = store.next_to_label(10, classifier=student)
    assert [item.reason for item in queue] == ["unlabelled"] * 4 + ["annotators disagree"]
    assert {item.image_id for item in queue[:4]} == set(ids[4:])
    assert queue[4].image_id == ids[0] and queue[4].votes == {"happy": 1, "sad": 1}
    margins = [item.margin for item in queue[:4]]
    assert margins == sorted(margins)
    for item in queue:
        assert item.suggested_label in store.labels and 0 < item.confidence <= 1 and item.crop.is_file()
    assert len(store.next_to_label(2, classifier=student)) == 2
    store.close()


def test_suggestions_are_the_students_most_probable_class(tmp_path: Path, student):
    store, ids = _store_with_images(tmp_path, 3)
    probabilities = store.predictions(student, ids)
    for item in store.next_to_label(3, classifier=student):
        row = probabilities[item.image_id]
        assert item.suggested_label == store.labels[int(np.argmax(row))]
        assert item.confidence == pytest.approx(float(row.max()))
        assert row.sum() == pytest.approx(1.0, abs=1e-4)
    store.close()


def test_an_annotator_is_not_asked_again_about_images_they_labelled(tmp_path: Path):
    store, ids = _store_with_images(tmp_path, 3)
    store.label(ids[0], "happy", "ana")
    store.label(ids[0], "sad", "ben")
    assert ids[0] not in {item.image_id for item in store.next_to_label(10, annotator="ana")}
    assert ids[0] in {item.image_id for item in store.next_to_label(10, annotator="cai")}
    store.close()


def test_teacher_student_disagreement_queues_labelled_images(tmp_path: Path, student, teacher):
    store, ids = _store_with_images(tmp_path, 12)
    for image_id in ids:
        store.label(image_id, "neutral", "ana")
    s, t = store.predictions(student, ids), store.predictions(teacher, ids)
    disagreeing = {i for i in ids if int(np.argmax(s[i])) != int(np.argmax(t[i]))}
    queue = store.next_to_label(20, classifier=student, teacher=teacher)
    assert {item.image_id for item in queue} == disagreeing
    assert all(item.reason == "teacher and student disagree" for item in queue)
    store.close()


def test_predictions_are_cached_per_image_and_model_version(tmp_path: Path, student, teacher):
    store, ids = _store_with_images(tmp_path, 5)
    counting = CountingClassifier(student)
    first = store.predictions(counting, ids)
    store.next_to_label(5, classifier=counting)
    assert counting.crops_seen == 5
    store.add_image(png_bytes(99, side=48))
    store.next_to_label(5, classifier=counting)
    assert counting.crops_seen == 6  # only the new image
    again = AnnotationStore(store.path).predictions(CountingClassifier(student), ids)
    np.testing.assert_allclose(np.stack([again[i] for i in ids]), np.stack([first[i] for i in ids]), atol=1e-5)
    other = CountingClassifier(teacher)
    store.predictions(other, ids)
    assert other.crops_seen == 5  # another model version is computed afresh
    store.close()
