"""Boolean-cube data of the paper, generated on the device with an explicit generator.

* ``(d, k)``-sparse parity (Definition 3.1): ``x ~ U({+-1}^d)``, ``y = prod_{i in S} x_i``. The paper
  numbers the two classes 1 and 2 (class 1 when the product is ``> 0``); here classes are 0-based:
  **class 0 <=> prod > 0 (y = +1), class 1 <=> prod < 0 (y = -1)**, i.e. ``label = (1 - y) / 2``.
* The hierarchical parity of Appendix C.3 (Figure 16): a depth-``D`` binary decision tree whose
  ``2^D - 1`` nodes are ``k``-sparse parities over disjoint blocks of coordinates and whose
  ``2^D`` leaves are the classes.
* A finite training pool (:class:`TrainingPool`): ``n`` examples per run drawn once, then visited in
  a fresh random order each epoch (the official code's fixed set of ``n_examples``; the paper's runs
  use fresh samples, Section 1 line 30).

Every sampler takes a ``torch.Generator`` (its device is where the data is generated; pass
``device`` to move it elsewhere) and returns float tensors with entries exactly ``+-1``. Shapes:
``(n, d)``, or ``(runs, n, d)`` when ``runs`` is given (independent data for each run).
"""
from __future__ import annotations

import torch

from theory._checks import ParameterError, check_int

__all__ = [
    "EVAL_SEED",
    "MAX_CUBE_DIM",
    "first_support",
    "random_support",
    "sample_cube",
    "parity_labels",
    "sparse_parity_batch",
    "full_cube",
    "heldout_parity",
    "hierarchical_supports",
    "hierarchical_labels",
    "hierarchical_batch",
    "heldout_hierarchical",
    "mix64",
    "epoch_orders",
    "TrainingPool",
]

EVAL_SEED = 20250124
MAX_CUBE_DIM = 20


def first_support(k: int, *, device=None) -> torch.Tensor:
    """The default support ``S = {0, ..., k-1}`` (the paper's "first k coordinates"), shape ``(k,)``."""
    k = check_int("k", k, 1)
    return torch.arange(k, device=device)


def random_support(d: int, k: int, *, generator: torch.Generator, device=None) -> torch.Tensor:
    """A uniformly random ``k``-subset of ``{0..d-1}`` drawn without replacement (``randperm``).

    Returns the sorted indices, shape ``(k,)``, long.
    """
    d = check_int("d", d, 1)
    k = check_int("k", k, 1, d)
    perm = torch.randperm(d, generator=generator, device=generator.device)
    return perm[:k].sort().values.to(device if device is not None else generator.device)


_WORD_BITS = 62  # random bits per int64 draw (randint over [0, 2^62): a power of two, so uniform)


