"""Curriculum Extraction (Gupta & Karmalkar, 2025) for the 2-layer MLP: the hidden-layer stage.

The student first aligns its hidden representation to a fixed random projection of the fully
trained teacher's hidden representation (their Definition 3.1 / Figure 1), then trains on the
teacher's output logits (KL, the one-shot loss). No intermediate teacher checkpoint is used.

* :func:`projection`: the fixed random matrix ``A`` of shape ``(R, m_out, m_in)`` with i.i.d.
  ``N(0, scale^2 / m_in)`` entries, one per student run, drawn from ``(projection_seed, run seed,
  layer)``: the same seed gives the same ``A`` in every program, another seed another ``A``.
* :func:`projected_targets`: ``t(x) = A relu(W_T x + b_T)`` of shape ``(R, N, m_s)``.
* :func:`match_hidden`: online SGD on ``L(x) = 1/2 sum_i (relu(W x + b)_i - t_i(x))^2`` (batch
  mean) for ``W`` and ``b``; ``a`` is untouched. Each neuron fits its own scalar target, so the
  step size does not depend on the student's width. Targets of a block of steps are computed in one
  product; at batch 1 on the CPU the steps go through the native blocked rank-one kernel
  (:func:`simulate.blocked.align_block_`), else a short loop of batched tensor ops (no host syncs).
* :func:`hidden_mse`: the held-out alignment error, per hidden unit (mean over units and inputs).
* :func:`projection_correlations`: ``corr(t_i(x), x_j)`` for every projected unit ``i`` and
  coordinate ``j`` (their Figure 2: in-support coordinates have a much larger spread over ``i``).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from infra.seeding import Stream
from theory._checks import ParameterError, check_int, check_real

from . import data as D
from .model import MLPParams, hidden

__all__ = ["projection", "projected_targets", "match_hidden", "hidden_mse", "projection_correlations",
           "correlation_summary"]


def projection(seeds, out_dim: int, in_dim: int, *, scale: float = 1.0, projection_seed: int = 0, layer: int = 1,
               device=None, dtype=torch.float32) -> torch.Tensor:
    """Fixed Gaussian projections ``(R, out_dim, in_dim)``, entries ``N(0, scale^2 / in_dim)``; run
    ``r``'s matrix depends only on ``(projection_seed, seeds[r], layer)``."""
    check_int("out_dim", out_dim, 1)
    check_int("in_dim", in_dim, 1)
    check_real("projection_scale", scale, 0, lo_open=True)
    check_int("projection_seed", projection_seed, 0)
    mats = []
    for s in seeds:
        state = int(np.random.SeedSequence([projection_seed, int(s), layer, int(Stream.PROJECTION)]).generate_state(1, np.uint64)[0] >> 1)
        g = torch.Generator().manual_seed(state)
        mats.append(torch.randn(out_dim, in_dim, generator=g, dtype=torch.float64) * (scale / in_dim ** 0.5))
    return torch.stack(mats).to(device=device, dtype=dtype)


