"""The pieces of Algorithm 1 (Appendix B) that its runs measure: the stage-1 step on a large batch
(drawn and reduced in chunks), support recovery after stage 1, and the first-stage correlations of
Corollary B.6.

Stage 1 (Lemma B.2) takes ``T1`` steps of ``B1`` fresh samples on the first layer ``W`` only (biases
and ``a`` frozen) with rate ``eta1`` and weight decay ``lambda1``:
``W <- (1 - 2 eta1 lambda1) W - eta1 grad``, ``grad`` the batch mean of the hinge gradient
``-t a_i 1[w_i.x + b_i >= 0] x 1[t f < 1]`` (``t = y`` for labels, ``t = f_T(x)`` for a teacher's
supervision, Appendix B.2). With ``2 eta1 lambda1 = 1`` (ERRATA.md item 7) the step *replaces* ``W`` by
``-eta1 grad``: which coordinates stand out is then independent of ``eta1``, only the scale of the
features of stage 2 depends on it.

``eta1`` "auto" (:func:`auto_eta1`): the rate that makes the mean over neurons of ``max_j |w1_ij|``
equal ``1/(2k)``, the in-support magnitude Lemma B.2 gives the teacher (ERRATA.md item 7: centre
``sign(a_i zeta_{k-1}) chi / (2k)``). For labels at a large batch this is the paper's
``eta1 = m / (k |zeta_{k-1}|)`` (the population gradient's in-support entries are
``|zeta_{k-1}| / (2m)``); for a teacher's supervision, whose output scale the paper leaves open, it
is the same normalisation. It is computed from the first step's batch, per run.

Shapes: ``R`` runs, width ``m``, ``d`` inputs; ``W (R, m, d)``; supports are index lists.
"""
from __future__ import annotations

from typing import Callable

import torch

from theory._checks import ParameterError

from .losses import labels_to_pm1
from .model import MLPParams, forward
from .sgd import summed_grads

__all__ = ["STAGE1_ROWS", "hinge_targets", "stage_one_gradient", "auto_eta1", "stage_one", "support_recovery",
           "majority", "first_stage_correlations"]

#: Samples per chunk of the stage-1 batch: ``R x rows x m`` hidden activations stay below 2^24.
STAGE1_ROWS = 1 << 24


