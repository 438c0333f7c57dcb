"""The summary tables that ``icurr theory`` prints: rows as dicts, one function per table."""
from __future__ import annotations

from fractions import Fraction

from .bounds import all_bounds
from .fourier import majority_coefficient
from .gap import fourier_gap
from .gradient import gradient_magnitudes, paper_gradient_magnitudes

__all__ = ["fourier_row", "gap_rows", "gradient_row", "bounds_rows", "summary", "fraction_text"]


def fourier_row(fn: str, n: int, degree: int, *, exact: bool = False, bias=0, tie: int = 1) -> dict:
    """Keys ``n, degree, value`` (float) and, with ``exact``, ``exact`` ("p/q")."""
    from .fourier import threshold_coefficient

    if fn == "majority":
        value = majority_coefficient(n, degree, tie=tie, exact=exact)
    else:
        value = threshold_coefficient(n, degree, bias, exact=exact)
    row = {"fn": fn, "n": n, "degree": degree, "value": float(value)}
    if exact:
        row["exact"] = fraction_text(Fraction(value))
    return row


def fraction_text(q: Fraction) -> str:
    """``"p/q"`` in full, whatever ``sys.get_int_max_str_digits()`` says (lifted for this conversion only;
    the exact path bounds n, so the digits stay few enough to print: :data:`theory.fourier.MAX_EXACT_N`)."""
    import sys

    limit = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    if not limit or max(q.numerator.bit_length(), q.denominator.bit_length()) * 0.30103 < limit - 1:
        return f"{q.numerator}/{q.denominator}"
    sys.set_int_max_str_digits(0)
    try:
        return f"{q.numerator}/{q.denominator}"
    finally:
        sys.set_int_max_str_digits(limit)


def gap_rows(ds, ks) -> list[dict]:
    """``fourier_gap`` for every ``(d, k)``."""
    return [fourier_gap(d, k) for d in ds for k in ks]


def gradient_row(d: int, k: int, bias=0, *, relu_grad_at_zero: int = 1) -> dict:
    """Claim B.3 magnitudes per unit ``|a|``: exact (``in_support``, ``off_support``) and as stated
    (``predicted_in = |zeta_{k-1}|/2``, ``predicted_off = |zeta_{k+1}|/2``)."""
    exact = gradient_magnitudes(d, k, bias, relu_grad_at_zero=relu_grad_at_zero)
    paper = paper_gradient_magnitudes(d, k)
    return {
        "d": d, "k": k, "bias": float(bias),
        "in_support": exact["in_support"], "off_support": exact["off_support"],
        "predicted_in": paper["in_support"], "predicted_off": paper["off_support"],
    }


def bounds_rows(ds, ks, eps: float, delta: float, *, c: float = 1.0, tau: float = 0.1, width=None) -> list[dict]:
    """One row per ``(d, k)``: a key per bound (its value) and ``<name>_d_exponent``."""
    rows = []
    for d in ds:
        for k in ks:
            row = {"d": d, "k": k, "eps": eps, "delta": delta}
            for name, b in all_bounds(d, k, eps, delta, c=c, tau=tau, width=width).items():
                row[name] = b.value
                row[f"{name}_d_exponent"] = b.d_exponent
            rows.append(row)
    return rows


def summary() -> dict[str, list[dict]]:
    """The tables of ``icurr theory`` on their embedded defaults."""
    zetas = []
    for d in (11, 101, 1001, 10**6 + 1):
        row = {"d": d}
        for i in (1, 3, 5, 7):
            row[f"zeta_{i}"] = majority_coefficient(d, i)
        zetas.append(row)
    return {
        "Majority coefficients zeta_i(d) (exact, log-space floats)": zetas,
        "Fourier gap |zeta_(k-1)| - |zeta_(k+1)| vs the paper's 0.03 (d-1)^(-(k-1)/2)": gap_rows(
            (11, 101, 1001), (2, 3, 4, 6)
        ),
        "Claim B.3 gradient magnitudes per unit |a| (b = 0)": [
            gradient_row(d, k) for d in (20, 21, 101) for k in (2, 4, 6)
        ],
        "Sample-complexity bounds (eps = delta = 0.01, c = 1, tau = 0.1)": bounds_rows(
            (20, 50, 100), (2, 4, 6), 0.01, 0.01
        ),
    }
