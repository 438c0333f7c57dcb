r"""Implicit-curriculum probes of Section 3.1 (R1, Figure 2) and Figure 9, batched over runs.

For a model with output ``p(x)`` the probe of the monomial ``chi_U(x) = prod_{j in U} x_j`` is

    corr_U = | E_{x ~ U({+-1}^d)} [ p(x) chi_U(x) ] |,

i.e. the absolute Fourier coefficient of ``p`` on ``U`` (Section 3.1: "the correlation for each
monomial x_j is |E_{x,y}([p_T(x)]_1 x_j)|"). ``p`` is the first output probability
``softmax(logits)[..., 0] = p(y = 1) = p(prod_{i in S} x_i > 0)`` for two-class logits (Definition
3.1) and the scalar output ``f`` itself for ``C = 1`` (the theory's model, Section 3.2).

Probed monomials: every degree-1 monomial ``x_j`` (Figure 2, middle), every in-support degree-2
and degree-3 monomial and a random sample of off-support ones ("rest": at least one coordinate
outside ``S``; Figure 9). Expectations are exact by enumeration of the ``2^d`` points when
``d <= 20`` and Monte Carlo otherwise, with the standard error of each correlation.
Coordinates are 0-based (the paper's ``x_1..x_6`` are indices ``0..5``); point ``p`` of the cube
has ``x_j = -1`` iff bit ``j`` of ``p`` is set (the convention of :mod:`theory.fourier`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import torch

from simulate.model import MLPParams, forward
from theory._checks import ParameterError, check_choice, check_int

__all__ = [
    "EXACT_MAX_DIM", "PLAN_CACHE_BYTES", "ProbePlan", "ProbeResult", "hypercube_points", "in_support_monomials",
    "model_fn", "off_support_monomials", "output_probability", "probe", "probe_plan", "probe_summary", "summary_rows",
]

EXACT_MAX_DIM = 20       # method="auto" enumerates the cube up to this dimension
_EXACT_HARD_MAX = 24     # method="exact" refuses beyond this (2^24 model evaluations)
_ENUMERATE_MAX = 2_000_000  # off-support sampling enumerates all subsets below this count

ModelFn = Callable[[torch.Tensor], torch.Tensor]


def model_fn(params: MLPParams) -> ModelFn:
    """The output function ``x (N, d) -> logits (R, N, C)`` of an MLP (all its runs)."""
    return lambda x: forward(params, x)


def output_probability(logits: torch.Tensor) -> torch.Tensor:
    """``p (R, N)`` from outputs ``(R, N, C)``: ``softmax[..., 0]`` for ``C = 2``, ``f`` for ``C = 1``."""
    if logits.dim() != 3:
        raise ParameterError(f"model output must have shape (R, N, C), got {tuple(logits.shape)}")
    classes = logits.shape[-1]
    if classes == 2:
        return torch.softmax(logits, dim=-1)[..., 0]
    if classes == 1:
        return logits[..., 0]
    raise ParameterError(f"model output classes must be 1 or 2, got {classes}")


def hypercube_points(start: int, stop: int, d: int, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Points ``start..stop-1`` of ``{+-1}^d`` as ``(stop - start, d)``; ``x_j = -1`` iff bit ``j`` is set."""
    idx = torch.arange(start, stop, dtype=torch.long, device=device)
    bits = (idx[:, None] >> torch.arange(d, device=device)) & 1
    return (1 - 2 * bits).to(dtype)


def _check_support(support: Sequence[int], d: int) -> list[int]:
    s = [check_int("support index", j, lo=0, hi=d - 1) for j in support]
    if len(set(s)) != len(s):
        raise ParameterError(f"support must have distinct coordinates, got {list(support)}")
    if not 0 < len(s) < d:
        raise ParameterError(f"support size k must lie in [1, d-1] = [1, {d - 1}], got {len(s)}")
    return sorted(s)


def in_support_monomials(support: Sequence[int], degree: int) -> torch.Tensor:
    """All ``C(k, degree)`` subsets of ``support`` as sorted index rows ``(M, degree)`` (lexicographic)."""
    s = torch.tensor(sorted(support), dtype=torch.long)
    if degree > len(s):
        return torch.empty((0, degree), dtype=torch.long)
    if degree == 1:
        return s[:, None]
    return torch.combinations(s, r=degree)


