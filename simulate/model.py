"""The 1-hidden-layer ReLU MLP of the paper, as plain tensors with a leading run axis.

A model is an :class:`MLPParams` of three tensors; ``R`` independent runs (seeds, learning
rates, ...) of the same shape are stored along the leading axis and trained as one program:

* ``W``: ``(R, m, d)`` first-layer weights,
* ``b``: ``(R, m)`` biases,
* ``a``: ``(R, C, m)`` second-layer weights; ``C = 1`` for the scalar output of the theory
  (Appendix B), ``C = 2`` for the two-class logits of the experiments (Definition 3.1).

``f(x)_c = sum_i a_{c,i} relu(w_i . x + b_i)``: no output bias, so that the symmetric
initialization of Appendix B outputs exactly 0. A single run is ``R = 1``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["MLPParams", "cpu_rows", "forward", "hidden", "init_symmetric", "init_default"]


@dataclass
class MLPParams:
    W: torch.Tensor  # (R, m, d)
    b: torch.Tensor  # (R, m)
    a: torch.Tensor  # (R, C, m)

    @property
    def runs(self) -> int:
        return self.W.shape[0]

    @property
    def width(self) -> int:
        return self.W.shape[1]

    @property
    def dim(self) -> int:
        return self.W.shape[2]

    @property
    def classes(self) -> int:
        return self.a.shape[1]

    def tensors(self) -> dict[str, torch.Tensor]:
        return {"W": self.W, "b": self.b, "a": self.a}

    def clone(self) -> "MLPParams":
        return MLPParams(self.W.clone(), self.b.clone(), self.a.clone())

    def select(self, runs) -> "MLPParams":
        """The runs ``runs`` (an index or a list of indices) as a new MLPParams."""
        idx = torch.as_tensor(runs, dtype=torch.long, device=self.W.device).reshape(-1)
        return MLPParams(self.W[idx], self.b[idx], self.a[idx])


def hidden(params: MLPParams, x: torch.Tensor) -> torch.Tensor:
    """Pre-activations ``(R, N, m)`` for inputs ``x`` of shape ``(N, d)`` (shared) or ``(R, N, d)``."""
    if x.dim() == 2:
        z = torch.einsum("nd,rmd->rnm", x, params.W)
    else:
        z = torch.bmm(x, params.W.transpose(1, 2))
    if _inplace(params, x):  # no autograd: add the bias into the fresh product (no second (R, N, m) tensor)
        return z.add_(params.b[:, None, :])
    return z + params.b[:, None, :]


def _inplace(params: MLPParams, x: torch.Tensor) -> bool:
    return not (torch.is_grad_enabled() and (x.requires_grad or params.W.requires_grad or params.b.requires_grad))


def cpu_rows(runs: int, width: int) -> int:
    """Inputs per piece of a CPU forward pass without autograd: the hidden activations of one piece
    (``runs x rows x width`` floats, at most 2^17 per run and 2^20 in all) stay in the core's cache
    instead of streaming through memory three times (product, ReLU, output layer); a multiple of 64
    from 64 to 1024 rows. Measured with one thread (benchmarks/RESULTS.md): a width-2000 teacher 0.19 ->
    0.62M samples/s, 30 width-64 students 5.1 -> 15M. The outputs are the same bits as in one piece: the
    pieces start at multiples of 64 rows, so the matrix products tile their rows as the whole would
    (pieces of 65 rows do not), and :func:`forward` cuts only widths that are multiples of 4 (for other
    widths the output layer's batched product takes another kernel for a piece than for the whole and
    rounds differently; measured for every width 2..140 with torch 2.13's CPU BLAS, and checked by
    tests/test_engine.py)."""
    return 64 * max(1, min(16, 2**17 // max(1, width) // 64, 2**20 // max(1, runs * width) // 64))


def forward(params: MLPParams, x: torch.Tensor) -> torch.Tensor:
    """Outputs ``(R, N, C)`` for inputs ``(N, d)`` or ``(R, N, d)`` with entries +-1 (any float dtype).
    On the CPU without autograd, long inputs go through in pieces of :func:`cpu_rows` rows (widths that
    are multiples of 4)."""
    if x.device.type == "cpu" and params.width % 4 == 0 and _inplace(params, x):
        n, rows = x.shape[-2], cpu_rows(params.runs, params.width)
        if n > rows:
            out = torch.empty(params.runs, n, params.classes, dtype=params.a.dtype)
            for i in range(0, n, rows):
                out[:, i:i + rows] = _forward(params, x[..., i:i + rows, :])
            return out
    return _forward(params, x)


def _forward(params: MLPParams, x: torch.Tensor) -> torch.Tensor:
    z = hidden(params, x)
    h = torch.relu_(z) if _inplace(params, x) else torch.relu(z)
    return torch.bmm(h, params.a.transpose(1, 2))


def init_symmetric(
    runs: int, width: int, dim: int, k: int, classes: int = 1, *, generator: torch.Generator,
    device=None, dtype=torch.float32,
) -> MLPParams:
    """Symmetric initialization of Appendix B (Algorithm 1).

    For the first ``m/2`` neurons: ``w ~ U({+-1}^d)``, ``b ~ U({-1+1/k, ..., 1-1/k})`` (the ``2k-1``
    grid points), ``a ~ U({+-1/m})``; neuron ``i + m/2`` copies ``w_i`` and ``b_i`` and has
    ``a_{i+m/2} = -a_i``, so the network outputs exactly 0 at initialization. ``width`` must be even.
    """
    if width % 2:
        raise ValueError(f"width must be even for the symmetric init, got {width}")
    half = width // 2
    gen_dev = generator.device
    w = torch.randint(0, 2, (runs, half, dim), generator=generator, device=gen_dev).to(dtype) * 2 - 1
    grid = torch.randint(1, 2 * k, (runs, half), generator=generator, device=gen_dev).to(dtype)
    b = -1 + grid / k
    a = (torch.randint(0, 2, (runs, classes, half), generator=generator, device=gen_dev).to(dtype) * 2 - 1) / width
    W = torch.cat([w, w], dim=1)
    B = torch.cat([b, b], dim=1)
    A = torch.cat([a, -a], dim=2)
    return MLPParams(W.to(device), B.to(device), A.to(device))


def init_default(
    runs: int, width: int, dim: int, classes: int = 2, *, generator: torch.Generator, device=None,
    dtype=torch.float32, output_scale: float = 1.0,
) -> MLPParams:
    """PyTorch's default ``nn.Linear`` initialization (Kaiming-uniform weights, uniform biases).

    ``W, b ~ U(-1/sqrt(d), 1/sqrt(d))``, ``a ~ U(-1/sqrt(m), 1/sqrt(m)) * output_scale``. The
    output layer has no bias (see the module doc).
    """
    gen_dev = generator.device
    bound_in = dim ** -0.5
    bound_out = width ** -0.5 * output_scale
    W = (torch.rand((runs, width, dim), generator=generator, device=gen_dev, dtype=dtype) * 2 - 1) * bound_in
    b = (torch.rand((runs, width), generator=generator, device=gen_dev, dtype=dtype) * 2 - 1) * bound_in
    a = (torch.rand((runs, classes, width), generator=generator, device=gen_dev, dtype=dtype) * 2 - 1) * bound_out
    return MLPParams(W.to(device), b.to(device), a.to(device))
