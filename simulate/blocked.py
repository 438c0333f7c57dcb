"""Fast exact online SGD (batch size 1) for ``R`` runs of the 2-layer MLP: the blocked rank-one trick.

With batch size 1 every first-layer update is rank one, ``W <- (1 - 2 eta lambda_W) W + u_s x_s^T``
with ``u_s = -eta_s dL/dz_s`` (Algorithm 1's weight decay ``lambda ||w||^2`` included). Within a
block of ``T`` steps the pre-activation of step ``t`` is therefore

    z_t = Gam_t (W_0 x_t + sum_{s<t} (u_s / Gam_{s+1}) (x_s . x_t)) + b_t,

so a block costs one GEMM ``W_0 X^T``, one Gram matrix ``X X^T``, a serial recurrence over the
block that touches only width-``m`` vectors (the second layer ``a`` and the biases are updated at
every step inside it, exactly as SGD does), and one GEMM ``W <- Gam_T W_0 + U^T X``. The result is
the same sequence of iterates as plain SGD, up to floating-point rounding. ``lr_a_mult`` scales
the rate of the output layer only (``a`` steps with ``eta_s * lr_a_mult``, its decay too; see
``simulate.sgd``), so the rank-one recurrence of ``W`` is unchanged.

Backends for the serial part (``backend=``):

* ``"native"``: a small C kernel (``simulate._ckernel``), CPU only, OpenMP threads over the runs
  (or over the width of a single wide run); the default on CPU when a C compiler is found;
* ``"torch"``: the same recurrence in torch ops, any device (the fallback; about 15 small ops a
  step, so dispatch- or launch-bound: ~4k steps/s at width 100 on the 2-core CPU);
* ``"compile"``: ``torch.compile`` of the torch block, any device, optional. Measured on the
  2-core CPU at width 100, ``T = 32``: 38 s to compile, then 55k steps/s against ~400k for
  ``"native"``, so ``"auto"`` never picks it; on CUDA ``"auto"`` uses ``"torch"`` (not measured
  here: no GPU was available), ask for ``"compile"`` to try CUDA graphs;
* ``"graph"``: the torch block captured once per block shape as a CUDA graph and replayed
  (:mod:`simulate.blocked_graph`): one launch a block instead of ~29 a step; on the CPU it runs the
  same body eagerly (its tests). Not yet measured on a GPU, so ``"auto"`` does not pick it.

Large ``R`` (many seeds or learning rates trained as one program) is the cheap way to fill a
device: the GEMMs grow, the per-block overhead does not.
"""
from __future__ import annotations

import time
from typing import Callable

import torch

from infra.allocator import tune_allocator
from theory._checks import ParameterError, check_choice, check_int, check_real

from . import _ckernel
from .model import MLPParams
from .train_setup import TargetSchedule, check_train, decay_check, lr_steps, segments, setup_training

__all__ = ["BACKENDS", "align_block_", "block_sgd_", "default_block_size", "resolve_backend", "train_online"]

BACKENDS = ("auto", "native", "torch", "compile", "graph")
_compiled: dict = {}


def resolve_backend(backend: str, device: torch.device) -> str:
    """The concrete backend ``"auto"`` resolves to on ``device`` (``native`` on CPU if buildable)."""
    check_choice("backend", backend, BACKENDS)
    if backend == "native" and (device.type != "cpu" or not _ckernel.available()):
        raise ParameterError("backend 'native' needs a CPU device and a working C compiler")
    if backend != "auto":
        return backend
    return "native" if device.type == "cpu" and _ckernel.available() else "torch"


def default_block_size(width: int, dim: int, runs: int = 1) -> int:
    """Block length ``T`` for the native backend, measured on a 2-core CPU (d = 100): longer
    blocks amortise the per-block GEMM and Python overhead, shorter ones keep the ``O(T m)``
    serial work per step small. 128 for ``runs * width <= 256``, else 64."""
    check_int("width", width, 1)
    check_int("dim", dim, 1)
    return 128 if runs * width <= 256 else 64


