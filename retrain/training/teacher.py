"""The teacher's logits for a distillation batch: computed online, or cached once on clean faces."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
from tqdm import tqdm

from core.classifier import Classifier, load_classifier
from core.data import preprocess_batch

from ..layout import DataLayout
from .config import INPUT_MEAN, INPUT_STD, TrainConfig
from .data import Dataset

__all__ = ["TeacherTargets", "TEACHER_CACHE_NAME"]

TEACHER_CACHE_NAME = "teacher_logits.pt"  # in the run folder, with --teacher-cache


class TeacherTargets:
    """Teacher logits for a batch: computed online on the augmented batch, or cached once on clean images.

    ``config.teacher`` may name several teachers, comma-separated: their logits are averaged (an ensemble is a
    better teacher than either of its members when they err differently)."""

    def __init__(
        self, config: TrainConfig, train: Dataset, run_dir: Path, save_cache: bool = True, progress: bool = False
    ) -> None:
        layout = DataLayout.from_env()
        names = [name.strip() for name in str(config.teacher).split(",") if name.strip()]
        self.teachers: list[Classifier] = [load_classifier(layout.resolve_model(name)) for name in names]
        for teacher in self.teachers:
            if list(teacher.labels) != list(config.labels):
                raise ValueError(f"teacher labels {teacher.labels} differ from the run's {config.labels}")
        self.config = config
        self.cache: torch.Tensor | None = None
        if config.teacher_cache:
            cache_file = run_dir / TEACHER_CACHE_NAME
            if cache_file.is_file():
                self.cache = torch.load(cache_file)
            else:
                self.cache = self._clean_logits(train.images, progress)
                if save_cache:
                    run_dir.mkdir(parents=True, exist_ok=True)
                    torch.save(self.cache, cache_file)

    @torch.inference_mode()
    def _clean_logits(self, images: torch.Tensor, progress: bool) -> torch.Tensor:
        chunks = []
        for start in tqdm(range(0, len(images), 256), desc="teacher logits", leave=False, disable=not progress):
            logits = []
            for teacher in self.teachers:
                cfg = teacher.config
                batch = preprocess_batch(images[start : start + 256], cfg.input_size, cfg.mean, cfg.std)
                logits.append(teacher.predict_logits(batch, flip_average=True))
            chunks.append(torch.stack(logits).mean(dim=0))
        return torch.cat(chunks)

    @torch.inference_mode()
    def __call__(self, indices: torch.Tensor, student_batch: torch.Tensor) -> torch.Tensor:
        if self.cache is not None:
            return self.cache[indices]
        unit = student_batch.float().cpu() * INPUT_STD + INPUT_MEAN  # back to [0, 1], then each teacher's own
        logits = []
        for teacher in self.teachers:
            cfg = teacher.config
            batch = unit
            if cfg.input_size != batch.shape[-1]:
                size = (cfg.input_size, cfg.input_size)
                batch = nn.functional.interpolate(batch, size=size, mode="bilinear", align_corners=False)
            logits.append(teacher.model((batch - cfg.mean) / cfg.std))
        return torch.stack(logits).mean(dim=0)
