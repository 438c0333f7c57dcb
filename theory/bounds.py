r"""Sample-complexity expressions of the paper (Appendix B), as numbers and sympy expressions.

Each function returns a :class:`Bound`: its numeric ``value`` at the given arguments, the sympy
``expr`` it evaluates (symbols ``d, k, epsilon, delta`` and the constants ``C1, C2, ...``, which
default to 1 and are exposed as parameters), and ``d_exponent``: the power of ``d`` that
dominates as ``d -> infinity`` for fixed ``k`` (what a report compares with a fitted slope;
logarithmic factors are ignored). Units: samples (= steps x batch size), SQ queries, or steps.

Where the paper's printed statement is wrong, the function implements the corrected one and the
note says so (see ``ERRATA.md``): Lemma B.7 and Corollary B.9 use ``|zeta_{k-1}|^{-2}``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import sympy as sp

from ._checks import check_int, check_real
from .fourier import log_abs_zeta

__all__ = [
    "Bound",
    "student_width",
    "teacher_width",
    "progressive_upper",
    "oneshot_lower",
    "teacher_lemma_b7",
    "teacher_corollary_b9",
    "width_tradeoff_steps",
    "sq_query_lower",
    "sq_sample_lower",
    "all_bounds",
]

d_, k_, eps_, delta_, m_, tau_, c_ = sp.symbols("d k epsilon delta m tau c", positive=True)
zeta_km1_ = sp.Symbol("zeta_{k-1}", positive=True)  # |zeta_{k-1}(d)|
C1, C2 = sp.symbols("C1 C2", positive=True)


@dataclass(frozen=True)
class Bound:
    name: str
    source: str
    kind: str  # "upper", "lower" or "no-learning horizon"
    units: str
    value: float
    expr: sp.Expr
    d_exponent: float
    note: str = ""

    def as_dict(self) -> dict:
        return {
            "name": self.name, "source": self.source, "kind": self.kind, "units": self.units,
            "value": self.value, "expr": str(self.expr), "d_exponent": self.d_exponent, "note": self.note,
        }


def _dk(d, k):
    d = check_int("d", d, 2)
    k = check_int("k", k, 1, d - 1)
    return d, k


def _eps_delta(eps, delta):
    check_real("eps", eps, 0, 1, lo_open=True, hi_open=True)
    check_real("delta", delta, 0, 1, lo_open=True, hi_open=True)
    return float(eps), float(delta)


def _inv_zeta_sq(d: int, k: int) -> float:
    s, log_abs = log_abs_zeta(k - 1, d)
    return math.inf if s == 0 else math.exp(-2 * log_abs)


def student_width(k: int) -> int:
    """``m~ = 2^k k``: Theorem B.1's student size ``Theta~(2^k k)`` with the logarithm dropped."""
    return 2**k * k


def teacher_width(k: int, delta: float) -> float:
    """``m = 2^k k log(k / delta)``: the width condition of Lemma B.7 with constant 1."""
    return 2**k * k * math.log(k / delta)


def progressive_upper(d, k, eps, delta, *, const1=1.0, const2=1.0, width=None) -> Bound:
    """Theorem B.1(1): ``C1 k^2 log(d m~/delta) + C2 2^k d^2 k^4 eps^-2 log(k/delta)`` samples."""
    d, k = _dk(d, k)
    eps, delta = _eps_delta(eps, delta)
    m = student_width(k) if width is None else check_int("width", width, 1)
    expr = C1 * k_**2 * sp.log(d_ * m_ / delta_) + C2 * 2**k_ * d_**2 * k_**4 * eps_**-2 * sp.log(k_ / delta_)
    value = const1 * k**2 * math.log(d * m / delta) + const2 * 2**k * d**2 * k**4 * eps**-2 * math.log(k / delta)
    return Bound("progressive_upper", "Theorem B.1 (1)", "upper", "samples", value, expr, 2.0,
                 "student width m~ defaults to 2^k k")


def oneshot_lower(d, k, *, c=1.0, const=1.0, width=None) -> Bound:
    """Theorem B.1(2): one-shot distillation from a teacher of loss ``O(d^-c)`` needs
    ``Omega(d^min(2c, k-1))`` samples; with ``width`` given, the proof's ``d^min(2c,k-1) / m~``."""
    d, k = _dk(d, k)
    check_real("c", c, 0, lo_open=True)
    e = min(2 * c, k - 1)
    expr = C1 * d_ ** sp.Min(2 * c_, k_ - 1)
    value = const * d**e
    note = "Theorem B.1 states no 1/m~ factor; its proof ends with d^min(2c,k-1)/m~"
    if width is not None:
        width = check_int("width", width, 1)
        expr, value = expr / m_, value / width
    return Bound("oneshot_lower", "Theorem B.1 (2)", "lower", "samples", value, expr, float(e), note)