def projected_targets(teacher: MLPParams, proj: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``A relu(W_T x + b_T)``: teacher ``(R, m_T, d)`` (or one run, shared), ``proj`` ``(R, m_s, m_T)``,
    ``x`` ``(R, N, d)`` -> ``(R, N, m_s)``."""
    if teacher.runs == 1 and proj.shape[0] > 1:
        h = torch.relu(hidden(teacher, x.reshape(-1, x.shape[-1]))).reshape(*x.shape[:-1], -1)
    else:
        h = torch.relu(hidden(teacher, x))
    return torch.bmm(h, proj.transpose(1, 2))


def hidden_mse(student: MLPParams, teacher: MLPParams, proj: torch.Tensor, x: torch.Tensor,
               chunk: int = 8192, targets: torch.Tensor | None = None) -> torch.Tensor:
    """Per-run mean over inputs and hidden units of ``(relu(W x + b) - A relu(W_T x + b_T))^2``;
    ``x`` ``(N, d)`` shared by the runs. ``targets``: ``A relu(W_T x + b_T)`` ``(R, N, m_s)`` computed
    once for a fixed ``x`` (:func:`projected_targets`; the teacher's forward is most of the cost).
    Returns ``(R,)``."""
    total = torch.zeros(student.runs, dtype=torch.float64, device=x.device)
    for i in range(0, len(x), chunk):
        xs = x[i:i + chunk].expand(student.runs, -1, -1)
        target = projected_targets(teacher, proj, xs) if targets is None else targets[:, i:i + chunk]
        diff = torch.relu(hidden(student, xs)) - target
        total += diff.double().pow(2).sum((1, 2))
    return total / (len(x) * student.width)


@torch.no_grad()
def match_hidden(params: MLPParams, stream: Callable, steps: int, lr, *, teacher: MLPParams, proj: torch.Tensor,
                 batch: int = 1, schedule=None, start_step: int = 0, every: int | None = None, on_block=None,
                 block: int = 256, backend: str = "auto") -> MLPParams:
    """``steps`` online SGD steps (``batch`` fresh samples each) of ``W, b`` on the alignment loss.

    ``params`` ``(R, m_s, d)`` are updated in place; ``stream(n)`` returns ``(x (R, n, d), labels)``;
    ``lr`` float or ``(R,)``, times ``schedule(global_step)`` when given; ``on_block(step, params)``
    is called whenever the global step ``start_step + done`` is a multiple of ``every``. ``backend``:
    ``"native"`` runs batch-1 steps through the blocked rank-one kernel
    (:func:`simulate.blocked.align_block_`, blocks of :func:`simulate.blocked.default_block_size`),
    ``"torch"`` step by step (the reference, any device and batch), ``"auto"`` the native one on the
    CPU at batch 1 when the kernel builds.
    """
    from .blocked import _ckernel, align_block_, default_block_size

    check_int("steps", steps, 0)
    check_int("batch", batch, 1)
    if backend not in ("auto", "native", "torch"):
        raise ParameterError(f"backend must be one of auto, native, torch; got {backend!r}")
    fast = (batch == 1 and params.W.device.type == "cpu" and params.W.dtype in (torch.float32, torch.float64)
            and _ckernel.available())
    if backend == "native" and not fast:
        raise ParameterError("backend 'native' needs batch 1, CPU float32/float64 tensors and a working C compiler")
    fast = fast and backend != "torch"
    T = default_block_size(params.width, params.dim, params.runs)
    if proj.shape != (params.runs, params.width, teacher.width):
        raise ParameterError(f"proj must have shape (runs, student width, teacher width) = "
                             f"{(params.runs, params.width, teacher.width)}, got {tuple(proj.shape)}")
    lr = torch.as_tensor(lr, dtype=torch.float64).reshape(-1).expand(params.runs).to(params.W.device)
    W, b = params.W, params.b
    done = 0
    while done < steps:
        n = min(block, steps - done)
        if every:  # end blocks at evaluation steps
            n = min(n, every - (start_step + done) % every)
        x, _ = stream(n * batch)
        x = x.to(W.dtype)
        targets = projected_targets(teacher, proj, x)                       # (R, n*B, m_s)
        steps_idx = torch.arange(start_step + done, start_step + done + n, device=W.device)
        mult = schedule(steps_idx).to(lr) if schedule is not None else torch.ones(n, dtype=lr.dtype, device=W.device)
        rates = (lr[:, None] * mult[None, :]).to(W.dtype)                    # (R, n)
        if fast:  # the blocked rank-one route (batch 1)
            for s in range(0, n, T):
                align_block_(params, x[:, s:s + T], targets[:, s:s + T], rates[:, s:s + T])
            W, b = params.W, params.b
        else:
            for t in range(n):
                xt = x[:, t * batch:(t + 1) * batch]                             # (R, B, d)
                pre = torch.baddbmm(b[:, None, :], xt, W.transpose(1, 2))        # (R, B, m)
                g = (pre.clamp_min(0) - targets[:, t * batch:(t + 1) * batch]) * (pre > 0) / batch
                eta = rates[:, t]
                W.sub_(eta[:, None, None] * torch.bmm(g.transpose(1, 2), xt))
                b.sub_(eta[:, None] * g.sum(1))
        done += n
        if on_block is not None and every and (start_step + done) % every == 0:
            on_block(start_step + done, params)
    return params


@torch.no_grad()
def projection_correlations(teacher: MLPParams, proj: torch.Tensor, d: int, *, generator: torch.Generator,
                            n_samples: int = 16384, chunk: int = 4096) -> torch.Tensor:
    """Monte Carlo ``corr(t_i(x), x_j)`` over uniform ``x`` in {+-1}^d: ``(R, m_s, d)``.

    ``x_j`` has unit variance, so ``corr = E[(t_i - E t_i) x_j] / std(t_i)``; units with a constant
    target (std 0) get correlation 0.
    """
    check_int("n_samples", n_samples, 2)
    s1 = s2 = sxy = None
    for i in range(0, n_samples, chunk):
        n = min(chunk, n_samples - i)
        x = D.sample_cube(n, d, generator=generator).to(proj.device, proj.dtype)
        t = projected_targets(teacher, proj, x.expand(proj.shape[0], -1, -1)).double()  # (R, n, m_s)
        xs = x.double()
        parts = (t.sum(1), t.pow(2).sum(1), torch.einsum("rnm,nd->rmd", t, xs))
        s1, s2, sxy = parts if s1 is None else (s1 + parts[0], s2 + parts[1], sxy + parts[2])
    mean = s1 / n_samples
    std = (s2 / n_samples - mean.pow(2)).clamp_min(0).sqrt()
    cov = sxy / n_samples  # E[x_j] = 0
    return torch.where(std[..., None] > 0, cov / std.clamp_min(1e-30)[..., None], torch.zeros_like(cov))


def correlation_summary(corr: torch.Tensor, support) -> dict:
    """Figure 2's contrast: per coordinate ``j`` the spread (std over runs and projected units) of
    ``corr(t_i, x_j)``, and its means over the support and off it."""
    spread = corr.reshape(-1, corr.shape[-1]).std(0, unbiased=True).tolist()
    sup = sorted(int(j) for j in support)
    off = [j for j in range(corr.shape[-1]) if j not in set(sup)]
    return {"per_coordinate_std": spread, "support": sup,
            "in_support_std": float(np.mean([spread[j] for j in sup])),
            "out_support_std": float(np.mean([spread[j] for j in off])) if off else None}
