r"""The Fourier gap ``|zeta_{k-1}(d)| - |zeta_{k+1}(d)|`` of Majority (Claim B.3) and the bound
``0.03 (d-1)^{-(k-1)/2}`` that the paper quotes from Barak et al. (2022, Lemma 2).

For odd ``d`` and odd ``i`` the exact ratio of consecutive odd coefficients is
``zeta_{i+2} / zeta_i = -i / (d - i - 1)``, so for even ``k``

    gap = |zeta_{k-1}| * (1 - (k - 1)/(d - k)).

For odd ``k`` and odd ``d`` both coefficients have even degree and vanish, so there is no gap
at all; for even ``d`` (ties broken as a ReLU neuron does) the even coefficients are nonzero but
of order ``d^{-k/2}``, one half-power below the bound. :func:`bound_validity` reports the ``d``
range where the quoted bound holds.
"""
from __future__ import annotations

import math

from ._checks import check_int
from .fourier import log_abs_zeta, zeta

__all__ = ["fourier_gap", "paper_gap_bound", "bound_validity", "EXACT_D_MAX"]

#: Up to this ``d`` the gap is computed in exact rational arithmetic, above it in log-space floats.
EXACT_D_MAX = 2000
PAPER_GAP_CONSTANT = 0.03


def paper_gap_bound(d: int, k: int) -> float:
    """``0.03 (d - 1)^{-(k-1)/2}`` (Claim B.3 quoting Barak et al. 2022, Lemma 2)."""
    return PAPER_GAP_CONSTANT * (d - 1) ** (-(k - 1) / 2)


def fourier_gap(d: int, k: int, *, tie: int = 1) -> dict:
    """Exact Fourier gap for ``(d, k)`` beside the paper's bound.

    Returns the keys ``d, k, zeta_km1, zeta_kp1, gap, paper_bound, ratio, bound_holds`` (floats;
    the sign of ``gap`` and ``bound_holds`` are decided in exact arithmetic for ``d <= EXACT_D_MAX``).
    Requires ``1 <= k`` and ``k + 1 <= d``.
    """
    d = check_int("d", d, 2)
    k = check_int("k", k, 1, d - 1)
    bound = paper_gap_bound(d, k)
    if d <= EXACT_D_MAX:
        zm, zp = zeta(k - 1, d, tie=tie, exact=True), zeta(k + 1, d, tie=tie, exact=True)
        gap_exact = abs(zm) - abs(zp)
        gap = float(gap_exact)
        zm, zp = float(zm), float(zp)
    else:
        sm, lm = log_abs_zeta(k - 1, d, tie=tie)
        sp, lp = log_abs_zeta(k + 1, d, tie=tie)
        zm = sm * math.exp(lm) if sm else 0.0
        zp = sp * math.exp(lp) if sp else 0.0
        if sm == 0:
            gap = -abs(zp)
        else:  # |zm| (1 - exp(lp - lm)), accurate even when both underflow
            gap = math.exp(lm) * -math.expm1(lp - lm) if sp else math.exp(lm)
    ratio = gap / bound
    return {
        "d": d,
        "k": k,
        "zeta_km1": zm,
        "zeta_kp1": zp,
        "gap": gap,
        "paper_bound": bound,
        "ratio": ratio,
        "bound_holds": bool(gap >= bound),
    }


def bound_validity(k: int, d_max: int = 1001, *, parity: str = "all") -> dict:
    """Where ``gap >= 0.03 (d-1)^{-(k-1)/2}`` holds for ``k + 1 <= d <= d_max``.

    ``parity``: ``"all"``, ``"odd"`` or ``"even"`` values of ``d``. Returns ``holds_from``: the
    smallest ``d0`` such that the bound holds for every scanned ``d >= d0`` (``None`` if it fails
    at ``d_max``), ``fails``: the scanned ``d`` where it fails (first 20), ``n_fail`` and
    ``min_ratio`` over ``[holds_from, d_max]``.
    """
    k = check_int("k", k, 1)
    d_max = check_int("d_max", d_max, k + 1)
    ds = [d for d in range(k + 1, d_max + 1) if parity == "all" or (d % 2 == 1) == (parity == "odd")]
    rows = [fourier_gap(d, k) for d in ds]
    fails = [r["d"] for r in rows if not r["bound_holds"]]
    holds_from = None
    if rows and rows[-1]["bound_holds"]:
        holds_from = (max(fails) + 1) if fails else ds[0]
    tail = [r["ratio"] for r in rows if holds_from is not None and r["d"] >= holds_from]
    return {
        "k": k,
        "d_max": d_max,
        "parity": parity,
        "holds_from": holds_from,
        "fails": fails[:20],
        "n_fail": len(fails),
        "min_ratio": min(tail) if tail else None,
    }