def _block_torch(W, b, a, x, tgt, lr, loss_kind: int, train_W: bool, train_b: bool, train_a: bool,
                 wd_W: float, wd_a: float, lr_a_mult: float = 1.0):
    """Pure-torch block (functional: returns new ``W, b, a`` and outputs ``F (R, T, C)``)."""
    R, m, d = W.shape
    T = x.shape[-2]
    shared = x.dim() == 2
    P = torch.einsum("td,rmd->rtm", x, W) if shared else torch.bmm(x, W.transpose(1, 2))
    G = x @ x.transpose(-1, -2)
    U = torch.zeros(R, T, m, dtype=W.dtype, device=W.device)
    gam = torch.ones(R, dtype=W.dtype, device=W.device)
    outs = []
    for t in range(T):
        z = P[:, t]
        if train_W and t > 0:
            if shared:
                z = z + torch.einsum("s,rsm->rm", G[:t, t], U[:, :t])
            else:
                z = z + torch.einsum("rs,rsm->rm", G[:, :t, t], U[:, :t])
        z = gam[:, None] * z + b
        h = torch.relu(z)
        f = torch.einsum("rcm,rm->rc", a, h)
        tt = tgt[t] if tgt.dim() == (1 if loss_kind == 0 else 2) else tgt[:, t]
        if loss_kind == 0:
            g = torch.where(tt * f[:, 0] < 1, -tt, torch.zeros_like(f[:, 0]))[:, None].expand_as(f)
        else:
            g = torch.softmax(f, -1) - tt
        eta = lr[:, t]
        dz = torch.einsum("rc,rcm->rm", g, a) * (z > 0)
        u = -eta[:, None] * dz
        gam_next = gam * (1 - 2 * eta * wd_W)
        if train_W:
            U[:, t] = u / gam_next[:, None]
        if train_b:
            b = b + u
        if train_a:
            eta_a = eta * lr_a_mult
            a = a * (1 - 2 * eta_a * wd_a)[:, None, None] - eta_a[:, None, None] * g[:, :, None] * h[:, None, :]
        gam = gam_next
        outs.append(f)
    if train_W:
        upd = torch.einsum("rtm,td->rmd", U, x) if shared else torch.bmm(U.transpose(1, 2), x)
        W = gam[:, None, None] * (W + upd)
    return W, b, a, torch.stack(outs, 1)


def _block_native(params: MLPParams, x, tgt, lr, loss_kind, train_W, train_b, train_a, wd_W, wd_a, threads,
                  lr_a_mult=1.0):
    W, b, a = params.W, params.b, params.a
    R, m, d = W.shape
    C = a.shape[1]
    T = x.shape[-2]
    shared = x.dim() == 2
    if shared:
        P = torch.mm(x, W.view(R * m, d).t())  # (T, R*m)
        G = torch.mm(x, x.t())
        U = torch.empty(T, R * m, dtype=W.dtype)
        p_r, p_t, g_r, u_r, u_t = m, R * m, 0, m, R * m
    else:
        P = torch.bmm(x, W.transpose(1, 2))  # (R, T, m)
        G = torch.bmm(x, x.transpose(1, 2))
        U = torch.empty(R, T, m, dtype=W.dtype)
        p_r, p_t, g_r, u_r, u_t = T * m, m, T * T, T * m, m
    per_t = (1, C, m)[loss_kind]  # hinge value, soft target over C classes, alignment target per unit
    tg_r = 0 if tgt.dim() == (1 if loss_kind == 0 else 2) else T * per_t
    F = torch.empty(R, T, C, dtype=W.dtype)
    gam = torch.empty(R, dtype=W.dtype)
    split = m >= 4096 and R < 4 * threads
    nthreads = threads if (split or R > 1) and R * m * T >= 50_000 else 1
    _ckernel.call(W.dtype, R, T, m, C, loss_kind, train_W, train_b, train_a, P, p_r, p_t, G, g_r, b, a,
                  U, u_r, u_t, tgt, tg_r, lr, wd_W, wd_a, F, gam, nthreads, split, lr_a_mult)
    if train_W:
        if wd_W != 0:
            W.mul_(gam[:, None, None])
        if shared:
            W.view(R * m, d).addmm_(U.t(), x)
        else:
            W.baddbmm_(U.transpose(1, 2), x)
    return F


