import json
import os
import subprocess
import sys

import pytest
import torch

from core import load_classifier
from core.labels import PAPER_LABELS
from retrain.training import TrainConfig, run_training
from tests._core_fixtures import write_ferplus_folder
from tests._retrain_fixtures import tiny_weights

LABELS = ("happy", "sad", "neutral")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return write_ferplus_folder(root / "train", LABELS, per_class=40), write_ferplus_folder(
        root / "val", LABELS, 6, seed=1
    )


def _config(tiny_data, out, **overrides) -> TrainConfig:
    train, val = tiny_data
    values = dict(
        architecture="shufflenet_v2",
        train_data=str(train),
        val_data=str(val),
        out=str(out),
        labels=list(LABELS),
        epochs=2,
        batch_size=8,
        lr=0.01,
        input_size=32,
        threads=1,
        seed=3,
    )
    values.update(overrides)
    return TrainConfig(**values)


def _log(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_two_epochs_lower_the_loss_and_write_a_loadable_weights_folder(tiny_data, tmp_path):
    best = run_training(_config(tiny_data, tmp_path / "run", augment=False), log=lambda *_: None)
    history = _log(tmp_path / "run")
    assert len(history) == 2
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    classifier = load_classifier(best)
    assert classifier.labels == LABELS
    assert classifier.config.training["lr"] == 0.01


def test_resume_continues_the_same_run(tiny_data, tmp_path):
    straight = tmp_path / "straight"
    run_training(_config(tiny_data, straight), log=lambda *_: None)
    interrupted = tmp_path / "interrupted"
    run_training(_config(tiny_data, interrupted, epochs=1), log=lambda *_: None)
    run_training(_config(tiny_data, interrupted, epochs=2), resume=True, log=lambda *_: None)
    a, b = _log(straight), _log(interrupted)
    assert [r["epoch"] for r in b] == [1, 2]
    assert b[1]["train_loss"] == pytest.approx(a[1]["train_loss"], rel=1e-4)
    state_a = torch.load(straight / "last.pt", weights_only=False)["model"]
    state_b = torch.load(interrupted / "last.pt", weights_only=False)["model"]
    assert all(torch.allclose(state_a[k].float(), state_b[k].float(), atol=1e-5) for k in state_a)


def test_existing_run_is_not_overwritten_without_resume(tiny_data, tmp_path):
    run_training(_config(tiny_data, tmp_path / "run", epochs=1), log=lambda *_: None)
    with pytest.raises(FileExistsError):
        run_training(_config(tiny_data, tmp_path / "run", epochs=1), log=lambda *_: None)


def test_distillation_from_a_teacher_with_cached_logits(tiny_data, tmp_path):
    teacher = run_training(
        _config(tiny_data, tmp_path / "teacher", architecture="eff_resnet18", epochs=1), log=lambda *_: None
    )
    for cache in (True, False):
        out = tmp_path / f"student-{cache}"
        run_training(
            _config(tiny_data, out, teacher=str(teacher), teacher_cache=cache, temperature=6.0, alpha=0.4, epochs=1),
            log=lambda *_: None,
        )
        record = _log(out)[0]
        assert {"train_kd_loss", "train_task_loss"} <= set(record)
        assert load_classifier(out / "best").config.training["teacher"] == str(teacher)


def test_two_teachers_teach_their_averaged_logits(tiny_data, tmp_path):
    from core.data import preprocess_batch
    from retrain.training.data import load_dataset

    teachers = [tiny_weights(tmp_path / name, "eff_resnet18", seed) for name, seed in (("a", 1), ("b", 2))]
    out = tmp_path / "ensemble"
    config = _config(tiny_data, out, teacher=",".join(map(str, teachers)), teacher_cache=True, epochs=1)
    run_training(config, log=lambda *_: None)
    cached = torch.load(out / "teacher_logits.pt")
    train = load_dataset(config.train_data, list(LABELS), config.target_mode)
    each = []
    for folder in teachers:
        teacher = load_classifier(folder)
        batch = preprocess_batch(train.images, teacher.config.input_size, teacher.config.mean, teacher.config.std)
        each.append(teacher.predict_logits(batch, flip_average=True))
    assert torch.allclose(cached, (each[0] + each[1]) / 2, atol=1e-4)
    assert not torch.allclose(cached, each[0], atol=1e-2)


def test_soft_targets_mode_trains(tiny_data, tmp_path):
    run_training(_config(tiny_data, tmp_path / "soft", target_mode="distribution", epochs=1), log=lambda *_: None)
    assert _log(tmp_path / "soft")[0]["train_loss"] > 0


def test_run_without_validation_faces_keeps_best_weights(tiny_data, tmp_path):
    best = run_training(_config(tiny_data, tmp_path / "no-val", val_data=None, epochs=1), log=lambda *_: None)
    assert load_classifier(best).labels == LABELS  # selected on the training loss, whatever its size


def test_cli_trains_and_evaluates(tiny_data, tmp_path):
    train, val = tiny_data
    out = tmp_path / "cli"
    common = ["--data", str(train), "--val-data", str(val), "--out", str(out), "--labels", ",".join(LABELS)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tsnet",
            "train-student",
            *common,
            "--epochs",
            "1",
            "--input-size",
            "32",
            "--threads",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tsnet",
            "evaluate",
            "--data",
            str(val),
            "--model",
            str(out / "best"),
            "--json",
            str(tmp_path / "r.json"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "accuracy" in result.stdout and "confusion matrix" in result.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["samples"] == 18 and report["params"] > 1e6 and report["flops"] > 0
    assert set(report["per_class_accuracy"]) == set(LABELS)
    assert PAPER_LABELS  # the default set is untouched by a custom run


def test_fine_tuning_starts_from_given_weights_and_refuses_mismatches(tiny_data, tmp_path):
    first = run_training(_config(tiny_data, tmp_path / "a", augment=False), log=lambda *_: None)
    tuned = run_training(
        _config(tiny_data, tmp_path / "b", epochs=1, lr=0.0, init_from=str(first)), log=lambda *_: None
    )
    before, after = load_classifier(first).model.state_dict(), load_classifier(tuned).model.state_dict()
    assert torch.allclose(before["fc.1.weight"], after["fc.1.weight"], atol=1e-3)  # lr 0 keeps the start weights
    with pytest.raises(ValueError, match="init-from"):
        run_training(
            _config(tiny_data, tmp_path / "c", architecture="resnet18", init_from=str(first)), log=lambda *_: None
        )


def test_should_stop_cancels_between_batches_and_keeps_earlier_checkpoint(tiny_data, tmp_path):
    from retrain.training import TrainingCancelled

    calls = []
    out = tmp_path / "cancel"

    def stop_in_second_epoch():
        calls.append(1)
        return len(calls) > 16  # 15 steps per epoch

    with pytest.raises(TrainingCancelled):
        run_training(_config(tiny_data, out), log=lambda *_: None, should_stop=stop_in_second_epoch)
    assert [r["epoch"] for r in _log(out)] == [1]
    run_training(_config(tiny_data, out), resume=True, log=lambda *_: None)
    assert [r["epoch"] for r in _log(out)] == [1, 2]


def test_distributed_run_with_two_cpu_processes(tiny_data, tmp_path):
    train, val = tiny_data
    out = tmp_path / "ddp"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "tsnet",
        "train-student",
        "--data",
        str(train),
        "--val-data",
        str(val),
        "--out",
        str(out),
        "--labels",
        ",".join(LABELS),
        "--epochs",
        "1",
        "--input-size",
        "32",
        "--batch-size",
        "16",
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(_log(out)) == 1  # one writer
    assert load_classifier(out / "best").labels == LABELS


def test_a_diverging_run_stops_with_a_plain_message_and_saves_nothing(tiny_data, tmp_path):
    from retrain.training.loop import TrainingDiverged

    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        run_training(_config(tiny_data, tmp_path / "run", lr=1e12, epochs=1), log=lambda *_: None)
    assert not (tmp_path / "run" / "best").exists()


def test_the_moving_average_is_what_is_validated_and_saved(tiny_data, tmp_path):
    best = run_training(_config(tiny_data, tmp_path / "ema", ema_decay=0.5, epochs=1), log=lambda *_: None)
    raw = run_training(_config(tiny_data, tmp_path / "raw", epochs=1), log=lambda *_: None)
    averaged, trained = load_classifier(best).model.state_dict(), load_classifier(raw).model.state_dict()
    assert load_classifier(best).config.training["ema_decay"] == 0.5
    assert any(not torch.equal(averaged[name], trained[name]) for name in averaged)


def test_train_only_fine_tunes_the_named_modules_and_keeps_the_rest_exactly(tiny_data, tmp_path):
    first = run_training(_config(tiny_data, tmp_path / "a", epochs=1, augment=False), log=lambda *_: None)
    tuned = run_training(
        _config(tiny_data, tmp_path / "b", epochs=1, init_from=str(first), train_only=["conv5", "fc"]),
        log=lambda *_: None,
    )
    before, after = load_classifier(first).model.state_dict(), load_classifier(tuned).model.state_dict()
    frozen = [key for key in before if key.startswith(("conv1", "stage"))]
    assert frozen and all(torch.equal(before[key], after[key]) for key in frozen)  # weights and BN statistics
    assert not torch.equal(before["fc.1.weight"], after["fc.1.weight"])
    with pytest.raises(ValueError, match="does not have"):
        run_training(_config(tiny_data, tmp_path / "c", train_only=["head"]), log=lambda *_: None)


def test_the_anchor_keeps_fine_tuned_weights_near_where_they_started(tiny_data, tmp_path):
    first = run_training(_config(tiny_data, tmp_path / "a", epochs=1, augment=False), log=lambda *_: None)
    start = load_classifier(first).model.state_dict()

    def distance(anchor_weight: float) -> float:
        out = tmp_path / f"anchor-{anchor_weight}"
        config = _config(tiny_data, out, epochs=2, lr=0.05, init_from=str(first), anchor_weight=anchor_weight)
        tuned = load_classifier(run_training(config, log=lambda *_: None))
        assert tuned.config.training["anchor_weight"] == anchor_weight
        weights = tuned.model.state_dict()
        return sum(float((weights[k].float() - start[k].float()).pow(2).sum()) for k in start if "weight" in k)

    assert distance(10.0) < 0.5 * distance(0.0)
