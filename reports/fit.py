"""Power-law exponents with bootstrap confidence intervals: ``y ~ C x^p`` fitted in log-log space.

:func:`fit_exponent` fits ``log y = log C + p log x`` by least squares and gives a percentile
bootstrap interval for ``p``. With ``seeds`` given, the bootstrap resamples seeds (a seed keeps all
of its points, so runs that share a seed across ``x`` stay paired); without them, it resamples the
points within each distinct ``x`` (stratified), so every resample keeps every ``x``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory._checks import ParameterError

__all__ = ["ExponentFit", "fit_exponent", "loglog_slope"]


@dataclass(frozen=True)
class ExponentFit:
    """A fitted exponent ``p`` of ``y ~ C x^p`` and its bootstrap interval ``[lo, hi]``."""

    exponent: float
    lo: float
    hi: float
    log_const: float  # log C (natural log)
    n_points: int
    n_x: int  # distinct x values
    n_boot: int
    level: float

    def as_dict(self) -> dict:
        return {"exponent": self.exponent, "ci_lo": self.lo, "ci_hi": self.hi, "log_const": self.log_const,
                "n_points": self.n_points, "n_x": self.n_x, "n_boot": self.n_boot, "level": self.level}


def loglog_slope(x, y) -> tuple[float, float]:
    """Least-squares ``(slope, intercept)`` of ``log y`` on ``log x`` (needs two distinct ``x``)."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if np.unique(lx).size < 2:
        raise ParameterError("x must hold at least two distinct values to fit an exponent")
    slope, intercept = np.polyfit(lx, ly, 1)
    return float(slope), float(intercept)


def _check_inputs(x, y, seeds):
    x, y = np.asarray(x, float).ravel(), np.asarray(y, float).ravel()
    if x.shape != y.shape:
        raise ParameterError(f"x and y must have the same length, got {x.size} and {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(x > 0)):
        raise ParameterError("x must be finite and > 0 (log-log fit)")
    if not (np.all(np.isfinite(y)) and np.all(y > 0)):
        raise ParameterError("y must be finite and > 0 (log-log fit); drop runs that never reached the target")
    if seeds is not None:
        seeds = np.asarray(seeds, dtype=object).ravel()
        if seeds.shape != x.shape:
            raise ParameterError(f"seeds must have the same length as x, got {seeds.size} and {x.size}")
    return x, y, seeds


def _resample_by_seed(seeds, rng: np.random.Generator) -> np.ndarray:
    labels = list(dict.fromkeys(seeds.tolist()))
    picks = rng.integers(0, len(labels), len(labels))
    index = {lab: np.flatnonzero(seeds == lab) for lab in labels}
    return np.concatenate([index[labels[i]] for i in picks])


def _resample_within_x(x, rng: np.random.Generator) -> np.ndarray:
    parts = []
    for value in np.unique(x):
        rows = np.flatnonzero(x == value)
        parts.append(rows[rng.integers(0, rows.size, rows.size)])
    return np.concatenate(parts)


def fit_exponent(x, y, seeds=None, *, n_boot: int = 2000, rng: np.random.Generator, level: float = 0.95
                 ) -> ExponentFit:
    """Fit ``y ~ C x^p``; ``[lo, hi]`` is the ``level`` percentile bootstrap interval of ``p``.

    ``seeds``: one label per point (resampled as clusters when there are at least two seeds; see
    the module doc). ``rng`` must be a :class:`numpy.random.Generator` (explicit, so that reports
    are reproducible). Resamples that keep only one distinct ``x`` are skipped; the interval is
    taken over the rest (``n_boot`` of the result counts the kept ones).
    """
    if not isinstance(rng, np.random.Generator):
        raise ParameterError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ParameterError(f"n_boot must be an integer >= 1, got {n_boot!r}")
    if not 0 < level < 1:
        raise ParameterError(f"level must be in (0, 1), got {level!r}")
    x, y, seeds = _check_inputs(x, y, seeds)
    slope, intercept = loglog_slope(x, y)
    by_seed = seeds is not None and len(set(seeds.tolist())) >= 2
    boots = []
    for _ in range(int(n_boot)):
        rows = _resample_by_seed(seeds, rng) if by_seed else _resample_within_x(x, rng)
        if np.unique(x[rows]).size >= 2:
            boots.append(loglog_slope(x[rows], y[rows])[0])
    if not boots:
        lo = hi = slope
    else:
        tail = 100 * (1 - level) / 2
        lo, hi = (float(v) for v in np.percentile(boots, [tail, 100 - tail]))
    return ExponentFit(slope, lo, hi, intercept, int(x.size), int(np.unique(x).size), len(boots), float(level))