def off_support_monomials(
    d: int, support: Sequence[int], degree: int, n: int, *, generator: torch.Generator,
) -> torch.Tensor:
    """``min(n, #off)`` distinct degree-``degree`` subsets of ``[d]`` not inside ``support``, ``(M, degree)``.

    Sampled uniformly without replacement (all of them when ``n >= C(d, deg) - C(k, deg)``) with
    ``generator``; rows sorted lexicographically.
    """
    d = check_int("d", d, lo=1)
    degree = check_int("degree", degree, lo=1, hi=d)
    n = check_int("n_off", n, lo=0)
    s = set(_check_support(support, d))
    total_off = math.comb(d, degree) - math.comb(len(s), degree)
    if n == 0 or total_off == 0:
        return torch.empty((0, degree), dtype=torch.long)
    if math.comb(d, degree) <= _ENUMERATE_MAX:
        allsub = torch.arange(d)[:, None] if degree == 1 else torch.combinations(torch.arange(d), r=degree)
        in_s = torch.zeros(d, dtype=torch.bool)
        in_s[list(s)] = True
        off = allsub[~in_s[allsub].all(dim=1)]
        if n < len(off):
            pick = torch.randperm(len(off), generator=generator, device=generator.device)[:n].cpu()
            off = off[pick.sort().values]
        return off
    chosen: dict[tuple[int, ...], None] = {}
    while len(chosen) < n:
        b = 2 * (n - len(chosen)) + 16
        rows = torch.rand((b, d), generator=generator, device=generator.device).argsort(dim=1)[:, :degree]
        for row in rows.sort(dim=1).values.cpu().tolist():
            key = tuple(row)
            if not set(key) <= s and key not in chosen and len(chosen) < n:
                chosen[key] = None
    return torch.tensor(sorted(chosen), dtype=torch.long)


@dataclass
class ProbeResult:
    """Correlations of ``R`` runs with monomials, per degree ``deg``.

    ``monomials[deg]``: ``(M, deg)`` coordinate indices; ``in_support[deg]``: ``(M,)`` bool;
    ``corr[deg]``: ``(R, M)`` ``|E[p chi_U]|``; ``se[deg]``: ``(R, M)`` standard errors (0 when exact).
    """

    monomials: dict[int, torch.Tensor]
    in_support: dict[int, torch.Tensor]
    corr: dict[int, torch.Tensor]
    se: dict[int, torch.Tensor]
    exact: bool
    n_samples: int

    @property
    def runs(self) -> int:
        return next(iter(self.corr.values())).shape[0]


