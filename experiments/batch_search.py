"""The smallest stage-1 batch that works, ``B1*``, by a bisection over a geometric grid (issue: measured
against predicted scaling of Algorithm 1).

``success_rate(B1)`` is the fraction of a point's seed pairs whose run succeeds
(:mod:`simulate.two_stage_config`: support separated by at least ``recover_frac`` of the neurons after
stage 1, test hinge loss at most ``eps`` after stage 2). Assuming it does not decrease with ``B1``
(larger batches estimate the same population gradient with less noise), ``B1*`` is the smallest grid
value whose rate reaches ``target_rate``. The grid is ``lo, lo r, lo r^2, ...`` rounded up to integers
(duplicates dropped) up to the first value ``>= hi``; :func:`search_threshold` evaluates its top and its
bottom, then bisects the bracket: ``2 + ceil(log2(n - 1))`` evaluations for ``n`` grid values, so a
range of ``hi / lo = R`` costs ``O(log log_r R)`` runs, not a full grid. A point outside the grid is
reported as censored (``"above"``: even the largest batch failed; ``"below"``: the smallest succeeded).
The result is exact for a monotone rate; the evaluations are kept, so a non-monotone rate shows in them.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

from theory._checks import ParameterError, check_int, check_real

__all__ = ["geometric_grid", "SearchResult", "search_threshold"]


def geometric_grid(lo: int, hi: int, factor: float) -> list[int]:
    """Integers ``ceil(lo factor^i)`` (distinct, increasing) from ``lo`` to the first one ``>= hi``."""
    lo, hi = check_int("lo", lo, 1), check_int("hi", hi, 1)
    if hi < lo:
        raise ParameterError(f"hi must be >= lo ({lo}), got {hi}")
    check_real("factor", factor, 1, lo_open=True)
    grid, i = [], 0
    while not grid or grid[-1] < hi:
        v = math.ceil(lo * factor**i - 1e-9)
        if not grid or v > grid[-1]:
            grid.append(v)
        i += 1
    return grid


@dataclass
class SearchResult:
    """``b_star`` (None when censored above), ``censored`` (None, ``"above"``, ``"below"``), the bracket
    ``(largest failing value evaluated, b_star)``, and every evaluation ``(value, rate)`` in order."""

    grid: list[int]
    target: float
    b_star: int | None
    censored: str | None
    bracket: tuple[int | None, int | None]
    evaluations: list[tuple[int, float]] = field(default_factory=list)

    @property
    def n_evaluations(self) -> int:
        return len(self.evaluations)

    def as_dict(self) -> dict:
        return asdict(self) | {"n_evaluations": self.n_evaluations}


def search_threshold(rate: Callable[[int], float], grid: list[int], target: float) -> SearchResult:
    """The smallest value of ``grid`` with ``rate(value) >= target``, by bisection (module doc)."""
    if not grid or list(grid) != sorted(set(grid)):
        raise ParameterError("grid must be a non-empty increasing list")
    check_real("target", target, 0, 1, lo_open=True)
    seen: dict[int, float] = {}
    evaluations: list[tuple[int, float]] = []

    def ok(i: int) -> bool:
        v = grid[i]
        if v not in seen:
            seen[v] = float(rate(v))
            evaluations.append((v, seen[v]))
        return seen[v] >= target

    top = len(grid) - 1
    if not ok(top):
        return SearchResult(list(grid), target, None, "above", (grid[top], None), evaluations)
    if ok(0):
        return SearchResult(list(grid), target, grid[0], "below", (None, grid[0]), evaluations)
    lo, hi = 0, top  # rate(grid[lo]) < target <= rate(grid[hi])
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return SearchResult(list(grid), target, grid[hi], None, (grid[lo], grid[hi]), evaluations)
