import math

import pytest
import torch

from core.distillation import DEFAULT_ALPHA, DEFAULT_TEMPERATURE, distillation_loss


def _softmax(values, t=1.0):
    exps = [math.exp(v / t) for v in values]
    return [e / sum(exps) for e in exps]


def test_defaults_follow_the_papers_text():
    assert (DEFAULT_TEMPERATURE, DEFAULT_ALPHA) == (8.0, 0.4)


def test_matches_hand_computation_with_t_squared():
    student, teacher, label, t, alpha = [1.0, 2.0, 0.5], [0.2, 3.0, -1.0], 1, 4.0, 0.3
    p = _softmax(teacher, t)
    q = _softmax(student, t)
    kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    ce = -math.log(_softmax(student)[label])
    expected = alpha * t * t * kl + (1 - alpha) * ce
    parts = distillation_loss(torch.tensor([student]), torch.tensor([teacher]), torch.tensor([label]), t, alpha)
    assert parts["loss"].item() == pytest.approx(expected, rel=1e-5)
    assert parts["kd_loss"].item() == pytest.approx(kl, rel=1e-5)
    assert parts["task_loss"].item() == pytest.approx(ce, rel=1e-5)


def test_alpha_zero_is_plain_cross_entropy_and_one_is_pure_distillation():
    student, teacher, target = torch.randn(4, 7), torch.randn(4, 7), torch.tensor([0, 3, 6, 2])
    ce = torch.nn.functional.cross_entropy(student, target)
    assert distillation_loss(student, teacher, target, 6.0, 0.0)["loss"].item() == pytest.approx(ce.item(), rel=1e-6)
    pure = distillation_loss(student, teacher, target, 6.0, 1.0)
    assert pure["loss"].item() == pytest.approx(36.0 * pure["kd_loss"].item(), rel=1e-6)


def test_identical_logits_give_zero_kd_term():
    logits = torch.randn(3, 7)
    assert distillation_loss(logits, logits.clone(), torch.tensor([1, 2, 3]))["kd_loss"].item() == pytest.approx(
        0, abs=1e-6
    )


def test_soft_targets_are_accepted_like_one_hot_indices():
    student, teacher = torch.randn(2, 3), torch.randn(2, 3)
    indices = torch.tensor([2, 0])
    one_hot = torch.nn.functional.one_hot(indices, 3).float()
    a = distillation_loss(student, teacher, indices)["loss"]
    b = distillation_loss(student, teacher, one_hot)["loss"]
    assert a.item() == pytest.approx(b.item(), rel=1e-6)
    votes = torch.tensor([[0.5, 0.0, 0.5], [0.8, 0.2, 0.0]])
    assert distillation_loss(student, teacher, votes)["task_loss"].item() > 0


def test_teacher_gets_no_gradient_and_bad_settings_raise():
    student, teacher = torch.randn(2, 3, requires_grad=True), torch.randn(2, 3, requires_grad=True)
    distillation_loss(student, teacher, torch.tensor([0, 1]))["loss"].backward()
    assert student.grad is not None and teacher.grad is None
    with pytest.raises(ValueError):
        distillation_loss(student, teacher, torch.tensor([0, 1]), alpha=1.5)
    with pytest.raises(ValueError):
        distillation_loss(student, teacher, torch.tensor([0, 1]), temperature=0)
