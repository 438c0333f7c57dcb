"""Mini-batch SGD for ``R`` runs of the 2-layer MLP, the autograd reference, and Algorithm 1.

* :func:`reference_step`: one SGD step by autograd on the losses of ``simulate.losses`` (the
  ground truth of the tests);
* :func:`sgd_step`: the same step with the hand-written gradient, batched over runs (efficient
  for large batches such as Algorithm 1's ``B_1``);
* :func:`train_sgd`: a training loop for any batch size built on :func:`sgd_step` (batch size 1
  is much faster through :func:`simulate.blocked.train_online`, which gives the same iterates);
* :func:`two_stage_train`: Algorithm 1 (Appendix B).

Conventions shared with ``simulate.blocked``: ``train`` names the trained tensors (``"W"``,
``"b"``, ``"a"``; e.g. ``"W"`` for stage 1, ``"a"`` for stage 2, ``"Wba"`` for all);
``weight_decay_W``/``weight_decay_a`` are Algorithm 1's ``lambda`` in ``L + lambda ||w||^2``,
so a step multiplies the weights by ``1 - 2 eta lambda`` (``torch.optim.SGD``'s
``weight_decay = 2 lambda``). Learning rates are per run, ``(R,)``. Losses are batch means.

``lr_a_mult`` (float > 0, default 1) is a per-layer learning-rate multiplier of the output
layer: ``W`` and ``b`` step with ``eta``, ``a`` with ``eta * lr_a_mult``. The decay of ``a`` is
part of its gradient, so it is scaled by the same rate: ``a <- (1 - 2 eta lr_a_mult lambda_a) a
- eta lr_a_mult dL/da``, i.e. exactly gradient descent on ``L + lambda_W ||W||^2 + lambda_a
||a||^2`` with per-layer rates. With PyTorch's default init the tangent kernel of the output
layer grows like ``||h||^2 ~ m / 6``, so at width ``m = 50000`` a rate ``eta`` moves the logits
by ``~eta m / 6`` in one step; ``lr_a_mult`` with ``eta lr_a_mult m <~ 3`` (e.g. ``100/m``,
mu-P-like) keeps wide networks out of saturation (``benchmarks/stability_wide_teacher.py``).
"""
from __future__ import annotations

from typing import Callable

import torch

from theory._checks import ParameterError, check_choice, check_int, check_real

from .losses import LOSSES, labels_to_pm1, soft_targets
from . import losses as L
from .model import MLPParams, forward, hidden

__all__ = ["reference_step", "sgd_step", "loss_kind", "make_targets", "train_sgd", "two_stage_train"]


def _check_train(train: str) -> tuple[bool, bool, bool]:
    if not isinstance(train, str) or not train or set(train) - set("Wba"):
        raise ParameterError(f"train must be a non-empty combination of 'W', 'b', 'a', got {train!r}")
    return "W" in train, "b" in train, "a" in train


def loss_kind(loss: str) -> int:
    """0 for the hinge losses (target value ``t``), 1 for the cross-entropy family (target ``q``)."""
    check_choice("loss", loss, LOSSES)
    return 0 if loss.startswith("hinge") else 1


