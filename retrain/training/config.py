"""The settings of one training run, and the weights description they give its model."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from core.distillation import DEFAULT_ALPHA, DEFAULT_TEMPERATURE
from core.labels import default_labels
from core.weights import ModelConfig

__all__ = ["TrainConfig", "INPUT_MEAN", "INPUT_STD"]

INPUT_MEAN, INPUT_STD = 0.5, 0.5  # grayscale normalisation of the models trained here


@dataclass
class TrainConfig:
    """Every knob of a run; defaults are the paper's recipe (Section IV.B)."""

    architecture: str
    train_data: str
    out: str
    val_data: str | None = None
    labels: list[str] = field(default_factory=lambda: list(default_labels()))
    epochs: int = 150
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "plateau"
    plateau_patience: int = 3
    plateau_factor: float = 0.1
    warmup_epochs: int = 0
    input_size: int = 64
    face_size: int = 48  # the side photo crops are reduced to before input_size (see core.weights.ModelConfig)
    stem: str = "imagenet"
    dropout: float = 0.5
    target_mode: str = "majority"
    teacher: str | None = None
    temperature: float = DEFAULT_TEMPERATURE
    alpha: float = DEFAULT_ALPHA
    teacher_cache: bool = False
    seed: int = 0
    threads: int | None = None
    max_train_samples: int | None = None
    flip_tta: bool = False
    channels_last: bool = True
    half_weights: bool = True
    label_smoothing: float = 0.0
    augment: bool = True
    init_from: str | None = None
    device: str = "auto"
    ema_decay: float | None = None  # keep an exponential moving average of the weights; validate and save it
    logit_adjust: float = 0.0  # train on logits + tau * log(class prior): rare classes get recalled (Menon et al.)
    photo_augment: bool = False  # also degrade faces like photos: JPEG, blur, resolution, gamma, side light, noise
    mixup: float = 0.0  # > 0: train on blends of two faces and their targets, weight ~ Beta(mixup, mixup)
    anchor_weight: float = 0.0  # L2-SP: loss + w/2 * ||weights - initial weights||^2 (forgets less, needs no data)
    photo_val: str | None = None  # photo folder with labels.csv, scored each epoch through the photo pipeline
    train_only: list[str] | None = None  # top-level modules to train (e.g. ["stage4", "conv5", "fc"]); the rest frozen

    def model_config(self, **training: Any) -> ModelConfig:
        """The weights folder's description: architecture and preprocessing, with these settings (less ``out``)
        and ``training``'s extra entries recorded, so a model says how it was made."""
        recorded = {key: value for key, value in asdict(self).items() if key != "out"}
        recorded.update(training)
        return ModelConfig(
            architecture=self.architecture,
            labels=list(self.labels),
            input_size=self.input_size,
            face_size=self.face_size,
            in_chans=1,
            mean=INPUT_MEAN,
            std=INPUT_STD,
            model_kwargs={"stem": self.stem, "dropout": self.dropout},
            training=recorded,
        )
