"""Validated arguments of a training call of the 2-layer MLP, shared by the mini-batch loop
(:mod:`simulate.sgd`) and the blocked batch-1 loop (:mod:`simulate.blocked`): loss kinds and kernel
targets, per-run rates, weight-decay limits, and the chunking of a run into segments.

Conventions are those of :mod:`simulate.sgd` (``train`` names the trained tensors; learning rates
are per run, ``(R,)``; ``lr_a_mult`` multiplies the output layer's rate).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from theory._checks import ParameterError, check_choice, check_int, check_real

from .losses import LOSSES, labels_to_pm1, soft_targets, teacher_probs
from .model import MLPParams, forward

__all__ = ["teacher_rows", "teacher_logits", "check_train", "loss_kind", "make_targets", "per_run", "check_mult", "TrainSetup", "setup_training",
           "blocked_decay_ok", "decay_check", "segments", "lr_steps", "TargetSchedule"]


def check_train(train: str) -> tuple[bool, bool, bool]:
    if not isinstance(train, str) or not train or set(train) - set("Wba"):
        raise ParameterError(f"train must be a non-empty combination of 'W', 'b', 'a', got {train!r}")
    return "W" in train, "b" in train, "a" in train


def loss_kind(loss: str) -> int:
    """0 for the hinge losses (target value ``t``), 1 for the cross-entropy family (target ``q``)."""
    check_choice("loss", loss, LOSSES)
    return 0 if loss.startswith("hinge") else 1


def _sampled(v) -> bool:
    """Whether ``v`` (alpha or tau) holds one value per run and sample, ``(R, N)``."""
    return torch.is_tensor(v) and v.dim() == 2


def make_targets(
    loss: str, classes: int, *, labels: torch.Tensor | None = None, teacher_logits: torch.Tensor | None = None,
    alpha=0.0, tau=1.0, dtype: torch.dtype = torch.float32, smoothing: float = 0.0,
) -> torch.Tensor:
    """The kernel target of ``loss``: ``t`` with ``loss = max(0, 1 - t f)`` for the hinge losses
    (``y = +-1`` from labels, or the teacher's scalar output), else the soft target ``q`` of
    :func:`simulate.losses.soft_targets` (``ce``: alpha = 1, ``kl``: alpha = 0, ``mix``: alpha).

    ``alpha`` and ``tau``: floats, per-run ``(R,)``, or per run and sample ``(R, N)`` (a schedule over
    the steps, :meth:`TrainSetup.mix_at`; then ``q = alpha onehot(y) + (1 - alpha) softmax(f_T / tau)``
    sample by sample, ``tau > 0``). ``smoothing`` eps: ``q <- (1 - eps) q + eps / C`` (label smoothing
    of every soft target)."""
    kind = loss_kind(loss)
    if kind == 0 and (smoothing or _sampled(alpha) or _sampled(tau)):
        raise ParameterError(f"label smoothing and alpha / temperature schedules need a cross-entropy loss, "
                             f"not {loss!r}")
    if loss == "hinge":
        return labels_to_pm1(labels, dtype)
    if loss == "hinge_distill":
        if teacher_logits is None:
            raise ParameterError("loss 'hinge_distill' needs a teacher")
        return teacher_logits[..., 0].to(dtype)
    assert kind == 1
    a = {"ce": 1.0, "kl": 0.0}.get(loss, alpha)
    if _sampled(a) or _sampled(tau):
        q = _scheduled_targets(classes, labels, teacher_logits, a, tau, dtype)
    else:
        q = soft_targets(classes, labels=labels, teacher_logits=teacher_logits, alpha=a, tau=tau, dtype=dtype)
    return q if not smoothing else (1 - smoothing) * q + smoothing / classes


def _scheduled_targets(classes, labels, teacher_logits, alpha, tau, dtype) -> torch.Tensor:
    """``q (R, N, C)`` with per-sample ``alpha`` and/or ``tau`` ``(R, N)`` (floats and ``(R,)`` broadcast)."""
    def weight(v):  # -> broadcastable against (R, N, C)
        v = torch.as_tensor(v, dtype=torch.float64)
        return v[..., None] if v.dim() == 2 else v.reshape(-1, 1, 1) if v.dim() == 1 else v

    pure_labels = not torch.is_tensor(alpha) and float(alpha) == 1.0
    p = None
    if not pure_labels:
        if teacher_logits is None:
            raise ParameterError("teacher_logits are required when alpha < 1")
        tl = teacher_logits.to(dtype)
        if _sampled(tau):
            p = torch.softmax(tl / weight(tau).to(tl.device, dtype), -1)
        else:
            p = teacher_probs(tl, tau)
        if not torch.is_tensor(alpha) and float(alpha) == 0.0:
            return p
    if labels is None:
        raise ParameterError("labels are required when alpha > 0")
    onehot = torch.nn.functional.one_hot(labels.long(), classes).to(dtype)
    if pure_labels:
        return onehot
    w = weight(alpha).to(p.device, dtype)
    return w * onehot + (1 - w) * p


def per_run(name: str, value, runs: int, hi: float | None = None):
    """``value`` as a float in ``[0, hi]``, or a per-run float64 tensor ``(runs,)`` of such values
    (per-run temperatures ``tau`` and mixing weights ``alpha``)."""
    if torch.is_tensor(value) or isinstance(value, (list, tuple)):
        t = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
        if t.numel() == 1:
            return float(check_real(name, float(t[0]), 0, hi))
        if t.shape != (runs,):
            raise ParameterError(f"{name} must be a float or one value per run ({runs}), got {t.numel()} values")
        if not bool(torch.isfinite(t).all()) or bool((t < 0).any()) or (hi is not None and bool((t > hi).any())):
            raise ParameterError(f"{name} must lie in [0, {'inf' if hi is None else f'{hi:g}'}] for every run")
        return t
    return float(check_real(name, value, 0, hi))


def check_mult(lr_a_mult) -> float:
    return float(check_real("lr_a_mult", lr_a_mult, 0, lo_open=True))


def teacher_rows(width: int, runs: int) -> int:
    """Samples per chunk of a teacher's forward pass over ``runs`` runs of width ``width`` (at most 2^24
    hidden activations). Every teacher of a student program chunks alike, so its outputs are the same
    bits however its runs are grouped (:class:`simulate.student.SharedTeacher`)."""
    return max(1, 2**24 // max(1, width * runs))


@dataclass(frozen=True)
class TargetSchedule:
    """How the soft targets change over training (a student's supervision; the official code's
    ``kl_alpha_incre`` and teacher-temperature annealing, and label smoothing).

    ``alpha_end``: alpha of step ``t`` is ``alpha + (alpha_end - alpha) t / total`` (a float or per run
    ``(R,)``; None: constant). ``tau_end``: tau of step ``t`` is ``tau (tau_end / tau)^(t / total)``
    (geometric, every ``tau > 0``; None: constant). ``total``: the steps of the whole training (global
    steps ``t``, as the learning-rate schedule). ``smoothing`` eps: ``q <- (1 - eps) q + eps / C``."""

    alpha_end: float | torch.Tensor | None = None
    tau_end: float | None = None
    total: int = 1
    smoothing: float = 0.0


class TrainSetup:
    """Validated arguments of a training call (shared by ``simulate.sgd`` and ``simulate.blocked``)."""

    alpha_end = tau_end = None  # no schedule, no smoothing unless setup_training sets them
    smoothing, total = 0.0, 1

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def mix_at(self, g0: int, n: int):
        """``(alpha, tau)`` for the ``n * batch_size`` samples of global steps ``g0 .. g0 + n - 1``: the
        constants when there is no schedule, else ``(R, n B)`` float64 tensors of each step's values
        (:class:`TargetSchedule`; the ``B`` samples of a step share them)."""
        if self.alpha_end is None and self.tau_end is None:
            return self.alpha, self.tau
        dev = self.lr.device
        f = (torch.arange(g0, g0 + n, dtype=torch.float64, device=dev) / self.total)
        f = f.repeat_interleave(self.batch_size)[None, :]  # (1, n B)

        def runs(v):
            return torch.as_tensor(v, dtype=torch.float64, device=dev).reshape(-1).expand(self.runs)[:, None]

        alpha, tau = self.alpha, self.tau
        if self.alpha_end is not None:
            a0, a1 = runs(self.alpha), runs(self.alpha_end)
            alpha = a0 + (a1 - a0) * f
        if self.tau_end is not None:
            t0 = runs(self.tau)
            tau = t0 * (self.tau_end / t0) ** f
        return alpha, tau

    def teacher_out(self, x: torch.Tensor) -> torch.Tensor | None:
        """Teacher logits for ``x`` ``(N, d)``/``(R, N, d)`` in one batched pass (row-chunked)."""
        t = self.teacher
        if t is None:
            return None
        return teacher_logits(t, x) if isinstance(t, MLPParams) else t(x)


    def batch(self, sampler, n: int, g0: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples for ``n`` steps from global step ``g0``: ``x`` ``(n B, d)``/``(R, n B, d)`` and kernel targets."""
        x, labels = sampler(n * self.batch_size)
        if x.shape[-2] != n * self.batch_size or x.shape[-1] != self.dim or x.dim() not in (2, 3) or \
                (x.dim() == 3 and x.shape[0] != self.runs):
            raise ParameterError(f"sampler({n * self.batch_size}) must return x of shape (n, {self.dim}) or "
                                 f"({self.runs}, n, {self.dim}), got {tuple(x.shape)}")
        tl = self.teacher_out(x)
        alpha, tau = self.mix_at(g0, n)
        tgt = make_targets(self.loss, self.classes, labels=labels, teacher_logits=tl, alpha=alpha,
                           tau=tau, dtype=self.dtype, smoothing=self.smoothing)
        return x.to(self.dtype), tgt


