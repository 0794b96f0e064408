import pytest

from core.labels import FERPLUS8_LABELS, PAPER_LABELS, default_labels, normalise_label, resolve_labels


def test_default_label_set_is_the_papers_seven_in_order(monkeypatch):
    monkeypatch.delenv("TSNET_LABELS", raising=False)
    assert default_labels() == ("angry", "disgust", "happy", "sad", "surprise", "neutral", "contempt")


def test_ferplus_eight_selected_by_configuration(monkeypatch):
    monkeypatch.setenv("TSNET_LABELS", "ferplus8")
    assert default_labels() == FERPLUS8_LABELS
    assert "fear" in default_labels()


def test_custom_list_accepts_aliases():
    assert resolve_labels("happiness, anger,neutral") == ("happy", "angry", "neutral")


def test_duplicate_or_single_class_sets_are_refused():
    with pytest.raises(ValueError):
        resolve_labels("happy,happiness")
    with pytest.raises(ValueError):
        resolve_labels(["happy"])


def test_normalise_label_maps_dataset_names():
    assert normalise_label("Surprised") == "surprise"
    assert normalise_label("sadness") == "sad"
    assert set(PAPER_LABELS) < set(FERPLUS8_LABELS)
