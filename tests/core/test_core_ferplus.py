import numpy as np
import pytest
from PIL import Image

from core.data import read_ferplus, read_image_folder, read_labelled_folder
from core.labels import FERPLUS8_LABELS, PAPER_LABELS

# columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
ROWS = {
    "clear_happy.png": [1, 8, 1, 0, 0, 0, 0, 0, 0, 0],  # single votes dropped -> happy 8/8
    "tie.png": [5, 5, 0, 0, 0, 0, 0, 0, 0, 0],  # no majority
    "weak.png": [4, 3, 3, 0, 0, 0, 0, 0, 0, 0],  # 4 of 10 is not a majority
    "unknown.png": [2, 0, 0, 0, 0, 0, 0, 0, 8, 0],  # unknown wins
    "not_face.png": [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # NF wins
    "fear.png": [0, 0, 2, 0, 0, 0, 8, 0, 0, 0],  # outside the paper's seven
    "contempt.png": [3, 0, 0, 0, 0, 0, 0, 7, 0, 0],
    "singles.png": [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],  # every vote is a single vote
}


@pytest.fixture()
def ferplus_dir(tmp_path):
    lines = []
    for name, votes in ROWS.items():
        Image.new("L", (48, 48), 128).save(tmp_path / name)
        lines.append(f'{name},"(0, 0, 48, 48)",' + ",".join(map(str, votes)))
    lines.append('missing.png,"(0, 0, 48, 48)",0,10,0,0,0,0,0,0,0,0')
    (tmp_path / "label.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_majority_rule_keeps_only_clear_in_set_majorities(ferplus_dir):
    samples = read_ferplus(ferplus_dir, PAPER_LABELS, "majority")
    kept = {path.name: PAPER_LABELS[i] for path, i in zip(samples.paths, samples.label_indices)}
    assert kept == {"clear_happy.png": "happy", "contempt.png": "contempt"}
    assert samples.skipped == {"no_majority": 3, "unknown_or_not_face": 2, "outside_label_set": 1, "missing_file": 1}
    assert np.allclose(samples.soft_targets.sum(axis=1), 1.0)


def test_eight_class_set_keeps_fear(ferplus_dir):
    samples = read_ferplus(ferplus_dir, FERPLUS8_LABELS, "majority")
    assert "fear.png" in {p.name for p in samples.paths}


def test_distribution_mode_gives_vote_shares(ferplus_dir):
    samples = read_ferplus(ferplus_dir, PAPER_LABELS, "distribution")
    by_name = {p.name: soft for p, soft in zip(samples.paths, samples.soft_targets)}
    assert "weak.png" in by_name and "tie.png" in by_name  # no majority needed for soft targets
    weak = dict(zip(PAPER_LABELS, by_name["weak.png"]))
    assert weak["neutral"] == pytest.approx(0.4) and weak["happy"] == pytest.approx(0.3)
    assert dict(zip(PAPER_LABELS, by_name["contempt.png"]))["contempt"] == pytest.approx(0.7)
    assert "unknown.png" not in by_name and "fear.png" not in by_name


def test_unknown_mode_is_refused(ferplus_dir):
    with pytest.raises(ValueError):
        read_ferplus(ferplus_dir, PAPER_LABELS, "vote")


def test_image_folder_reader_uses_aliases(tmp_path):
    for folder, count in (("happiness", 2), ("anger", 1), ("fear", 3)):
        (tmp_path / folder).mkdir()
        for n in range(count):
            Image.new("L", (30, 30)).save(tmp_path / folder / f"{n}.png")
    samples = read_image_folder(tmp_path, PAPER_LABELS)
    assert sorted(PAPER_LABELS[i] for i in samples.label_indices) == ["angry", "happy", "happy"]
    assert samples.skipped["outside_label_set"] == 3
    assert len(read_labelled_folder(tmp_path, PAPER_LABELS)) == 3