def _dense(params: MLPParams) -> None:
    """Make ``params``' tensors contiguous (in place on the object): the native kernel and the CUDA graphs
    write them through raw strides."""
    for key in ("W", "b", "a"):
        if not getattr(params, key).is_contiguous():
            setattr(params, key, getattr(params, key).contiguous())


def align_block_(params: MLPParams, x: torch.Tensor, targets: torch.Tensor, lr: torch.Tensor, *,
                 threads: int | None = None) -> None:
    """``T`` batch-1 SGD steps of ``W, b`` on the hidden-layer alignment loss ``1/2 ||relu(W x + b) - t||^2``
    (Curriculum Extraction's first stage, :func:`simulate.extraction.match_hidden`), in place, through
    the native kernel's rank-one recurrence (loss kind 2: ``u_t = -eta_t (relu(z_t) - t_t) 1[z_t > 0]``,
    ``a`` untouched, no weight decay). ``x`` ``(R, T, d)``, ``targets`` ``(R, T, m)``, ``lr`` ``(R, T)``;
    CPU tensors of ``params``' dtype (float32 or float64). Same iterates as the per-step loop up to
    floating-point rounding (tests/test_extraction.py)."""
    R, m, d = params.W.shape
    T = x.shape[-2]
    if x.shape != (R, T, d) or targets.shape != (R, T, m) or lr.shape != (R, T):
        raise ParameterError(f"align_block_ needs x (R, T, d) = {(R, T, d)}, targets (R, T, m) = {(R, T, m)} and "
                             f"lr (R, T); got {tuple(x.shape)}, {tuple(targets.shape)}, {tuple(lr.shape)}")
    _dense(params)
    x, targets, lr = (v.to(params.W.dtype).contiguous() for v in (x, targets, lr))
    _block_native(params, x, targets, lr, 2, True, True, False, 0.0, 0.0, threads or torch.get_num_threads())


def block_sgd_(
    params: MLPParams, x: torch.Tensor, targets: torch.Tensor, lr: torch.Tensor, *, loss_kind: int,
    train: str = "Wba", weight_decay_W: float = 0.0, weight_decay_a: float = 0.0, backend: str = "auto",
    threads: int | None = None, lr_a_mult: float = 1.0,
) -> torch.Tensor:
    """``T`` consecutive batch-1 SGD steps on the rows of ``x``, in place on ``params``.

    ``x``: ``(T, d)`` (every run sees the same samples) or ``(R, T, d)``. ``targets``: for
    ``loss_kind = 0`` (hinge ``max(0, 1 - t f)``, ``C = 1``) target values ``(T,)`` / ``(R, T)``;
    for ``loss_kind = 1`` (soft cross-entropy, gradient ``softmax(f) - q``) distributions
    ``(T, C)`` / ``(R, T, C)``. ``lr``: ``(R, T)`` per-run, per-step learning rates. ``train``:
    the trained tensors among ``"W"``, ``"b"``, ``"a"``; ``weight_decay_*`` is Algorithm 1's
    ``lambda`` (step factor ``1 - 2 eta lambda``). ``lr_a_mult`` (float > 0): ``a`` steps with
    ``eta * lr_a_mult`` (decay factor ``1 - 2 eta lr_a_mult lambda_a``). Returns the outputs
    ``(R, T, C)`` of each step before its update (online predictions).
    """
    train_W, train_b, train_a = check_train(train)
    lr_a_mult = float(check_real("lr_a_mult", lr_a_mult, 0, lo_open=True))
    kind = check_int("loss_kind", loss_kind, 0, 1)
    W = params.W
    dev, dt = W.device, W.dtype
    x = x.to(dtype=dt)
    targets = targets.to(dtype=dt).contiguous()
    lr = lr.to(device=dev, dtype=dt).contiguous()
    R, m, _ = W.shape
    T = x.shape[-2]
    if lr.shape != (R, T):
        raise ParameterError(f"lr must have shape (runs, T) = {(R, T)}, got {tuple(lr.shape)}")
    if kind == 0 and params.classes != 1:
        raise ParameterError(f"the hinge losses need a model with C = 1 output, got C = {params.classes}")
    name = resolve_backend(backend, dev)
    if name == "native":
        if dt not in (torch.float32, torch.float64) or params.classes > _ckernel.MAX_CLASSES:
            name = "torch"
    if name == "native":
        _dense(params)
        return _block_native(params, x.contiguous(), targets, lr, kind, train_W, train_b, train_a,
                             float(weight_decay_W), float(weight_decay_a), threads or torch.get_num_threads(),
                             lr_a_mult)
    if name == "graph":
        from .blocked_graph import graphed_blocks

        _dense(params)  # a graph updates the tensors in place
        return graphed_blocks()(_block_torch, params, x, targets, lr, (kind, train_W, train_b, train_a, float(weight_decay_W),
                                                         float(weight_decay_a), lr_a_mult))
    fn = _block_torch
    if name == "compile":
        key = (kind, train_W, train_b, train_a, float(weight_decay_W), float(weight_decay_a), lr_a_mult)
        if key not in _compiled:
            mode = "reduce-overhead" if dev.type == "cuda" else None
            _compiled[key] = torch.compile(_block_torch, dynamic=False, mode=mode)
        fn = _compiled[key]
    with torch.no_grad():
        W2, b2, a2, F = fn(params.W, params.b, params.a, x, targets, lr, kind, train_W, train_b, train_a,
                           float(weight_decay_W), float(weight_decay_a), lr_a_mult)
    params.W.copy_(W2)
    params.b.copy_(b2)
    params.a.copy_(a2)
    return F