def teacher_logits(t: MLPParams, x: torch.Tensor) -> torch.Tensor:
    """The logits of teacher ``t`` for ``x`` ``(N, d)``/``(R, N, d)``: ``(N, C)`` for a one-run teacher,
    else ``(R, N, C)``, in row chunks of :func:`teacher_rows` (the chunks, hence the bits, of every
    student program with this teacher)."""
    flat = x.reshape(-1, x.shape[-1]).to(t.W.dtype)
    rows = teacher_rows(t.width, t.runs)
    if t.runs == 1 or x.dim() == 2:
        out = torch.cat([forward(t, flat[i:i + rows]) for i in range(0, flat.shape[0], rows)], 1)
        out = out.reshape(t.runs, *x.shape[:-1], t.classes)
        return out[0] if t.runs == 1 else out  # (N, C) | (R, N, C)
    return torch.cat([forward(t, x[:, i:i + rows].to(t.W.dtype)) for i in range(0, x.shape[1], rows)], 1)


def setup_training(params, steps, lr, loss, teacher, alpha, tau, start_step, train, wd_W, wd_a, every, chunk,
           batch_size, lr_a_mult=1.0, targets: TargetSchedule | None = None) -> TrainSetup:
    if not isinstance(params, MLPParams):
        raise ParameterError("params must be an MLPParams")
    kind = loss_kind(loss)
    check_train(train)
    if kind == 0 and params.classes != 1:
        raise ParameterError(f"loss {loss!r} needs C = 1 output, got C = {params.classes}")
    if kind == 1 and params.classes < 2:
        raise ParameterError(f"loss {loss!r} needs C >= 2 outputs, got C = {params.classes}")
    if loss in ("hinge_distill", "kl", "mix") and teacher is None:
        raise ParameterError(f"loss {loss!r} needs a teacher")
    lr = torch.as_tensor(lr, dtype=torch.float64).reshape(-1)
    if lr.numel() == 1:
        lr = lr.expand(params.runs)
    if lr.shape != (params.runs,):
        raise ParameterError(f"lr must be a float or a tensor of shape (runs,) = ({params.runs},), got {tuple(lr.shape)}")
    if bool((lr < 0).any()) or not bool(torch.isfinite(lr).all()):
        raise ParameterError("lr must be finite and >= 0")
    setup = TrainSetup(
        steps=check_int("steps", steps, 0), start_step=check_int("start_step", start_step, 0),
        every=check_int("every", every, 1) if every is not None else None, chunk=check_int("chunk", chunk, 1),
        batch_size=check_int("batch_size", batch_size, 1), loss=loss, kind=kind, teacher=teacher,
        alpha=per_run("alpha", alpha, params.runs, 1), tau=per_run("tau", tau, params.runs), train=train,
        wd_W=float(check_real("weight_decay_W", wd_W, 0)), wd_a=float(check_real("weight_decay_a", wd_a, 0)),
        lr=lr.to(params.W.device), lr_a_mult=check_mult(lr_a_mult), runs=params.runs, dim=params.dim,
        classes=params.classes, dtype=params.W.dtype, target_dim=1 if kind == 0 else 2,
    )
    if targets is not None and (targets.alpha_end is not None or targets.tau_end is not None or targets.smoothing):
        _set_schedule(setup, targets)
    return setup