def _teacher(d, k, eps, delta, const1, const2, extra_power: float, name: str, source: str) -> Bound:
    d, k = _dk(d, k)
    eps, delta = _eps_delta(eps, delta)
    m = teacher_width(k, delta)
    stage1 = const1 * _inv_zeta_sq(d, k) * k**2 * d**extra_power * math.log(k * d / eps)
    stage2 = const2 * m * d**2 * k**3 / eps**2
    power = sp.Rational(extra_power).limit_denominator(3)
    expr = (C1 * zeta_km1_**-2 * k_**2 * d_**power * sp.log(k_ * d_ / eps_)
            + C2 * 2**k_ * k_ * sp.log(k_ / delta_) * d_**2 * k_**3 / eps_**2)
    note = "stage-1 batch uses |zeta_{k-1}|^-2 (printed: |zeta_{k-1}|^2, see ERRATA.md); |zeta_{k-1}|^-2 ~ d^(k-1)"
    return Bound(name, source, "upper", "samples", stage1 + stage2, expr, max(k - 1 + extra_power, 2.0), note)


def teacher_lemma_b7(d, k, eps, delta, *, const1=1.0, const2=1.0) -> Bound:
    """Lemma B.7 (corrected): ``C1 |zeta_{k-1}|^-2 k^2 log(kd/eps) + C2 m d^2 k^3 / eps^2`` samples,
    ``m = 2^k k log(k/delta)``; ``~ d^(k-1) k^2 log + 2^k d^2 k^4 eps^-2 log(k/delta)``."""
    return _teacher(d, k, eps, delta, const1, const2, 0.0, "teacher_lemma_b7", "Lemma B.7")


def teacher_corollary_b9(d, k, eps, delta, *, const1=1.0, const2=1.0) -> Bound:
    """Corollary B.9 (corrected): stage-1 batch ``C1 |zeta_{k-1}|^-2 k^2 d^(10/3) log(kd/eps)``,
    so ``~ d^(k+7/3)``, plus the stage-2 term of Lemma B.7."""
    return _teacher(d, k, eps, delta, const1, const2, 10 / 3, "teacher_corollary_b9", "Corollary B.9")


def width_tradeoff_steps(d, k, width, *, delta=0.01, tau=0.1) -> Bound:
    """Lemma B.10 (Edelman et al. 2023, Prop. 3): no learning (loss >= 1 - tau) for all
    ``T <= (1/2) C(d, k) delta tau^2 / m`` steps, with probability ``1 - delta``."""
    d, k = _dk(d, k)
    width = check_int("width", width, 1)
    check_real("delta", delta, 0, 1, lo_open=True, hi_open=True)
    check_real("tau", tau, 0, 1, lo_open=True, hi_open=True)
    value = 0.5 * math.comb(d, k) * delta * tau**2 / width
    expr = sp.Rational(1, 2) * sp.binomial(d_, k_) * delta_ * tau_**2 / m_
    return Bound("width_tradeoff_steps", "Lemma B.10", "no-learning horizon", "steps", value, expr, float(k),
                 "steps x width >= C(d,k) delta tau^2 / 2 is necessary")


def sq_query_lower(d, k, *, tau=0.1) -> Bound:
    """SQ lower bound (Kearns 1998; Blum et al. 1994): the ``C(d, k)`` pairwise-orthogonal
    k-parities force ``q >= C(d, k) tau^2 / 2`` queries of tolerance ``tau``."""
    d, k = _dk(d, k)
    check_real("tau", tau, 0, 1, lo_open=True, hi_open=True)
    value = math.comb(d, k) * tau**2 / 2
    expr = sp.binomial(d_, k_) * tau_**2 / 2
    return Bound("sq_query_lower", "SQ lower bound (Sec. 3.2, App. A)", "lower", "queries", value, expr, float(k))


def sq_sample_lower(d, k, *, const=1.0) -> Bound:
    """Samples that online SGD needs to find the support from labels: ``Omega(d^(k-1))``
    (Section 3.2, citing Abbe et al. 2023 and Edelman et al. 2023)."""
    d, k = _dk(d, k)
    return Bound("sq_sample_lower", "Section 3.2", "lower", "samples", const * d ** (k - 1), C1 * d_ ** (k_ - 1),
                 float(k - 1))


def all_bounds(d, k, eps, delta, *, c=1.0, tau=0.1, width=None) -> dict:
    """Every bound at ``(d, k)``: ``{name: Bound}``. ``width`` (for Lemma B.10) defaults to ``2^k k``."""
    d, k = _dk(d, k)
    m = student_width(k) if width is None else width
    bounds = [
        progressive_upper(d, k, eps, delta),
        oneshot_lower(d, k, c=c),
        teacher_lemma_b7(d, k, eps, delta),
        teacher_corollary_b9(d, k, eps, delta),
        width_tradeoff_steps(d, k, m, delta=delta, tau=tau),
        sq_query_lower(d, k, tau=tau),
        sq_sample_lower(d, k),
    ]
    return {b.name: b for b in bounds}
