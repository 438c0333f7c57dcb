"""Losses of the paper batched over the run axis, their output gradients, and lr schedules.

Shapes: model outputs are ``(R, N, C)`` (``R`` runs, ``N`` samples, ``C`` outputs); labels are
``(N,)`` (shared by the runs) or ``(R, N)``; teacher logits ``(N, C)`` or ``(R, N, C)``. Every
loss returns the batch mean per run, shape ``(R,)`` (``reduction="none"`` gives ``(R, N)``).

* Appendix B: teacher hinge ``max(0, 1 - y f)`` with ``y = +-1`` (``C = 1``) and student hinge
  ``max(0, 1 - f_S f_T)``;
* Section 2 / Appendix C.1: cross-entropy on labels, distillation ``KL(p_T^tau || p_S)`` with the
  teacher softmax at temperature ``tau`` (``tau = 0``: the teacher's argmax label, i.e. CE on
  the argmax), and the mix ``alpha CE + (1 - alpha) KL``.

All cross-entropy-type losses are ``-sum_c q_c log p_S,c + const`` for a soft target ``q``
(:func:`soft_targets`), with logit gradient ``p_S - q`` (:func:`soft_ce_grad`); the hinge losses
have gradient ``-t 1[t f < 1]`` for a target value ``t`` (:func:`hinge_grad`). The hand-written
and blocked SGD paths use only these two forms.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Callable

import torch

from theory._checks import ParameterError, check_choice, check_int, check_real

__all__ = [
    "LOSSES",
    "hinge_loss",
    "student_hinge_loss",
    "cross_entropy",
    "teacher_probs",
    "soft_targets",
    "soft_cross_entropy",
    "distill_kl",
    "mixed_loss",
    "hinge_grad",
    "soft_ce_grad",
    "labels_to_pm1",
    "constant_lr",
    "warmup_cosine",
    "warmup_linear",
    "lr_schedule",
]

#: Loss names understood by the training functions of ``simulate.sgd`` / ``simulate.blocked``.
#: ``hinge`` (labels, C=1), ``hinge_distill`` (teacher output, C=1), ``ce`` (labels),
#: ``kl`` (teacher at temperature tau), ``mix`` (alpha CE + (1 - alpha) KL).
LOSSES = ("hinge", "hinge_distill", "ce", "kl", "mix")


def _reduce(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    check_choice("reduction", reduction, ("mean", "none"))
    return per_sample.mean(-1) if reduction == "mean" else per_sample


def _scalar_output(f: torch.Tensor) -> torch.Tensor:
    if f.dim() == 3:
        if f.shape[-1] != 1:
            raise ParameterError(f"the hinge losses need C = 1 output, got C = {f.shape[-1]}")
        f = f[..., 0]
    return f


def labels_to_pm1(labels: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """0-based 2-class labels to ``y = +-1`` (class 0 -> +1, class 1 -> -1; Definition 3.1)."""
    return (1 - 2 * labels).to(dtype)


def hinge_loss(f: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Teacher hinge of Appendix B, ``max(0, 1 - y f)``; ``f`` ``(R, N)`` or ``(R, N, 1)``, ``y`` +-1."""
    f = _scalar_output(f)
    return _reduce(torch.clamp(1 - y.to(f.dtype) * f, min=0), reduction)


