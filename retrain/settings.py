"""Retrain job settings: one dataclass filled from ``TSNET_*`` environment variables, so the app, the CLI,
the background worker and torchrun ranks all resolve the same configuration.

Defaults are chosen for the speed target (500 new faces redistilled, evaluated and registered in about
three minutes on two CPU cores): a few epochs, a bounded replay sample, teacher logits cached once.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .layout import DataLayout

__all__ = ["PromotionRules", "RetrainSettings", "DEFAULT_SHARED_FERPLUS"]

DEFAULT_SHARED_FERPLUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "ferplus"


def _home_from_env() -> Path:
    return DataLayout.from_env().home


@dataclass
class PromotionRules:
    """A candidate is promoted when it is shown better on the store's test split and holds on the benchmark.

    ``max_benchmark_drop``: largest allowed accuracy drop on the base benchmark (FER+ FER2013Valid), 0.005 = 0.5 points.
    ``max_store_drop``: how far below zero the lower bound of the store's gain may lie; 0 means the candidate must be
    better: the lower end of a one-sided ``confidence`` interval of its accuracy gain (paired bootstrap over
    groups of near-identical shots or user groups) is above zero.
    ``min_store_test`` / ``min_store_groups``: below this many test faces or groups the store cannot show anything,
    so the job is not promoted automatically (the user can still promote it by hand).
    """

    max_benchmark_drop: float = 0.005
    max_store_drop: float = 0.0
    min_store_test: int = 10
    min_store_groups: int = 5
    confidence: float = 0.95


_ENV = {
    "replay_data": "TSNET_REPLAY_DATA",
    "replay_size": "TSNET_REPLAY_SIZE",
    "benchmark_data": "TSNET_BENCHMARK_DATA",
    "base_student": "TSNET_BASE_STUDENT",
    "base_teacher": "TSNET_BASE_TEACHER",
    "push_repo": "TSNET_HUB_REPO",
    "epochs": "TSNET_RETRAIN_EPOCHS",
    "stages": "TSNET_RETRAIN_STAGES",
    "student_lr": "TSNET_RETRAIN_LR",
    "store_repeat": "TSNET_STORE_REPEAT",
    "replay_targets": "TSNET_REPLAY_TARGETS",
    "ema_decay": "TSNET_RETRAIN_EMA",
    "trainable": "TSNET_RETRAIN_TRAINABLE",
    "logit_adjust": "TSNET_RETRAIN_LOGIT_ADJUST",
    "photo_augment": "TSNET_RETRAIN_PHOTO_AUGMENT",
    "anchor_weight": "TSNET_RETRAIN_ANCHOR",
    "mixup": "TSNET_RETRAIN_MIXUP",
    "sharp_faces": "TSNET_RETRAIN_SHARP_FACES",
    "guard_alpha": "TSNET_GUARD_ALPHA",
    "probe_size": "TSNET_PROBE_SIZE",
    "shrink": "TSNET_RETRAIN_SHRINK",
    "threads": "TSNET_RETRAIN_THREADS",
    "seed": "TSNET_RETRAIN_SEED",
    "push_retries": "TSNET_PUSH_RETRIES",
    "push_backoff": "TSNET_PUSH_BACKOFF",
    "max_benchmark_drop": "TSNET_MAX_BENCHMARK_DROP",
    "max_store_drop": "TSNET_MAX_STORE_DROP",
    "min_store_test": "TSNET_MIN_STORE_TEST",
    "min_store_groups": "TSNET_MIN_STORE_GROUPS",
    "confidence": "TSNET_PROMOTION_CONFIDENCE",
}


@dataclass
class RetrainSettings:
    """Everything a retrain job needs besides the annotation store. ``""`` disables replay / benchmark."""

    home: Path = field(default_factory=_home_from_env)
    replay_data: str | None = None  # None: ../shared FER+ FER2013Train when present
    replay_size: int = 5000  # 2000 gained +2.5 points on unseen people with 13 store people, 5000 +9.6 (README)
    benchmark_data: str | None = None  # None: ../shared FER+ FER2013Valid when present
    base_student: str | None = None  # the implicit "base" version; None: served/shipped default
    base_teacher: str | None = None
    push_repo: str | None = None
    # The recipe (measured on taiwanese-dev, see the README's Retrain section): fine-tune the student alone,
    # the user's faces repeated ``store_repeat`` times beside the replay sample, on a cosine schedule.
    # "auto": "face-head" when FER+ replay faces are at hand (or the current version has a head), else
    # "student". "face-head": keep the student and fit a head on dlib's face features beside it (79.7-82.6 % on
    # unseen people against 73.2-75.2 % for "student", README); "student": fine-tune the student alone;
    # "teacher+student": fine-tune the teacher, then distil the student from it
    stages: str = "auto"
    epochs: int = 6
    teacher_lr: float = 0.002
    student_lr: float = 0.01
    store_repeat: int = 3
    # "votes": FER+ vote shares (11 people: 75.2 % on unseen people vs 72.6 % for "model", the current student's
    # own answers, which carry its mistakes; README), or "majority"
    replay_targets: str = "votes"
    ema_decay: float | None = 0.995  # ship a moving average of the weights (None: the last weights)
    trainable: str = ""  # comma-separated top-level modules the job fine-tunes ("": all of them)
    logit_adjust: float = 0.0  # train on logits + tau * log(training class prior): the model unlearns that prior
    photo_augment: bool = False  # also degrade the training faces like photos (JPEG, blur, resolution, light)
    mixup: float = 0.0  # > 0: blend pairs of training faces and their targets (mixup), Beta(mixup, mixup)
    # Read the user's photo faces at the model's input size (64 px) instead of FER+'s 48 (a store of 48 px crops
    # keeps 48). Off: it gains before the shrink step but not after it (README, Retrain, 3 seeds each).
    sharp_faces: bool = False
    anchor_weight: float = 0.0  # L2-SP: pull the weights toward the current student's (a guard that needs no data)
    shrink: bool = True  # shrink the candidate toward the current student until it holds on the benchmark
    probe_size: int = 1000  # without benchmark data: FER+ training faces outside the replay sample probe instead
    guard_alpha: float = 0.2  # without replay data: weight of distillation from the current student (LwF)
    batch_size: int = 64
    temperature: float | None = None  # None: the current student's recipe, else core's default
    alpha: float | None = None
    threads: int | None = None
    seed: int = 0  # shuffling, augmentation and the replay sample: one job's figures move with it (README)
    push_retries: int = 4
    push_backoff: float = 2.0
    rules: PromotionRules = field(default_factory=PromotionRules)

    @classmethod
    def from_env(cls, home: Path | None = None, **overrides: Any) -> RetrainSettings:
        """Defaults, then ``TSNET_*`` variables, then ``overrides`` (None values are ignored)."""
        settings = cls(home=Path(home) if home is not None else _home_from_env())
        rule_names = {f.name for f in fields(PromotionRules)}
        for name, variable in _ENV.items():
            raw = os.environ.get(variable)
            if raw is None:
                continue
            target = settings.rules if name in rule_names else settings
            current = getattr(target, name)
            kind = type(current) if current is not None else str
            setattr(target, name, _parse(name, raw, kind, variable))
        for name, value in overrides.items():
            if value is not None:
                setattr(settings.rules if name in rule_names else settings, name, value)
        return settings

    def resolved_replay(self) -> Path | None:
        return _existing(self.replay_data, DEFAULT_SHARED_FERPLUS / "FER2013Train")

    def resolved_benchmark(self) -> Path | None:
        return _existing(self.benchmark_data, DEFAULT_SHARED_FERPLUS / "FER2013Valid")

    def to_json(self) -> str:
        data = asdict(self)
        data["home"] = str(self.home)
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> RetrainSettings:
        data = json.loads(text)
        data["home"] = Path(data["home"])
        known_rules = {f.name for f in fields(PromotionRules)}
        data["rules"] = PromotionRules(**{k: v for k, v in data["rules"].items() if k in known_rules})
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})  # settings of an older release


_INTEGERS = {
    "threads",
    "epochs",
    "replay_size",
    "push_retries",
    "min_store_test",
    "min_store_groups",
    "store_repeat",
    "probe_size",
    "seed",
}
_FLOATS = {"ema_decay"}
# fields whose text must be one of a few words
_CHOICES = {"stages": ("auto", "face-head", "student", "teacher+student")}
# refused below zero; max_benchmark_drop is not: a negative drop means the candidate must gain on the benchmark
_NON_NEGATIVE = {"anchor_weight", "guard_alpha", "student_lr", "mixup"}


def _parse(name: str, raw: str, kind: type, variable: str) -> Any:
    """An environment variable's text as the field's type (``""`` unsets an optional float); a value that is not
    one says which variable and what it expects, in plain words."""
    try:
        if name in _INTEGERS:
            return int(raw)
        if kind is bool:
            return raw.strip().lower() not in ("0", "false", "no", "off", "")
        if name in _FLOATS:
            return float(raw) if raw.strip() else None
        value = kind(raw)
    except ValueError:
        expected = "a whole number" if name in _INTEGERS else "a number"  # int() and float() are all that raise
        raise ValueError(f"{variable} must be {expected}, not {raw!r}") from None
    if name in _CHOICES and value not in _CHOICES[name]:
        raise ValueError(f"{variable} must be one of {', '.join(_CHOICES[name])}, not {raw!r}")
    if name in _NON_NEGATIVE and value < 0:
        raise ValueError(f"{variable} must be 0 or more, not {raw!r}")
    return value


def _existing(configured: str | None, default: Path) -> Path | None:
    if configured == "":
        return None
    path = Path(configured) if configured is not None else default
    return path if path.is_dir() else None