def hinge_targets(teacher: MLPParams | None, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Stage 1's hinge targets ``(R, n)`` of samples ``x (R, n, d)``: the labels as +-1 (``teacher`` None),
    or the teacher's scalar output (one run per student run), in chunks of 4096 samples."""
    if teacher is None:
        return labels_to_pm1(label, torch.float32)
    return torch.cat([forward(teacher, x[:, i:i + 4096]) for i in range(0, x.shape[1], 4096)], 1)[..., 0]


def stage_one_gradient(params: MLPParams, draw: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
                       batch: int) -> torch.Tensor:
    """The batch mean of the hinge loss's gradient in ``W``, ``(R, m, d)`` (float64 accumulation),
    over ``batch`` samples drawn in chunks: ``draw(n)`` returns ``x (R, n, d)`` and the hinge targets
    ``t (R, n)`` (``y`` = +-1 labels, or the teacher's output)."""
    R, m, d = params.W.shape
    rows = max(1, STAGE1_ROWS // (R * m))
    total = torch.zeros(R, m, d, dtype=torch.float64, device=params.W.device)
    done = 0
    while done < batch:
        n = min(rows, batch - done)
        x, t = draw(n)
        gW, *_ = summed_grads(params, x.to(params.W.dtype), t, loss_kind=0)  # hinge, summed over the chunk
        total += gW.double()
        done += n
    return (total / batch).to(params.W.dtype)


def auto_eta1(grad: torch.Tensor, k: int) -> torch.Tensor:
    """Per run ``(R,)``: the rate with ``mean_i max_j |eta1 grad_ij| = 1/(2k)`` (module doc); runs whose
    gradient is exactly zero get rate 0."""
    scale = grad.abs().amax(-1).double().mean(-1)
    return torch.where(scale > 0, 1 / (2 * k * scale.clamp_min(1e-300)), torch.zeros_like(scale))


def stage_one(params: MLPParams, draw, *, steps: int, batch: int, k: int, eta1: float = 0.0,
              lambda1: float = -1.0) -> torch.Tensor:
    """Stage 1 of Algorithm 1 in place: ``steps`` steps of ``batch`` samples on ``W``. ``eta1`` 0:
    :func:`auto_eta1` from the first step's gradient; ``lambda1`` -1: ``1 / (2 eta1)`` (the step
    replaces ``W``). Returns the rates used ``(R,)`` (float64)."""
    rates = None
    for _ in range(steps):
        g = stage_one_gradient(params, draw, batch)
        if rates is None:
            rates = auto_eta1(g, k) if eta1 == 0 else torch.full((params.runs,), float(eta1), dtype=torch.float64)
        lr = rates.to(params.W.device)
        keep = torch.zeros_like(lr) if lambda1 == -1 else 1 - 2 * lr * lambda1
        params.W.mul_(keep.to(params.W.dtype)[:, None, None]).sub_(lr.to(params.W.dtype)[:, None, None] * g)
    return rates if rates is not None else torch.zeros(params.runs, dtype=torch.float64)


def support_recovery(W: torch.Tensor, support) -> dict[str, torch.Tensor]:
    """Per run ``(R,)``: ``recovered_frac``, the fraction of neurons whose smallest in-support
    ``|w_ij|`` exceeds their largest off-support one (Lemma B.2's separation), and the medians over
    neurons of ``in_min`` and ``off_max`` (the two sides of that comparison)."""
    S = torch.as_tensor(list(support), dtype=torch.long, device=W.device)
    off = torch.ones(W.shape[-1], dtype=torch.bool, device=W.device)
    off[S] = False
    if not bool(off.any()):
        raise ParameterError("support must leave at least one coordinate off the support (k < d)")
    mag = W.abs()
    in_min = mag.index_select(-1, S).amin(-1)  # (R, m)
    off_max = mag[..., off].amax(-1)
    return {"recovered_frac": (in_min > off_max).float().mean(-1), "in_min": in_min.median(-1).values,
            "off_max": off_max.median(-1).values}


def majority(x: torch.Tensor) -> torch.Tensor:
    """``Maj(x) = sign(sum_i x_i)`` with the tie rule ``sign(0) = 0`` (even ``d``), shape ``x.shape[:-1]``."""
    return torch.sign(x.sum(-1))


@torch.no_grad()
def first_stage_correlations(params: MLPParams, x: torch.Tensor, support, *, rows: int = 8192) -> dict:
    """Corollary B.6's correlations of the scalar output ``f`` with each coordinate on the points ``x``
    ``(N, d)`` (all of {+-1}^d: exact; else a Monte Carlo estimate): per run ``(R,)``, the mean over
    ``i in S`` and the max over ``i not in S`` of ``|E f(x) x_i|`` (``corr1_*``) and of
    ``|E f(x) Maj(x) x_i|`` (``corrmaj_*``)."""
    S = torch.as_tensor(list(support), dtype=torch.long)
    off = torch.ones(x.shape[-1], dtype=torch.bool)
    off[S] = False
    c1 = torch.zeros(params.runs, x.shape[-1], dtype=torch.float64, device=x.device)
    cm = torch.zeros_like(c1)
    for i in range(0, x.shape[0], rows):
        xs = x[i:i + rows].to(params.W.dtype)
        f = forward(params, xs)[..., 0].double()  # (R, n)
        c1 += f @ xs.double()
        cm += (f * majority(xs).double()) @ xs.double()
    c1, cm = (c1 / x.shape[0]).abs().cpu(), (cm / x.shape[0]).abs().cpu()
    return {"corr1_in_mean": c1[:, S].mean(-1), "corr1_off_max": c1[:, off].amax(-1),
            "corrmaj_in_mean": cm[:, S].mean(-1), "corrmaj_off_max": cm[:, off].amax(-1)}
