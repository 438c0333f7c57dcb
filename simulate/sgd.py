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

from theory._checks import ParameterError, check_choice, check_int

from . import losses as L
from .losses import LOSSES, labels_to_pm1
from .model import MLPParams, forward, hidden
from .train_setup import (
    TargetSchedule, blocked_decay_ok, check_mult, check_train, loss_kind, lr_steps, make_targets, segments,
    setup_training,
)

__all__ = ["reference_step", "summed_grads", "sgd_step", "loss_kind", "make_targets", "train_sgd", "two_stage_train"]


def _apply(params: MLPParams, gW, gb, ga, lr, train: str, wd_W: float, wd_a: float, lr_a_mult: float = 1.0) -> None:
    tW, tb, ta = check_train(train)
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
    check_train(train)
    lr_a_mult = check_mult(lr_a_mult)
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


def summed_grads(params: MLPParams, x: torch.Tensor, targets: torch.Tensor, loss_kind: int):
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
    lr_a_mult = check_mult(lr_a_mult)
    x = x.to(params.W.dtype)
    B = x.shape[-2]
    rows = max_rows or max(1, (1 << 24) // (params.runs * params.width))
    sums, outs = None, []
    for i in range(0, B, rows):
        xs = x[..., i:i + rows, :]
        ts = targets[i:i + rows] if targets.dim() == (1 if loss_kind == 0 else 2) else targets[:, i:i + rows]
        *grads, f = summed_grads(params, xs, ts, loss_kind)
        sums = grads if sums is None else [u + v for u, v in zip(sums, grads)]
        outs.append(f)
    gW, gb, ga = (t / B for t in sums)
    _apply(params, gW, gb, ga, torch.as_tensor(lr, device=x.device).expand(params.runs), train,
           weight_decay_W, weight_decay_a, lr_a_mult)
    return outs[0] if len(outs) == 1 else torch.cat(outs, 1)


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
    every: int | None = None, chunk: int = 4096, lr_a_mult: float = 1.0, targets: TargetSchedule | None = None,
) -> MLPParams:
    """Mini-batch SGD for ``steps`` steps of ``batch_size`` fresh samples each, in place.

    Arguments as in :func:`simulate.blocked.train_online` (``sampler(n)`` returns ``(x, labels)``
    with ``x`` ``(n, d)`` or ``(R, n, d)``; data and teacher outputs are produced once per chunk
    of ``chunk`` steps, fewer when ``chunk * batch_size > 2^20``; ``on_block(step, params)`` at
    global multiples of ``every``; ``lr_a_mult``: rate multiplier of ``a``, see the module doc;
    ``targets``: label smoothing and the alpha / temperature schedules of the soft targets,
    :class:`simulate.train_setup.TargetSchedule`). With ``batch_size=1`` the iterates equal ``train_online``'s.
    """
    setup = setup_training(params, steps, lr, loss, teacher, alpha, tau, start_step, train, weight_decay_W,
                   weight_decay_a, every, chunk, batch_size, lr_a_mult, targets)
    B = setup.batch_size
    chunk = max(1, min(setup.chunk, (1 << 20) // B))  # at most ~2^20 samples drawn at once
    for g0, n in segments(setup.start_step, setup.steps, setup.every, chunk):
        x, tgt = setup.batch(sampler, n, g0)
        xs, ts = _step_major(x, n, B, 2), _step_major(tgt, n, B, setup.target_dim)
        lrs = lr_steps(setup, schedule, g0, n)
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
    lr_a_mult = check_mult(lr_a_mult)
    stages = (("W", T1, check_int("B1", B1, 1), eta1, lambda1, 0.0, 0),
              ("a", T2, check_int("B2", B2, 1), eta2, 0.0, lambda2, T1))
    for train, steps, B, eta, wd_W, wd_a, start in stages:
        common = dict(loss=loss, teacher=teacher, alpha=alpha, tau=tau, start_step=start, train=train,
                      weight_decay_W=wd_W, weight_decay_a=wd_a, on_block=on_block, every=every, lr_a_mult=lr_a_mult)
        top = float(torch.as_tensor(eta, dtype=torch.float64).max()) if steps else 0.0
        if B == 1 and blocked_decay_ok(top, wd_W, wd_a, lr_a_mult):
            train_online(params, sampler, steps, eta, backend=backend, **common)
        else:
            train_sgd(params, sampler, steps, eta, batch_size=B, **common)
    return params