def make_targets(
    loss: str, classes: int, *, labels: torch.Tensor | None = None, teacher_logits: torch.Tensor | None = None,
    alpha: float = 0.0, tau: float = 1.0, dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The kernel target of ``loss``: ``t`` with ``loss = max(0, 1 - t f)`` for the hinge losses
    (``y = +-1`` from labels, or the teacher's scalar output), else the soft target ``q`` of
    :func:`simulate.losses.soft_targets` (``ce``: alpha = 1, ``kl``: alpha = 0, ``mix``: alpha)."""
    kind = loss_kind(loss)
    if loss == "hinge":
        return labels_to_pm1(labels, dtype)
    if loss == "hinge_distill":
        if teacher_logits is None:
            raise ParameterError("loss 'hinge_distill' needs a teacher")
        return teacher_logits[..., 0].to(dtype)
    assert kind == 1
    a = {"ce": 1.0, "kl": 0.0}.get(loss, alpha)
    return soft_targets(classes, labels=labels, teacher_logits=teacher_logits, alpha=a, tau=tau, dtype=dtype)


def _per_run(name: str, value, runs: int, hi: float | None = None):
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


def _check_mult(lr_a_mult) -> float:
    return float(check_real("lr_a_mult", lr_a_mult, 0, lo_open=True))


def _apply(params: MLPParams, gW, gb, ga, lr, train: str, wd_W: float, wd_a: float, lr_a_mult: float = 1.0) -> None:
    tW, tb, ta = _check_train(train)
    lr = lr.to(params.W.dtype)
    lr_a = lr * lr_a_mult
    if tW:
        params.W.mul_((1 - 2 * lr * wd_W)[:, None, None]).sub_(lr[:, None, None] * gW)
    if tb:
        params.b.sub_(lr[:, None] * gb)
    if ta:
        params.a.mul_((1 - 2 * lr_a * wd_a)[:, None, None]).sub_(lr_a[:, None, None] * ga)


def reference_step(
    params: MLPParams, x: torch.Tensor, lr: torch.Tensor, *, loss: str, labels: torch.Tensor | None = None,
    teacher_logits: torch.Tensor | None = None, alpha: float = 0.0, tau: float = 1.0, train: str = "Wba",
    weight_decay_W: float = 0.0, weight_decay_a: float = 0.0, lr_a_mult: float = 1.0,
) -> tuple[MLPParams, torch.Tensor]:
    """One SGD step by autograd: ``theta <- theta - lr_r grad(L_r + lambda_W ||W||^2 + lambda_a ||a||^2)``,
    with the rate ``lr_r * lr_a_mult`` for ``a``.

    ``x``: ``(B, d)`` or ``(R, B, d)``; ``labels`` ``(B,)``/``(R, B)``; ``teacher_logits``
    ``(B, C)``/``(R, B, C)``; ``lr`` ``(R,)``. ``L_r`` is the batch mean of ``loss`` computed by
    the functions of ``simulate.losses``. Returns new params and the outputs ``(R, B, C)``.
    """
    check_choice("loss", loss, LOSSES)
    _check_train(train)
    lr_a_mult = _check_mult(lr_a_mult)
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in params.tensors().items()}
    p = MLPParams(leaves["W"], leaves["b"], leaves["a"])
    f = forward(p, x.to(p.W.dtype))
    if loss == "hinge":
        per_run = L.hinge_loss(f, labels_to_pm1(labels, f.dtype))
    elif loss == "hinge_distill":
        per_run = L.student_hinge_loss(f, teacher_logits)
    elif loss == "ce":
        per_run = L.cross_entropy(f, labels)
    elif loss == "kl":
        per_run = L.distill_kl(f, teacher_logits.to(f.dtype), tau)
    else:
        per_run = L.mixed_loss(f, labels, teacher_logits.to(f.dtype), alpha, tau)
    total = per_run.sum() + weight_decay_W * (p.W**2).sum() + weight_decay_a * (p.a**2).sum()
    grads = torch.autograd.grad(total, [p.W, p.b, p.a])
    new = params.clone()
    lr = torch.as_tensor(lr, dtype=new.W.dtype, device=new.W.device).expand(params.runs)
    with torch.no_grad():
        # weight decay is inside the autograd gradient here; apply plain steps
        gW, gb, ga = grads
        if "W" in train:
            new.W.sub_(lr[:, None, None] * gW)
        if "b" in train:
            new.b.sub_(lr[:, None] * gb)
        if "a" in train:
            new.a.sub_((lr * lr_a_mult)[:, None, None] * ga)
    return new, f.detach()


def _output_grads(params: MLPParams, x: torch.Tensor, targets: torch.Tensor, loss_kind: int):
    """Summed (not averaged) gradients ``(gW, gb, ga)`` over the rows of ``x`` and the outputs."""
    z = hidden(params, x)  # (R, B, m)
    h = torch.relu(z)
    f = torch.bmm(h, params.a.transpose(1, 2))  # (R, B, C)
    g = L.hinge_grad(f[..., 0], targets)[..., None] if loss_kind == 0 else L.soft_ce_grad(f, targets)
    dz = torch.bmm(g, params.a) * (z > 0)  # (R, B, m)
    gW = torch.einsum("rbm,bd->rmd", dz, x) if x.dim() == 2 else torch.bmm(dz.transpose(1, 2), x)
    return gW, dz.sum(1), torch.bmm(g.transpose(1, 2), h), f


def sgd_step(
    params: MLPParams, x: torch.Tensor, targets: torch.Tensor, lr: torch.Tensor, *, loss_kind: int,
    train: str = "Wba", weight_decay_W: float = 0.0, weight_decay_a: float = 0.0, max_rows: int | None = None,
    lr_a_mult: float = 1.0,
) -> torch.Tensor:
    """One mini-batch SGD step with the hand-written gradient, in place; returns outputs ``(R, B, C)``.

    ``x``: ``(B, d)`` or ``(R, B, d)``; ``targets`` as :func:`make_targets` gives them, ``(B,)``
    / ``(R, B)`` (hinge, ``loss_kind = 0``) or ``(B, C)`` / ``(R, B, C)`` (``loss_kind = 1``).
    Large batches (Algorithm 1's ``B_1``) are processed in micro-batches of ``max_rows`` rows
    (default: ``R * rows * m <= 2^24``) whose gradients are summed, so memory stays bounded.
    ``lr`` ``(R,)``; ``a`` steps with ``lr * lr_a_mult`` (see the module doc).
    """
    lr_a_mult = _check_mult(lr_a_mult)
    x = x.to(params.W.dtype)
    B = x.shape[-2]
    rows = max_rows or max(1, (1 << 24) // (params.runs * params.width))
    sums, outs = None, []
    for i in range(0, B, rows):
        xs = x[..., i:i + rows, :]
        ts = targets[i:i + rows] if targets.dim() == (1 if loss_kind == 0 else 2) else targets[:, i:i + rows]
        *grads, f = _output_grads(params, xs, ts, loss_kind)
        sums = grads if sums is None else [u + v for u, v in zip(sums, grads)]
        outs.append(f)
    gW, gb, ga = (t / B for t in sums)
    _apply(params, gW, gb, ga, torch.as_tensor(lr, device=x.device).expand(params.runs), train,
           weight_decay_W, weight_decay_a, lr_a_mult)
    return outs[0] if len(outs) == 1 else torch.cat(outs, 1)


# --------------------------------------------------------------------------- shared training driver
class TrainSetup:
    """Validated arguments of a training call (internal; shared with ``simulate.blocked``)."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def teacher_out(self, x: torch.Tensor) -> torch.Tensor | None:
        """Teacher logits for ``x`` ``(N, d)``/``(R, N, d)`` in one batched pass (row-chunked)."""
        t = self.teacher
        if t is None:
            return None
        if not isinstance(t, MLPParams):
            return t(x)
        flat = x.reshape(-1, x.shape[-1]).to(t.W.dtype)
        rows = max(1, 2**24 // max(1, t.width * t.runs))
        if t.runs == 1 or x.dim() == 2:
            out = torch.cat([forward(t, flat[i:i + rows]) for i in range(0, flat.shape[0], rows)], 1)
            out = out.reshape(t.runs, *x.shape[:-1], t.classes)
            return out[0] if t.runs == 1 else out  # (N, C) | (R, N, C)
        return torch.cat([forward(t, x[:, i:i + rows].to(t.W.dtype)) for i in range(0, x.shape[1], rows)], 1)

    def batch(self, sampler, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples for ``n`` steps: ``x`` ``(n B, d)``/``(R, n B, d)`` and kernel targets."""
        x, labels = sampler(n * self.batch_size)
        if x.shape[-2] != n * self.batch_size or x.shape[-1] != self.dim or x.dim() not in (2, 3) or \
                (x.dim() == 3 and x.shape[0] != self.runs):
            raise ParameterError(f"sampler({n * self.batch_size}) must return x of shape (n, {self.dim}) or "
                                 f"({self.runs}, n, {self.dim}), got {tuple(x.shape)}")
        tl = self.teacher_out(x)
        tgt = make_targets(self.loss, self.classes, labels=labels, teacher_logits=tl, alpha=self.alpha,
                           tau=self.tau, dtype=self.dtype)
        return x.to(self.dtype), tgt


def _setup(params, steps, lr, loss, teacher, alpha, tau, start_step, train, wd_W, wd_a, every, chunk,
           batch_size, lr_a_mult=1.0) -> TrainSetup:
    if not isinstance(params, MLPParams):
        raise ParameterError("params must be an MLPParams")
    kind = loss_kind(loss)
    _check_train(train)
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
        alpha=_per_run("alpha", alpha, params.runs, 1), tau=_per_run("tau", tau, params.runs), train=train,
        wd_W=float(check_real("weight_decay_W", wd_W, 0)), wd_a=float(check_real("weight_decay_a", wd_a, 0)),
        lr=lr.to(params.W.device), lr_a_mult=_check_mult(lr_a_mult), runs=params.runs, dim=params.dim,
        classes=params.classes, dtype=params.W.dtype, target_dim=1 if kind == 0 else 2,
    )
    return setup


def _blocked_decay_ok(top_lr: float, wd_W: float, wd_a: float, lr_a_mult: float) -> bool:
    """Whether the blocked path can take these decays: ``2 lr lambda_W < 1`` and ``2 lr lr_a_mult lambda_a < 1``."""
    return 2 * top_lr * wd_W < 1 and 2 * top_lr * lr_a_mult * wd_a < 1


def _decay_check(setup: TrainSetup) -> None:
    """The blocked path divides by ``prod (1 - 2 lr lambda_W)``, so it needs ``2 lr lambda_W < 1``,
    and ``2 lr lr_a_mult lambda_a < 1`` for ``a`` (mini-batch SGD takes any decay, e.g. Algorithm
    1's ``2 eta_1 lambda_1 = 1``)."""
    top = float(setup.lr.max()) if setup.lr.numel() else 0.0
    if _blocked_decay_ok(top, setup.wd_W, setup.wd_a, setup.lr_a_mult):
        return
    if 2 * top * setup.wd_W >= 1:
        raise ParameterError(f"weight_decay_W must satisfy 2 lr weight_decay_W < 1 "
                             f"(got lr = {top}, weight_decay_W = {setup.wd_W})")
    if 2 * top * setup.lr_a_mult * setup.wd_a >= 1:
        raise ParameterError(f"weight_decay_a must satisfy 2 lr lr_a_mult weight_decay_a < 1 (got lr = {top}, "
                             f"lr_a_mult = {setup.lr_a_mult}, weight_decay_a = {setup.wd_a})")


def _segments(start: int, steps: int, every: int | None, chunk: int):
    """``(global_step, n)`` pieces of at most ``chunk`` steps that end on multiples of ``every``."""
    done = 0
    while done < steps:
        g = start + done
        n = min(chunk, steps - done)
        if every:
            n = min(n, every - g % every)
        yield g, n
        done += n


def _lr_steps(setup: TrainSetup, schedule, g0: int, n: int) -> torch.Tensor:
    """Per-run, per-step learning rates ``(R, n)`` for global steps ``g0 .. g0 + n - 1``."""
    if schedule is None:
        return setup.lr.to(setup.dtype)[:, None].expand(setup.runs, n)
    mult = torch.as_tensor(schedule(torch.arange(g0, g0 + n)), dtype=torch.float64).to(setup.lr.device)
    return (setup.lr[:, None] * mult[None, :]).to(setup.dtype)


def _step_major(t: torch.Tensor, n: int, B: int, shared_dim: int) -> torch.Tensor:
    """``(n B, ...)`` -> ``(n, B, ...)`` or ``(R, n B, ...)`` -> ``(n, R, B, ...)``."""
    if t.dim() == shared_dim:
        return t.reshape(n, B, *t.shape[1:])
    return t.reshape(t.shape[0], n, B, *t.shape[2:]).transpose(0, 1)


def train_sgd(
    params: MLPParams, sampler: Callable[[int], tuple[torch.Tensor, torch.Tensor]], steps: int,
    lr: torch.Tensor | float, *, batch_size: int = 1, loss: str = "ce", teacher=None, alpha: float = 0.0,
    tau: float = 1.0, schedule: Callable[[torch.Tensor], torch.Tensor] | None = None, start_step: int = 0,
    train: str = "Wba", weight_decay_W: float = 0.0, weight_decay_a: float = 0.0, on_block=None,
    every: int | None = None, chunk: int = 4096, lr_a_mult: float = 1.0,
) -> MLPParams:
    """Mini-batch SGD for ``steps`` steps of ``batch_size`` fresh samples each, in place.

    Arguments as in :func:`simulate.blocked.train_online` (``sampler(n)`` returns ``(x, labels)``
    with ``x`` ``(n, d)`` or ``(R, n, d)``; data and teacher outputs are produced once per chunk
    of ``chunk`` steps, fewer when ``chunk * batch_size > 2^20``; ``on_block(step, params)`` at
    global multiples of ``every``; ``lr_a_mult``: rate multiplier of ``a``, see the module doc).
    With ``batch_size=1`` the iterates equal ``train_online``'s.
    """
    setup = _setup(params, steps, lr, loss, teacher, alpha, tau, start_step, train, weight_decay_W,
                   weight_decay_a, every, chunk, batch_size, lr_a_mult)
    B = setup.batch_size
    chunk = max(1, min(setup.chunk, (1 << 20) // B))  # at most ~2^20 samples drawn at once
    for g0, n in _segments(setup.start_step, setup.steps, setup.every, chunk):
        x, tgt = setup.batch(sampler, n)
        xs, ts = _step_major(x, n, B, 2), _step_major(tgt, n, B, setup.target_dim)
        lrs = _lr_steps(setup, schedule, g0, n)
        for s in range(n):
            sgd_step(params, xs[s], ts[s], lrs[:, s], loss_kind=setup.kind, train=setup.train,
                     weight_decay_W=setup.wd_W, weight_decay_a=setup.wd_a, lr_a_mult=setup.lr_a_mult)
        if on_block is not None and setup.every and (g0 + n) % setup.every == 0:
            on_block(g0 + n, params)
    return params


def two_stage_train(
    params: MLPParams, sampler: Callable[[int], tuple[torch.Tensor, torch.Tensor]], *, T1: int = 1, T2: int,
    B1: int | None = None, B2: int = 1, eta1=None, eta2=None, lambda1: float | None = None, lambda2: float = 0.0,
    loss: str = "hinge", teacher=None, alpha: float = 0.0, tau: float = 1.0, on_block=None,
    every: int | None = None, backend: str = "auto", lr_a_mult: float = 1.0, k: int | None = None,
) -> MLPParams:
    """Algorithm 1 (Appendix B), in place: biases frozen throughout.

    Stage 1: ``T1`` steps of batch ``B1`` training only ``W`` with rate ``eta1`` and weight decay
    ``lambda1``; stage 2: ``T2`` steps of batch ``B2`` training only ``a`` with ``eta2``,
    ``lambda2``. The teacher uses ``loss="hinge"`` (labels), the student ``loss="hinge_distill"``
    with ``teacher`` (the paper's setting; the CE losses work too). ``eta1``/``eta2``: float or
    ``(R,)``. Batch-1 stages run through the blocked path (``backend``), others (and batch-1
    stages with ``2 eta lambda >= 1``, e.g. Lemma B.2's ``2 eta_1 lambda_1 = 1``) through
    :func:`train_sgd`; stage 2's global steps continue from ``T1`` for ``on_block``.
    ``lr_a_mult`` multiplies the rate of ``a``: stage 1 does not train ``a``, so it only makes
    stage 2's rate (and decay step) ``eta2 * lr_a_mult``.

    ``B1``, ``eta1``, ``eta2`` left as None take the paper's values from
    :func:`theory.algorithm1.paper_hyperparameters` for this width, ``d`` and the parity degree
    ``k`` (then required): ``eta1 = m/(k |zeta_{k-1}|)``, and with it (unless given) ``lambda1``
    with ``2 eta1 lambda1 = 1`` (ERRATA.md item 7; otherwise ``lambda1`` defaults to 0),
    ``B1 = (k/|zeta_{k-1}|)^2 log(m d / 0.01)``,
    ``eta2 = 4 k^1.5 / (d sqrt(m (T2 - 1)))``.
    """
    from .blocked import train_online

    T1, T2 = check_int("T1", T1, 0), check_int("T2", T2, 0)
    if None in (B1, eta1, eta2):
        if k is None:
            raise ParameterError("k (the parity degree) is needed for the paper's default B1, eta1, lambda1, eta2")
        from theory.algorithm1 import paper_hyperparameters

        hp = paper_hyperparameters(params.dim, k, params.width, T2=max(T2, 2))
        if lambda1 is None and eta1 is None:
            lambda1 = hp["effective_lambda1"]
        B1 = hp["B1"] if B1 is None else B1
        eta1 = hp["eta1"] if eta1 is None else eta1
        eta2 = hp["eta2"] if eta2 is None else eta2
    lambda1 = 0.0 if lambda1 is None else lambda1
    lr_a_mult = _check_mult(lr_a_mult)
    stages = (("W", T1, check_int("B1", B1, 1), eta1, lambda1, 0.0, 0),
              ("a", T2, check_int("B2", B2, 1), eta2, 0.0, lambda2, T1))
    for train, steps, B, eta, wd_W, wd_a, start in stages:
        common = dict(loss=loss, teacher=teacher, alpha=alpha, tau=tau, start_step=start, train=train,
                      weight_decay_W=wd_W, weight_decay_a=wd_a, on_block=on_block, every=every, lr_a_mult=lr_a_mult)
        top = float(torch.as_tensor(eta, dtype=torch.float64).max()) if steps else 0.0
        if B == 1 and _blocked_decay_ok(top, wd_W, wd_a, lr_a_mult):
            train_online(params, sampler, steps, eta, backend=backend, **common)
        else:
            train_sgd(params, sampler, steps, eta, batch_size=B, **common)
    return params