def student_hinge_loss(f_s: torch.Tensor, f_t: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Student hinge of Appendix B, ``max(0, 1 - f_S f_T)``; ``f_t`` ``(N[,1])`` or ``(R, N[,1])``."""
    f_s = _scalar_output(f_s)
    if f_t.dim() == f_s.dim() + 1 or (f_t.dim() == 2 and f_t.shape[-1] == 1 and f_s.shape[-1] != 1):
        f_t = f_t[..., 0]
    return _reduce(torch.clamp(1 - f_s * f_t.to(f_s.dtype), min=0), reduction)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``-log softmax(logits)[label]``; logits ``(R, N, C)``, labels ``(N,)`` or ``(R, N)`` long."""
    logp = torch.log_softmax(logits, -1)
    labels = labels.expand(logits.shape[:-1])
    return _reduce(-logp.gather(-1, labels[..., None])[..., 0], reduction)


def teacher_probs(teacher_logits: torch.Tensor, tau) -> torch.Tensor:
    """``p_T^tau = softmax(f_T / tau)``, or the one-hot argmax for ``tau = 0``; shape of the input.

    ``tau``: a float, or a tensor ``(R,)`` of per-run temperatures (then the result is ``(R, ..., C)``,
    logits without a run axis being shared by the runs).
    """
    if torch.is_tensor(tau) and tau.dim() > 0:
        if bool((tau < 0).any()) or not bool(torch.isfinite(tau).all()):
            raise ParameterError("tau must be finite and >= 0 for every run")
        logits = teacher_logits if teacher_logits.shape[0] == tau.numel() and teacher_logits.dim() >= 3 \
            else teacher_logits.unsqueeze(0)
        t = tau.to(teacher_logits.device, torch.float64).reshape(-1, *([1] * (logits.dim() - 1)))
        soft = torch.softmax(logits / t.clamp_min(1e-300).to(logits.dtype), -1)
        hard = torch.zeros_like(logits).scatter_(-1, logits.argmax(-1, keepdim=True), 1.0)
        return torch.where(t == 0, hard, soft).expand(tau.numel(), *logits.shape[1:])
    tau = check_real("tau", float(tau), 0)
    if tau == 0:
        idx = teacher_logits.argmax(-1, keepdim=True)
        return torch.zeros_like(teacher_logits).scatter_(-1, idx, 1.0)
    return torch.softmax(teacher_logits / tau, -1)


def soft_targets(
    classes: int, *, labels: torch.Tensor | None = None, teacher_logits: torch.Tensor | None = None,
    alpha: float = 1.0, tau: float = 1.0, dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """``q = alpha onehot(label) + (1 - alpha) p_T^tau``, shape ``(..., C)``.

    ``alpha = 1`` needs only labels (plain CE), ``alpha = 0`` only teacher logits (pure KL). A tensor
    ``alpha`` ``(R,)`` mixes per run (labels ``(R, N)``, result ``(R, N, C)``).
    """
    if torch.is_tensor(alpha) and alpha.dim() > 0:  # per-run mixing weights (R,)
        if bool((alpha < 0).any()) or bool((alpha > 1).any()):
            raise ParameterError("alpha must lie in [0, 1] for every run")
        if labels is None or teacher_logits is None:
            raise ParameterError("per-run alpha needs both labels and teacher_logits")
        q_t = teacher_probs(teacher_logits.to(dtype) if dtype else teacher_logits, tau)
        w = alpha.to(q_t.device, q_t.dtype).reshape(-1, *([1] * (q_t.dim() - 1)))
        onehot = torch.nn.functional.one_hot(labels.long(), classes).to(q_t.dtype)
        return w * onehot + (1 - w) * q_t
    alpha = check_real("alpha", alpha, 0, 1)
    parts = []
    if alpha > 0:
        if labels is None:
            raise ParameterError("labels are required when alpha > 0")
        onehot = torch.nn.functional.one_hot(labels.long(), classes)
        parts.append(alpha * onehot.to(dtype or (teacher_logits.dtype if teacher_logits is not None else torch.float32)))
    if alpha < 1:
        if teacher_logits is None:
            raise ParameterError("teacher_logits are required when alpha < 1")
        if teacher_logits.shape[-1] != classes:
            raise ParameterError(f"teacher_logits must have {classes} classes, got {teacher_logits.shape[-1]}")
        parts.append((1 - alpha) * teacher_probs(teacher_logits.to(dtype) if dtype else teacher_logits, tau))
    q = parts[0] if len(parts) == 1 else parts[0] + parts[1].to(parts[0].dtype)
    return q if dtype is None else q.to(dtype)


def soft_cross_entropy(logits: torch.Tensor, q: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``-sum_c q_c log softmax(logits)_c``; logits ``(R, N, C)``, ``q`` ``(N, C)`` or ``(R, N, C)``."""
    return _reduce(-(q.to(logits.dtype) * torch.log_softmax(logits, -1)).sum(-1), reduction)


def distill_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float = 1.0, reduction: str = "mean"
) -> torch.Tensor:
    """``KL(p_T^tau || p_S) = sum_c q_c (log q_c - log p_S,c)`` with ``0 log 0 = 0``."""
    q = teacher_probs(teacher_logits, tau).to(student_logits.dtype)
    ent = torch.where(q > 0, q * torch.log(torch.where(q > 0, q, 1.0)), 0.0).sum(-1)
    return _reduce(ent + (-(q * torch.log_softmax(student_logits, -1)).sum(-1)), reduction)


def mixed_loss(
    student_logits: torch.Tensor, labels: torch.Tensor, teacher_logits: torch.Tensor, alpha: float,
    tau: float = 1.0, reduction: str = "mean",
) -> torch.Tensor:
    """``alpha CE(labels) + (1 - alpha) KL(p_T^tau || p_S)`` (Section 2's supervision mix)."""
    alpha = check_real("alpha", alpha, 0, 1)
    ce = cross_entropy(student_logits, labels, reduction)
    kl = distill_kl(student_logits, teacher_logits, tau, reduction)
    return alpha * ce + (1 - alpha) * kl


def hinge_grad(f: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``d/df max(0, 1 - t f) = -t 1[t f < 1]`` (same shape as ``f``; ``t`` broadcasts)."""
    t = t.to(f.dtype)
    return torch.where(t * f < 1, -t, torch.zeros_like(f))


def soft_ce_grad(logits: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``d/dlogits [-sum q log softmax(logits)] = softmax(logits) - q`` (for ``sum_c q_c = 1``)."""
    return torch.softmax(logits, -1) - q.to(logits.dtype)


# --------------------------------------------------------------------------- lr schedules
def _steps(step) -> torch.Tensor:
    return torch.as_tensor(step, dtype=torch.float64)


def constant_lr(step) -> torch.Tensor:
    """Multiplier 1 at every step (``step``: int or tensor of ints; float64 result of its shape)."""
    return torch.ones_like(_steps(step))


def _warmup(s: torch.Tensor, warmup: int) -> torch.Tensor:
    return torch.clamp(s / max(warmup, 1), max=1.0) if warmup > 0 else torch.ones_like(s)


def _progress(s: torch.Tensor, warmup: int, total: int) -> torch.Tensor:
    return torch.clamp((s - warmup) / max(total - warmup, 1), 0.0, 1.0)


def _check_sched(warmup: int, total: int, min_ratio: float) -> tuple[int, int, float]:
    total = check_int("total", total, 1)
    warmup = check_int("warmup", warmup, 0, total)
    min_ratio = float(check_real("min_ratio", min_ratio, 0, 1))
    return warmup, total, min_ratio


def warmup_cosine(step, *, warmup: int, total: int, min_ratio: float = 0.0) -> torch.Tensor:
    """Linear warmup ``step / warmup`` for ``step < warmup``, then cosine decay to ``min_ratio``.

    ``mult = min_ratio + (1 - min_ratio) (1 + cos(pi p)) / 2`` with
    ``p = clamp((step - warmup) / (total - warmup), 0, 1)``; e.g. (warmup=10, total=110) gives
    0 at step 0, 0.5 at step 5, 1 at step 10, 0.5 at step 60 and ``min_ratio`` from step 110 on.
    """
    warmup, total, min_ratio = _check_sched(warmup, total, min_ratio)
    s = _steps(step)
    decay = min_ratio + (1 - min_ratio) * 0.5 * (1 + torch.cos(math.pi * _progress(s, warmup, total)))
    return torch.where(s < warmup, _warmup(s, warmup), decay)


def warmup_linear(step, *, warmup: int, total: int, min_ratio: float = 0.0) -> torch.Tensor:
    """Linear warmup as in :func:`warmup_cosine`, then linear decay ``1 -> min_ratio`` at ``total``."""
    warmup, total, min_ratio = _check_sched(warmup, total, min_ratio)
    s = _steps(step)
    decay = min_ratio + (1 - min_ratio) * (1 - _progress(s, warmup, total))
    return torch.where(s < warmup, _warmup(s, warmup), decay)


def lr_schedule(
    kind: str = "constant", *, warmup: int = 0, total: int = 1, min_ratio: float = 0.0
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The schedule ``kind`` in {constant, cosine, linear} as a function ``steps -> multipliers``.

    Training functions multiply the per-run base lr ``(R,)`` by ``schedule(global_steps)``.
    """
    check_choice("kind", kind, ("constant", "cosine", "linear"))
    if kind == "constant":
        return constant_lr
    _check_sched(warmup, total, min_ratio)
    fn = warmup_cosine if kind == "cosine" else warmup_linear
    return partial(fn, warmup=warmup, total=total, min_ratio=min_ratio)
