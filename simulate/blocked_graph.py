"""The ``"graph"`` backend of :func:`simulate.blocked.block_sgd_`: the pure-torch block replayed from a
CUDA graph, so that a batch-1 run on a GPU pays one graph launch per block of ``T`` steps instead of
about 29 kernel launches and ~250 us of host time per step (benchmarks/RESULTS.md, GPU).

A block of a given shape is captured once (a warm-up on a side stream first, the parameters restored
from a copy afterwards, then :class:`torch.cuda.CUDAGraph` capture) into static input buffers
(samples ``x``, targets, rates) and the run's own parameter tensors, which the graph updates in
place; later blocks of that shape copy their inputs into the buffers and replay. Different shapes
(the last block of a segment is shorter) and different parameter tensors get graphs of their own.

On the CPU the same object runs the same body eagerly on the same static buffers, which is how its
semantics are tested without a GPU (tests/test_engine.py: it equals the ``"torch"`` backend bit for
bit over blocks of several shapes). Not measured on a GPU yet: ``"auto"`` keeps ``"torch"`` there,
and ``benchmarks/gpu_checks.sh`` is the prepared measurement.
"""
from __future__ import annotations

import torch

from .model import MLPParams

__all__ = ["GraphedBlocks", "graphed_blocks"]


class _Captured:
    """One block shape: static buffers, the body, and (on CUDA) its captured graph."""

    def __init__(self, block, params: MLPParams, x, tgt, lr, settings: tuple) -> None:
        self.params = params
        self.x, self.tgt, self.lr = torch.empty_like(x), torch.empty_like(tgt), torch.empty_like(lr)
        self.settings = settings

        def body() -> torch.Tensor:
            W2, b2, a2, F = block(params.W, params.b, params.a, self.x, self.tgt, self.lr, *settings)
            params.W.copy_(W2)
            params.b.copy_(b2)
            params.a.copy_(a2)
            return F

        self.body = body
        self.graph = None
        self.F = None
        if params.W.device.type == "cuda":
            self._capture(x, tgt, lr)

    def _capture(self, x, tgt, lr) -> None:
        p = self.params
        saved = (p.W.clone(), p.b.clone(), p.a.clone())
        self._load(x, tgt, lr)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm-up: lazy initialisation (cuBLAS handles, workspaces) off the graph
            self.body()
        torch.cuda.current_stream().wait_stream(side)
        for t, s in zip((p.W, p.b, p.a), saved):  # the warm-up's step is undone
            t.copy_(s)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.F = self.body()

    def _load(self, x, tgt, lr) -> None:
        self.x.copy_(x)
        self.tgt.copy_(tgt)
        self.lr.copy_(lr)

    def __call__(self, x, tgt, lr) -> torch.Tensor:
        self._load(x, tgt, lr)
        if self.graph is None:
            return self.body()
        self.graph.replay()
        return self.F.clone()


class GraphedBlocks:
    """Captured blocks of one set of parameter tensors (their storage addresses: a graph writes into the
    tensors it was captured with), by block shape and settings. Only the latest parameter tensors' blocks are
    kept: a call with other tensors (the next program) drops the graphs, buffers and references of
    the previous ones, so that a process training many programs does not accumulate them."""

    def __init__(self) -> None:
        self._blocks: dict[tuple, _Captured] = {}
        self._owner: tuple | None = None

    def __call__(self, block, params: MLPParams, x, tgt, lr, settings: tuple) -> torch.Tensor:
        """The outputs ``F`` of ``block(W, b, a, x, tgt, lr, *settings)`` (the torch block of
        :mod:`simulate.blocked`, functional), with ``params`` updated in place to its results."""
        owner = (params.W.data_ptr(), params.b.data_ptr(), params.a.data_ptr())  # the tensors the graphs write
        if owner != self._owner:
            self._blocks.clear()
            self._owner = owner
        key = (block, tuple(x.shape), tuple(tgt.shape), tuple(lr.shape), x.dtype, settings)  # this owner's shapes
        with torch.no_grad():
            captured = self._blocks.get(key)
            if captured is None:
                captured = self._blocks[key] = _Captured(block, params, x, tgt, lr, settings)
            return captured(x, tgt, lr)

    def clear(self) -> None:
        self._blocks.clear()
        self._owner = None

    def __len__(self) -> int:
        return len(self._blocks)


_SHARED = GraphedBlocks()


def graphed_blocks() -> GraphedBlocks:
    """The process's cache of captured blocks (used by ``backend="graph"``)."""
    return _SHARED