def _set_schedule(setup: TrainSetup, ts: TargetSchedule) -> None:
    """Checks a :class:`TargetSchedule` against ``setup`` and stores it there."""
    if setup.kind == 0:
        raise ParameterError(f"label smoothing and alpha / temperature schedules need a cross-entropy loss, "
                             f"not {setup.loss!r}")
    setup.smoothing = float(check_real("label_smoothing", ts.smoothing, 0, 1, hi_open=True))
    setup.total = check_int("total", ts.total, 1)
    if ts.alpha_end is not None:
        setup.alpha_end = per_run("alpha_end", ts.alpha_end, setup.runs, 1)
    if ts.tau_end is not None:
        setup.tau_end = float(check_real("temperature_end", ts.tau_end, 0, lo_open=True))
        t0 = torch.as_tensor(setup.tau, dtype=torch.float64)
        if bool((t0 <= 0).any()):
            raise ParameterError("temperature_end anneals geometrically: every run's temperature must be > 0")


def blocked_decay_ok(top_lr: float, wd_W: float, wd_a: float, lr_a_mult: float) -> bool:
    """Whether the blocked path can take these decays: ``2 lr lambda_W < 1`` and ``2 lr lr_a_mult lambda_a < 1``."""
    return 2 * top_lr * wd_W < 1 and 2 * top_lr * lr_a_mult * wd_a < 1


