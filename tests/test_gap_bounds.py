"""Fourier gap, its validity range, and the sample-complexity expressions."""
import math
from fractions import Fraction

import pytest
import sympy as sp

from theory import ParameterError
from theory import bounds as B
from theory.fourier import zeta
from theory.gap import EXACT_D_MAX, bound_validity, fourier_gap, paper_gap_bound


@pytest.mark.parametrize("d", [13, 21, 101, 1001])
@pytest.mark.parametrize("k", [2, 4, 6])
def test_gap_closed_form_odd_d(d, k):
    z = abs(zeta(k - 1, d, exact=True))
    gap = z * (1 - Fraction(k - 1, d - k))
    row = fourier_gap(d, k)
    assert row["gap"] == pytest.approx(float(gap), rel=1e-12)
    assert row["ratio"] == pytest.approx(float(gap) / paper_gap_bound(d, k), rel=1e-12)


def test_gap_log_path_matches_exact():
    d, k = EXACT_D_MAX + 1, 6
    z = abs(zeta(k - 1, d, exact=True))
    gap = float(z * (1 - Fraction(k - 1, d - k)))
    assert fourier_gap(d, k)["gap"] == pytest.approx(gap, rel=1e-9)
    assert fourier_gap(10**6 + 1, 4)["bound_holds"]


def test_bound_validity_ranges():
    assert bound_validity(2, 201)["holds_from"] == 4
    odd_k3 = bound_validity(3, 201, parity="odd")
    assert odd_k3["holds_from"] is None and odd_k3["n_fail"] == 99  # every odd d in [5, 201]
    six = bound_validity(6, 201)
    assert six["holds_from"] == 12 and six["fails"] == [7, 8, 9, 10, 11]
    assert six["min_ratio"] > 1


def test_gap_zero_for_odd_k_odd_d():
    row = fourier_gap(101, 3)
    assert row["gap"] == 0 and not row["bound_holds"]


def _slope(fn, k, d1, d2):
    return math.log(fn(d2, k).value / fn(d1, k).value) / math.log(d2 / d1)


@pytest.mark.parametrize(
    "fn",
    [
        lambda d, k: B.progressive_upper(d, k, 0.01, 0.01),
        lambda d, k: B.oneshot_lower(d, k, c=1.0),
        lambda d, k: B.teacher_lemma_b7(d, k, 0.3, 0.01),
        lambda d, k: B.teacher_corollary_b9(d, k, 0.3, 0.01),
        lambda d, k: B.width_tradeoff_steps(d, k, 100),
        lambda d, k: B.sq_query_lower(d, k),
        lambda d, k: B.sq_sample_lower(d, k),
    ],
)
@pytest.mark.parametrize("k", [2, 4, 6])
def test_d_exponent_is_the_measured_slope(fn, k):
    """The declared d-exponent is the log-log slope at large d (log factors cost < 0.1)."""
    slope = _slope(fn, k, 10**6, 10**7)
    assert slope == pytest.approx(fn(100, k).d_exponent, abs=0.1)


def test_expressions_evaluate_to_values():
    d, k, eps, delta = 50, 4, 0.05, 0.01
    subs = {B.d_: d, B.k_: k, B.eps_: eps, B.delta_: delta, B.C1: 1, B.C2: 1, B.tau_: 0.1, B.c_: 1}
    for name, bound in B.all_bounds(d, k, eps, delta).items():
        extra = {B.m_: B.student_width(k) if name != "width_tradeoff_steps" else B.student_width(k),
                 B.zeta_km1_: abs(zeta(k - 1, d))}
        value = float(bound.expr.subs({**subs, **extra}).evalf())
        assert value == pytest.approx(bound.value, rel=1e-9), name


def test_lemma_b7_is_the_corrected_form():
    # The stage-1 term uses |zeta|^-2, which is ~ C(d, k-1): dominating d^(k-1) for k = 6.
    d, k = 200, 6
    b = B.teacher_lemma_b7(d, k, 0.5, 0.01, const2=0.0)
    expected = abs(zeta(k - 1, d)) ** -2 * k**2 * math.log(k * d / 0.5)
    assert b.value == pytest.approx(expected, rel=1e-12)
    assert b.value > d ** (k - 1) / 10


def test_bounds_validate_arguments():
    with pytest.raises(ParameterError, match="eps"):
        B.progressive_upper(10, 2, 1.5, 0.1)
    with pytest.raises(ParameterError, match="k must"):
        B.sq_query_lower(5, 7)
    with pytest.raises(ParameterError, match="d must be an integer"):
        B.oneshot_lower(10.5, 2)
