"""The T-SNet distillation loss (PAPER.md, Eq. 5-9), a pure function so training and tests share it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["distillation_loss", "hard_loss", "DEFAULT_TEMPERATURE", "DEFAULT_ALPHA"]

DEFAULT_TEMPERATURE = 8.0
DEFAULT_ALPHA = 0.4


def hard_loss(student_logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross entropy against class indices (B,) or soft targets (B, C) such as FER+ vote shares."""
    if targets.dtype.is_floating_point and targets.dim() == 2:
        return -(targets * F.log_softmax(student_logits, dim=1)).sum(dim=1).mean()
    return F.cross_entropy(student_logits, targets)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    temperature: float = DEFAULT_TEMPERATURE,
    alpha: float = DEFAULT_ALPHA,
) -> dict[str, torch.Tensor]:
    """Eq. 9: ``alpha * T^2 * KL(p^T || q^T) + (1 - alpha) * CE(q, y)``.

    Returns the total under ``loss`` and its parts (``kd_loss`` is the KL term before weighting,
    ``task_loss`` the cross entropy) so the trainer can log each. The T^2 factor keeps the soft
    gradients, which shrink as 1/T^2, at the scale of the hard ones.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    teacher_log_probs = F.log_softmax(teacher_logits.detach() / temperature, dim=1)
    student_log_probs = F.log_softmax(student_logits / temperature, dim=1)
    kd = F.kl_div(student_log_probs, teacher_log_probs, reduction="batchmean", log_target=True)
    task = hard_loss(student_logits, targets)
    total = alpha * temperature**2 * kd + (1.0 - alpha) * task
    return {"loss": total, "kd_loss": kd, "task_loss": task}