def train_online(
    params: MLPParams, sampler: Callable[[int], tuple[torch.Tensor, torch.Tensor]], steps: int,
    lr: torch.Tensor | float, *, loss: str = "ce", teacher=None, alpha: float = 0.0, tau: float = 1.0,
    schedule: Callable[[torch.Tensor], torch.Tensor] | None = None, start_step: int = 0, train: str = "Wba",
    weight_decay_W: float = 0.0, weight_decay_a: float = 0.0, on_block=None, every: int | None = None,
    chunk: int = 4096, block_size: int | None = None, backend: str = "auto", threads: int | None = None,
    lr_a_mult: float = 1.0, targets: TargetSchedule | None = None,
) -> MLPParams:
    """Online SGD with batch size 1 (Appendix C.1's training) through the blocked rank-one path.

    Same arguments and the same iterates (same samples, same order) as
    :func:`simulate.sgd.train_sgd` with ``batch_size=1``, which is its reference: ``sampler(n)``
    returns ``(x, labels)`` with ``x`` ``(n, d)`` (shared by the runs) or ``(R, n, d)``;
    ``teacher`` is an :class:`MLPParams` (1 or ``R`` runs) or a callable ``x -> logits``, evaluated
    once per chunk of samples; ``lr`` is the per-run base rate ``(R,)`` (or a float) times
    ``schedule(global_step)``; ``on_block(step, params)`` is called whenever the global step
    ``start_step + done`` reaches a multiple of ``every``. ``threads``: CPU threads (default:
    chosen by measurement between 1 and ``torch.get_num_threads()``, see :class:`_ThreadTuner`).
    ``block_size``: steps per block (default :func:`default_block_size`). ``lr_a_mult``: rate
    multiplier of the output layer ``a`` (see :mod:`simulate.sgd`). ``targets``: label smoothing and
    the alpha / temperature schedules (:class:`simulate.train_setup.TargetSchedule`), folded into the
    soft targets of each chunk, so the kernel is unchanged. Updates ``params`` in place and returns it.
    """
    tune_allocator()  # chunk-sized tensors reuse the heap instead of fresh pages (infra.allocator)
    setup = setup_training(params, steps, lr, loss, teacher, alpha, tau, start_step, train, weight_decay_W,
                   weight_decay_a, every, chunk, batch_size=1, lr_a_mult=lr_a_mult, targets=targets)
    decay_check(setup)
    name = resolve_backend(backend, params.W.device)
    T = check_int("block_size", block_size, 1) if block_size is not None else \
        default_block_size(params.width, params.dim, params.runs)
    base_threads = torch.get_num_threads()
    tuner = _ThreadTuner(threads, base_threads, params.W.device.type == "cpu")
    group = max(1, 1024 // T)  # blocks timed together by the thread tuner
    try:
        for g0, n in segments(setup.start_step, setup.steps, setup.every, setup.chunk):
            x, tgt = setup.batch(sampler, n, g0)  # x (n, d) | (R, n, d); targets with the sample axis of x
            lrs = lr_steps(setup, schedule, g0, n)  # (R, n)
            starts = list(range(0, n, T))
            for j in range(0, len(starts), group):
                nt = tuner.pick()
                t_start = time.perf_counter()
                for s0 in starts[j:j + group]:
                    s1 = min(n, s0 + T)
                    xb = x[s0:s1] if x.dim() == 2 else x[:, s0:s1]
                    tb = tgt[s0:s1] if tgt.dim() == setup.target_dim else tgt[:, s0:s1]
                    lb = lrs[:, s0:s1]
                    if name == "compile" and s1 - s0 < T:  # pad with lr = 0 steps (exact no-ops): one shape
                        xb, tb, lb = _pad(xb, tb, lb, T, setup.target_dim)
                    block_sgd_(params, xb, tb, lb, loss_kind=setup.kind, train=setup.train,
                               weight_decay_W=setup.wd_W, weight_decay_a=setup.wd_a, backend=name, threads=nt,
                               lr_a_mult=setup.lr_a_mult)
                tuner.report(nt, min(n, starts[j] + group * T) - starts[j], time.perf_counter() - t_start)
            if on_block is not None and setup.every and (g0 + n) % setup.every == 0:
                tuner.restore()
                on_block(g0 + n, params)
    finally:
        tuner.restore()
    return params


class _ThreadTuner:
    """Chooses the CPU thread count by measurement, per group of blocks (``threads=None``).

    On a quiet machine two threads are faster for wide or batched runs; on a shared, busy one
    every OpenMP parallel region (torch's GEMMs, the kernel) can wait a scheduler tick for its
    second thread, and one thread is then up to 100x faster (measured with two CPU burners on 2
    cores). So the tuner tries both, keeps the faster (moving average of seconds per step) and
    re-tries the other after 4 groups, doubling that wait (up to 1024) each time the re-try
    loses. ``torch.set_num_threads`` is changed only during the call and restored after it.
    """

    def __init__(self, threads: int | None, base: int, cpu: bool):
        self.base = base
        if threads is not None:
            self.choices = [check_int("threads", threads, 1)]
        else:
            self.choices = [1, base] if cpu and base > 1 else [base]
        self.cost: dict[int, float] = {}  # threads -> seconds per step (moving average)
        self.best = self.choices[0]
        self.wait = 4
        self.since = 0
        self.probing = False

    def pick(self) -> int:
        untried = [c for c in self.choices if c not in self.cost]
        if untried:
            nt = untried[0]
        elif len(self.choices) > 1 and self.since >= self.wait:
            nt = next(c for c in self.choices if c != self.best)
            self.probing = True
            self.since = 0
        else:
            nt = self.best
            self.since += 1
        if torch.get_num_threads() != nt:
            torch.set_num_threads(nt)
        return nt

    def report(self, nt: int, steps: int, seconds: float) -> None:
        per_step = seconds / max(steps, 1)
        old = self.cost.get(nt)
        self.cost[nt] = per_step if old is None or self.probing else 0.5 * old + 0.5 * per_step
        winner = min(self.cost, key=self.cost.__getitem__)
        if self.probing:
            self.wait = 4 if winner == nt else min(2 * self.wait, 1024)
            self.probing = False
        self.best = winner

    def restore(self) -> None:
        if torch.get_num_threads() != self.base:
            torch.set_num_threads(self.base)


def _pad(xb, tb, lb, T, target_dim):
    k = T - xb.shape[-2]
    xpad = torch.zeros(*xb.shape[:-2], k, xb.shape[-1], dtype=xb.dtype, device=xb.device)
    xb = torch.cat([xb, xpad], -2)
    ax = 0 if tb.dim() == target_dim else 1
    tpad_shape = list(tb.shape)
    tpad_shape[ax] = k
    tb = torch.cat([tb, torch.zeros(tpad_shape, dtype=tb.dtype, device=tb.device)], ax)
    lb = torch.cat([lb, torch.zeros(lb.shape[0], k, dtype=lb.dtype, device=lb.device)], 1)
    return xb, tb, lb