def sample_cube(
    n: int, d: int, *, generator: torch.Generator, runs: int | None = None, device=None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``n`` i.i.d. uniform points of ``{+-1}^d``: shape ``(n, d)``, or ``(runs, n, d)``.

    Bits are unpacked from 62-bit random words (3.5x faster than one ``randint`` per coordinate
    on CPU); coordinate ``j`` of a point is ``1 - 2 bit_(j mod 62)`` of its word ``j // 62``.
    """
    n = check_int("n", n, 0)
    d = check_int("d", d, 1)
    lead = (n,) if runs is None else (check_int("runs", runs, 1), n)
    words = (d + _WORD_BITS - 1) // _WORD_BITS
    dev = generator.device
    w = torch.randint(0, 2**_WORD_BITS, (*lead, words), generator=generator, device=dev, dtype=torch.int64)
    shifts = torch.arange(_WORD_BITS, device=dev)
    bits = ((w[..., None] >> shifts) & 1).to(torch.int8).reshape(*lead, words * _WORD_BITS)[..., :d]
    x = (1 - 2 * bits).to(dtype)
    return x if device is None else x.to(device)


def parity_labels(x: torch.Tensor, support: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, label)`` of Definition 3.1 for points ``x`` of shape ``(..., d)``.

    ``y = prod_{i in S} x_i`` in ``{+-1}`` (dtype of ``x``), shape ``(...)``; ``label`` (long) is 0
    where ``y > 0`` (the paper's class 1) and 1 otherwise (the paper's class 2).
    """
    support = torch.as_tensor(support, device=x.device).long()
    if support.dim() != 1 or support.numel() == 0:
        raise ParameterError(f"support must be a non-empty 1-d index tensor, got shape {tuple(support.shape)}")
    y = x.index_select(-1, support).prod(-1)
    return y, (y < 0).long()


def sparse_parity_batch(
    n: int, d: int, support: torch.Tensor, *, generator: torch.Generator, runs: int | None = None,
    device=None, dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fresh ``(d, k)``-sparse parity batch ``(x, y, label)`` (Definition 3.1).

    ``x``: ``(n, d)`` or ``(runs, n, d)``; ``y`` (+-1, dtype of x) and ``label`` (long, 0-based) have
    the leading shape of ``x`` without ``d``.
    """
    x = sample_cube(n, d, generator=generator, runs=runs, device=device, dtype=dtype)
    y, label = parity_labels(x, support)
    return x, y, label


def full_cube(d: int, *, device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """All of ``{+-1}^d`` for ``d <= 20``, shape ``(2^d, d)``: row ``p`` has ``x_j = 1 - 2 bit_j(p)``.

    The ordering is that of ``theory.fourier.cube``, for exact evaluation of a model.
    """
    d = check_int("d", d, 0, MAX_CUBE_DIM)
    p = torch.arange(2**d, device=device)[:, None]
    bits = (p >> torch.arange(d, device=device)[None, :]) & 1
    return (1 - 2 * bits).to(dtype)


def _eval_generator(generator: torch.Generator | None, seed: int) -> torch.Generator:
    return generator if generator is not None else torch.Generator(device="cpu").manual_seed(seed)


def heldout_parity(
    d: int, support: torch.Tensor, n: int = 4096, *, generator: torch.Generator | None = None,
    seed: int = EVAL_SEED, device=None, dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fixed held-out evaluation set of Appendix C.1 (4096 examples by default).

    Drawn from its own generator (a fresh CPU generator seeded with ``seed`` unless ``generator``
    is given) so that it is the same set on every device and never shares the training stream;
    then moved to ``device``. Returns ``(x (n, d), y (n,), label (n,))``.
    """
    gen = _eval_generator(generator, seed)
    x, y, label = sparse_parity_batch(n, d, torch.as_tensor(support).to(gen.device), generator=gen, dtype=dtype)
    return x.to(device), y.to(device), label.to(device)


# --------------------------------------------------------------------------- hierarchical parity
def hierarchical_supports(
    depth: int, k: int, d: int, *, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """Supports of the ``2^D - 1`` tree nodes of Appendix C.3, shape ``(2^D - 1, k)``, long.

    Nodes are in heap order: node 0 is the root and the children of node ``j`` are ``2j + 1``
    (left) and ``2j + 2`` (right). By default node ``j`` uses the disjoint block
    ``{jk, ..., jk + k - 1}`` (the paper's ``T_1 = x_1..x_5, T_2 = x_6..x_10, ...``); with a
    ``generator`` the blocks are disjoint random subsets (one ``randperm``). Needs
    ``d >= (2^D - 1) k``.
    """
    depth = check_int("depth", depth, 1, 16)
    k = check_int("k", k, 1)
    nodes = 2**depth - 1
    d = check_int("d", d, nodes * k)
    if generator is None:
        return torch.arange(nodes * k, device=device).reshape(nodes, k)
    perm = torch.randperm(d, generator=generator, device=generator.device)[: nodes * k]
    return perm.reshape(nodes, k).sort(dim=1).values.to(device if device is not None else generator.device)


def hierarchical_labels(x: torch.Tensor, supports: torch.Tensor) -> torch.Tensor:
    """Class in ``[0, 2^D)`` (long, shape ``x.shape[:-1]``) of the decision tree of Appendix C.3.

    At node ``j`` the parity ``T_j(x) = prod_{i in supports[j]} x_i`` picks the child: left when
    ``T_j(x) = -1``, right when ``+1`` (Figure 16). The class is the leaf reached, read as the
    binary number of the decisions with the root's decision as the most significant bit (right =
    1), so the upper half of the classes is the root's right subtree (``c(i, 1) = 1`` iff
    ``i >= 2^(D-1)``, 0-based). Note: for ``D = 1`` this gives class 1 when ``T > 0``, the
    opposite of the 2-class parity mapping of :func:`parity_labels`.
    """
    supports = torch.as_tensor(supports, device=x.device).long()
    nodes, k = supports.shape
    depth = (nodes + 1).bit_length() - 1
    if 2**depth - 1 != nodes:
        raise ParameterError(f"supports must have 2^D - 1 rows, got {nodes}")
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    node = torch.zeros(flat.shape[0], dtype=torch.long, device=x.device)
    label = torch.zeros_like(node)
    for _ in range(depth):
        idx = supports[node]  # (N, k)
        bit = (flat.gather(1, idx).prod(1) > 0).long()
        label = 2 * label + bit
        node = 2 * node + 1 + bit
    return label.reshape(lead)


def hierarchical_batch(
    n: int, d: int, supports: torch.Tensor, *, generator: torch.Generator, runs: int | None = None,
    device=None, dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A fresh hierarchical-parity batch ``(x, label)``: ``x`` ``(n, d)`` or ``(runs, n, d)``."""
    x = sample_cube(n, d, generator=generator, runs=runs, device=device, dtype=dtype)
    return x, hierarchical_labels(x, supports)


def heldout_hierarchical(
    d: int, supports: torch.Tensor, n: int = 4096, *, generator: torch.Generator | None = None,
    seed: int = EVAL_SEED, device=None, dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed held-out set ``(x (n, d), label (n,))`` for the hierarchical task (see :func:`heldout_parity`)."""
    gen = _eval_generator(generator, seed)
    x, label = hierarchical_batch(n, d, torch.as_tensor(supports).to(gen.device), generator=gen, dtype=dtype)
    return x.to(device), label.to(device)


# --------------------------------------------------------------------------- finite training pool
_M64 = (1 << 64) - 1


def _signed(c: int) -> int:
    return c - (1 << 64) if c >= 1 << 63 else c


_GAMMA = _signed(0x9E3779B97F4A7C15)  # SplitMix64's increment (2^64 / golden ratio, odd)
_MIX1, _MIX2 = _signed(0xBF58476D1CE4E5B9), _signed(0x94D049BB133111EB)


def _shr(z: torch.Tensor, s: int) -> torch.Tensor:
    """Logical right shift of int64 words (torch's ``>>`` is arithmetic)."""
    return (z >> s) & ((1 << (64 - s)) - 1)


def mix64(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64's finalizer on int64 words (arithmetic mod 2^64, two's complement): a bijection of
    64-bit words whose every output bit depends on every input bit; any shape, any device."""
    z = (z ^ _shr(z, 30)) * _MIX1
    z = (z ^ _shr(z, 27)) * _MIX2
    return z ^ _shr(z, 31)


def epoch_orders(keys: torch.Tensor, first: int, epochs: int, n: int) -> torch.Tensor:
    """The orders of epochs ``first .. first + epochs - 1`` of pools of ``n`` examples, ``(R, epochs, n)``
    long: row ``(r, e)`` is a permutation of ``0..n-1``.

    Each is a function of the run's 63-bit ``keys[r]`` (``(R,)`` int64) and the epoch alone (no
    generator state), so any chunk of samples, a resumed run and any device compute the same orders:
    epoch ``e`` sorts the SplitMix64 stream seeded with ``mix64(key + gamma (e + 1))``, i.e. its words
    ``mix64(z + gamma (i + 1))``, ``i < n`` (ties, probability < n^2 / 2^64, broken by index).
    """
    dev = keys.device
    e = torch.arange(first, first + epochs, device=dev, dtype=torch.int64)
    z = mix64(keys[:, None] + _GAMMA * (e[None, :] + 1))  # (R, E)
    i = torch.arange(1, n + 1, device=dev, dtype=torch.int64)
    words = mix64(z[..., None] + _GAMMA * i)  # (R, E, n)
    return torch.sort(words, dim=-1, stable=True).indices


class TrainingPool:
    """``n`` training examples per run, drawn once, served in a fresh random order each epoch.

    ``x`` ``(R, n, d)`` int8 (+-1) and ``labels`` ``(R, n)`` long are the pool; ``keys`` ``(R,)`` int64
    fix every epoch's order (:func:`epoch_orders`). The stream of samples is the concatenation of the
    epochs: sample ``p`` (0-based, counted over all steps and batch rows) is example
    ``order[p // n][p % n]``, so every ``n`` consecutive samples from a multiple of ``n`` visit each
    example once (a batch may straddle two epochs). :meth:`take` serves the next ``N`` samples for
    all runs at once (one gather; orders computed per touched epoch in one batched sort, the last
    one kept); :meth:`seek` moves to any sample (a resumed run).
    """

    def __init__(self, x: torch.Tensor, labels: torch.Tensor, keys: torch.Tensor) -> None:
        self.x, self.labels, self.keys = x, labels, keys
        self.n = x.shape[1]
        self.pos = 0
        self._cached: tuple[int, torch.Tensor] | None = None  # (epoch, its order (R, n))

    def seek(self, pos: int) -> None:
        self.pos = check_int("pos", pos, 0)

    def indices(self, count: int) -> torch.Tensor:
        """The pool indices ``(R, count)`` of the next ``count`` samples (advances the position)."""
        n, p0 = self.n, self.pos
        if count == 0:
            return torch.empty(self.x.shape[0], 0, dtype=torch.long, device=self.x.device)
        first, last = p0 // n, (p0 + count - 1) // n
        parts = []
        start = first
        if self._cached is not None and self._cached[0] == first:
            parts.append(self._cached[1][:, None])
            start = first + 1
        if start <= last:
            parts.append(epoch_orders(self.keys, start, last - start + 1, n))
        orders = parts[0] if len(parts) == 1 else torch.cat(parts, 1)  # (R, E, n)
        self._cached = (last, orders[:, -1])
        p = torch.arange(p0, p0 + count, device=self.x.device, dtype=torch.int64) - first * n
        self.pos = p0 + count
        return orders.reshape(orders.shape[0], -1)[:, p]

    def take(self, count: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``count`` samples of every run: ``x`` ``(R, count, d)`` of ``dtype``, labels ``(R, count)``."""
        idx = self.indices(count)
        x = torch.gather(self.x, 1, idx[..., None].expand(-1, -1, self.x.shape[-1]))
        return x.to(dtype), torch.gather(self.labels, 1, idx)