def _chi(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``chi_U(x)`` for every row ``U`` of ``idx (M, deg)``: ``(N, M)``."""
    out = x[:, idx[:, 0]]
    for c in range(1, idx.shape[1]):
        out = out * x[:, idx[:, c]]
    return out


#: A probe plan keeps its points' monomial matrices when they take at most this many bytes (float64)
PLAN_CACHE_BYTES = 1 << 27


@dataclass
class ProbePlan:
    """What a probe evaluates, drawn once (:func:`probe_plan`): the monomials per degree, their support
    mask, and the input points in chunks; with ``chi`` (per chunk, degree -> ``chi_U(x)`` ``(n, M)``
    float64) kept when they fit in :data:`PLAN_CACHE_BYTES`, so a plan reused at every evaluation of a
    run computes only the model's outputs and one product per chunk. Results are bit-identical to a
    plan drawn afresh with the same generator state."""

    monomials: dict[int, torch.Tensor]
    in_support: dict[int, torch.Tensor]
    exact: bool
    batches: list[torch.Tensor] | None  # the chunks, kept (None: regenerated per call, exact and too large)
    chi: list[dict[int, torch.Tensor]] | None
    regenerate: Callable[[], Iterable[torch.Tensor]]


def _accumulate(
    fn: ModelFn, batches: Iterable[torch.Tensor], monomials: Mapping[int, torch.Tensor],
    chi: Sequence[Mapping[int, torch.Tensor]] | None = None,
) -> tuple[dict[int, torch.Tensor], torch.Tensor, int]:
    """Sums ``sum_x p(x) chi_U(x)`` ``(R, M)`` per degree, ``sum_x p(x)^2`` ``(R,)`` and the count.
    ``chi``: the monomial matrices of each batch, precomputed (else computed here)."""
    sums: dict[int, torch.Tensor] = {}
    sq: torch.Tensor | None = None
    count = 0
    for b, x in enumerate(batches):
        with torch.no_grad():
            p = output_probability(fn(x)).to(torch.float64)  # (R, n)
        x64 = None if chi is not None else x.to(torch.float64)
        for deg, idx in monomials.items():
            m = chi[b][deg] if chi is not None else _chi(x64, idx.to(x.device))
            part = p @ m
            sums[deg] = part if deg not in sums else sums[deg] + part
        sq = (p * p).sum(dim=1) if sq is None else sq + (p * p).sum(dim=1)
        count += x.shape[0]
    return sums, sq, count


def probe_plan(
    d: int,
    support: Sequence[int],
    *,
    generator: torch.Generator,
    degrees: Sequence[int] = (1, 2, 3),
    n_off: int = 100,
    method: str = "auto",
    n_samples: int = 1 << 16,
    chunk_size: int = 4096,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
    cache_bytes: int = PLAN_CACHE_BYTES,
) -> ProbePlan:
    """The monomials and points of :func:`probe` (same arguments, same draws from ``generator``: the
    off-support monomials first, then the Monte Carlo points), for reuse over many models."""
    d = check_int("d", d, lo=2)
    s = _check_support(support, d)
    method = check_choice("method", method, ("auto", "exact", "mc"))
    chunk_size = check_int("chunk_size", chunk_size, lo=1)
    degrees = sorted({check_int("degree", g, lo=1, hi=d) for g in degrees})
    if not degrees:
        raise ParameterError("degrees must name at least one degree")
    exact = method == "exact" or (method == "auto" and d <= EXACT_MAX_DIM)
    if exact and d > _EXACT_HARD_MAX:
        raise ParameterError(f"method 'exact' needs d <= {_EXACT_HARD_MAX}, got d = {d}; use 'mc'")
    monomials: dict[int, torch.Tensor] = {}
    in_mask: dict[int, torch.Tensor] = {}
    for deg in degrees:
        if deg == 1:
            idx = torch.arange(d)[:, None]
        else:
            idx = torch.cat([in_support_monomials(s, deg),
                             off_support_monomials(d, s, deg, n_off, generator=generator)])
        monomials[deg] = idx
        in_mask[deg] = torch.isin(idx, torch.tensor(s)).all(dim=1)
    if exact:
        total = 1 << d

        def regenerate():
            return (hypercube_points(a, min(a + chunk_size, total), d, dtype=dtype, device=device)
                    for a in range(0, total, chunk_size))
        batches = None
    else:
        total = check_int("n_samples", n_samples, lo=2)
        batches = [_uniform_points(min(chunk_size, total - a), d, generator, dtype, device)
                   for a in range(0, total, chunk_size)]

        def regenerate():
            return iter(batches)
    chi = None
    if total * sum(len(m) for m in monomials.values()) * 8 <= cache_bytes:
        batches = list(regenerate())
        chi = []
        for x in batches:
            x64 = x.to(torch.float64)
            chi.append({deg: _chi(x64, idx.to(x.device)) for deg, idx in monomials.items()})
    return ProbePlan(monomials, in_mask, exact, batches, chi, regenerate)


def probe(
    fn: ModelFn,
    d: int,
    support: Sequence[int],
    *,
    generator: torch.Generator | None = None,
    degrees: Sequence[int] = (1, 2, 3),
    n_off: int = 100,
    method: str = "auto",
    n_samples: int = 1 << 16,
    chunk_size: int = 4096,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device | None = None,
    plan: ProbePlan | None = None,
) -> ProbeResult:
    """Correlations ``|E[p(x) chi_U(x)]|`` of every run of ``fn`` (Section 3.1 R1, Figure 2, Figure 9).

    ``fn``: ``x (N, d) -> (R, N, C)`` with ``C in {1, 2}``. Degree 1 probes every ``x_j``; degrees
    ``>= 2`` probe all in-support monomials and ``n_off`` off-support ones sampled with
    ``generator``. ``method``: ``"exact"`` (enumerate ``{+-1}^d``), ``"mc"`` (``n_samples``
    uniform points drawn with ``generator``) or ``"auto"`` (exact iff ``d <= 20``). Inputs are fed
    in chunks of ``chunk_size`` points of ``dtype`` on ``device``. ``plan``: a :func:`probe_plan`
    drawn once and reused (the other arguments but ``fn`` are then ignored; ``d`` and ``support``
    must be the plan's).
    """
    if plan is None:
        if generator is None:
            raise ParameterError("probe needs a generator (or a plan)")
        plan = probe_plan(d, support, generator=generator, degrees=degrees, n_off=n_off, method=method,
                          n_samples=n_samples, chunk_size=chunk_size, dtype=dtype, device=device)
    batches = plan.batches if plan.batches is not None else plan.regenerate()
    sums, sq, count = _accumulate(fn, batches, plan.monomials, plan.chi)
    corr, se = {}, {}
    for deg in plan.monomials:
        mean = sums[deg] / count
        corr[deg] = mean.abs()
        if plan.exact:
            se[deg] = torch.zeros_like(mean)
        else:
            var = (sq[:, None] - count * mean * mean).clamp_min(0) / (count - 1)
            se[deg] = (var / count).sqrt()
    return ProbeResult(plan.monomials, plan.in_support, corr, se, plan.exact, count)


def _uniform_points(n: int, d: int, generator: torch.Generator, dtype, device) -> torch.Tensor:
    bits = torch.randint(0, 2, (n, d), generator=generator, device=generator.device)
    return (1 - 2 * bits).to(dtype=dtype, device=device)


def _masked_stats(values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Mean, min, max over the columns ``mask`` of ``values (R, M)``; NaN when the mask is empty."""
    R = values.shape[0]
    if not bool(mask.any()):
        nan = torch.full((R,), float("nan"), dtype=values.dtype)
        return nan, nan, nan
    v = values[:, mask]
    return v.mean(dim=1), v.min(dim=1).values, v.max(dim=1).values


def probe_summary(result: ProbeResult) -> dict[str, torch.Tensor]:
    """Per-run summary columns, each ``(R,)`` float64, for every probed degree ``g``.

    ``corr{g}_in_mean``, ``corr{g}_in_min``, ``corr{g}_in_max``: mean/min/max over in-support monomials;
    ``corr{g}_off_mean``, ``corr{g}_off_max``: over the probed off-support ones; ``corr{g}_gap = in_mean -
    off_max`` (the separation of Figure 2 / Section 3.2 between in-support and off-support correlations);
    ``corr{g}_se``: the Monte Carlo standard error of one monomial's correlation estimate (the largest
    over the probed degree-``g`` monomials, :func:`_monomial_se`; 0 for exact probes). It bounds the
    standard error of every mean column too (a mean's SD is at most the largest SD of its terms).
    """
    out: dict[str, torch.Tensor] = {}
    for deg, values in result.corr.items():
        mask = result.in_support[deg]
        in_mean, in_min, in_max = _masked_stats(values, mask)
        off_mean, _, off_max = _masked_stats(values, ~mask)
        out[f"corr{deg}_in_mean"] = in_mean
        out[f"corr{deg}_in_min"] = in_min
        out[f"corr{deg}_in_max"] = in_max
        out[f"corr{deg}_off_mean"] = off_mean
        out[f"corr{deg}_off_max"] = off_max
        out[f"corr{deg}_gap"] = in_mean - off_max
        out[f"corr{deg}_se"] = _monomial_se(result, deg)
    return out


def _monomial_se(result: ProbeResult, deg: int) -> torch.Tensor:
    """``(R,)``: the largest standard error over the degree-``deg`` monomials, ``max_U sqrt(s_U^2 / N)``
    with ``s_U^2`` the sample variance of ``p(x) chi_U(x)`` over the probe's ``N = n_samples`` uniform
    points (:func:`probe`); exactly 0 when the probe enumerated the cube (no Monte Carlo error)."""
    se = result.se[deg]
    if result.exact or se.shape[1] == 0:
        return torch.zeros(se.shape[0], dtype=torch.float64)
    return se.to(torch.float64).max(dim=1).values


def summary_rows(summary: Mapping[str, torch.Tensor]) -> list[dict[str, float]]:
    """One ``{column: float}`` dict per run, ready to append to a metrics log."""
    runs = len(next(iter(summary.values())))
    return [{k: float(v[r]) for k, v in summary.items()} for r in range(runs)]