def decay_check(setup: TrainSetup) -> None:
    """The blocked path divides by ``prod (1 - 2 lr lambda_W)``, so it needs ``2 lr lambda_W < 1``,
    and ``2 lr lr_a_mult lambda_a < 1`` for ``a`` (mini-batch SGD takes any decay, e.g. Algorithm
    1's ``2 eta_1 lambda_1 = 1``)."""
    top = float(setup.lr.max()) if setup.lr.numel() else 0.0
    if blocked_decay_ok(top, setup.wd_W, setup.wd_a, setup.lr_a_mult):
        return
    if 2 * top * setup.wd_W >= 1:
        raise ParameterError(f"weight_decay_W must satisfy 2 lr weight_decay_W < 1 "
                             f"(got lr = {top}, weight_decay_W = {setup.wd_W})")
    if 2 * top * setup.lr_a_mult * setup.wd_a >= 1:
        raise ParameterError(f"weight_decay_a must satisfy 2 lr lr_a_mult weight_decay_a < 1 (got lr = {top}, "
                             f"lr_a_mult = {setup.lr_a_mult}, weight_decay_a = {setup.wd_a})")


def segments(start: int, steps: int, every: int | None, chunk: int):
    """``(global_step, n)`` pieces of at most ``chunk`` steps that end on multiples of ``every``."""
    done = 0
    while done < steps:
        g = start + done
        n = min(chunk, steps - done)
        if every:
            n = min(n, every - g % every)
        yield g, n
        done += n


def lr_steps(setup: TrainSetup, schedule, g0: int, n: int) -> torch.Tensor:
    """Per-run, per-step learning rates ``(R, n)`` for global steps ``g0 .. g0 + n - 1``."""
    if schedule is None:
        return setup.lr.to(setup.dtype)[:, None].expand(setup.runs, n)
    mult = torch.as_tensor(schedule(torch.arange(g0, g0 + n)), dtype=torch.float64).to(setup.lr.device)
    return (setup.lr[:, None] * mult[None, :]).to(setup.dtype)
