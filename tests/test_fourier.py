"""Closed forms of theory.fourier against brute-force enumeration of {+-1}^n, and identities."""
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import ParameterError
from theory.fourier import (
    cube,
    fourier_coefficients,
    log_abs_zeta,
    majority_coefficient,
    majority_weight,
    threshold_coefficient,
    threshold_log_coefficient,
    threshold_weight,
    walsh_hadamard,
    weight_by_degree,
    zeta,
)

BIASES = [Fraction(0), Fraction(-1, 2), Fraction(1, 3), Fraction(7, 10), Fraction(-5, 2), Fraction(3)]


def _popcount(S: int) -> int:
    return bin(S).count("1")


@pytest.mark.parametrize("n", range(1, 13))
@pytest.mark.parametrize("strict", [False, True])
def test_threshold_closed_form_equals_brute_force(n, strict):
    rng = np.random.default_rng(n)
    w = rng.choice([-1, 1], size=n)
    x = cube(n).astype(np.int64)
    neg_mask = sum(1 << j for j in range(n) if w[j] < 0)
    for b in BIASES + [Fraction(n + 1), Fraction(-n - 1)]:
        z = x @ w + b
        f = (z > 0) if strict else (z >= 0)
        brute = fourier_coefficients(f.astype(np.int64), exact=True)
        cache = {}
        for S in range(2**n):
            key = (_popcount(S), _popcount(S & neg_mask))
            if key not in cache:
                cache[key] = threshold_coefficient(n, key[0], b, key[1], strict=strict, exact=True)
            assert brute[S] == cache[key], (n, b, S)


@pytest.mark.parametrize("n", range(1, 13))
@pytest.mark.parametrize("tie", [1, -1, 0])
def test_majority_closed_form_equals_brute_force(n, tie):
    s = cube(n).astype(np.int64).sum(1)
    maj = np.where(s > 0, 1, np.where(s < 0, -1, tie))
    brute = fourier_coefficients(maj, exact=True)
    for S in range(2**n):
        assert brute[S] == majority_coefficient(n, _popcount(S), tie=tie, exact=True)
    by_degree = weight_by_degree(brute)
    assert by_degree == [majority_weight(n, i, tie=tie, exact=True) for i in range(n + 1)]


@pytest.mark.parametrize("d", [1, 3, 5, 11, 31, 101])
def test_zeta_odd_d_matches_odonnell_formula(d):
    for i in range(d + 1):
        if i % 2 == 0:
            expected = Fraction(0)
        else:
            expected = Fraction(
                (-1) ** ((i - 1) // 2) * math.comb((d - 1) // 2, (i - 1) // 2) * math.comb(d - 1, (d - 1) // 2) * 2,
                math.comb(d - 1, i - 1) * 2**d,
            )
        assert zeta(i, d, exact=True) == expected


@pytest.mark.parametrize("d", [7, 21, 101])
def test_consecutive_zeta_ratio(d):
    for i in range(1, d - 2, 2):
        assert zeta(i + 2, d, exact=True) / zeta(i, d, exact=True) == Fraction(-i, d - i - 1)


@pytest.mark.parametrize("n", [1, 2, 7, 30, 64])
def test_parseval(n):
    assert sum(majority_weight(n, i, exact=True) for i in range(n + 1)) == 1
    for b in BIASES:
        # f is 0/1-valued, so E[f^2] = E[f] = f^(empty)
        total = sum(threshold_weight(n, i, b, exact=True) for i in range(n + 1))
        assert total == threshold_coefficient(n, 0, b, exact=True)


def test_parseval_float_large_n():
    n = 2001
    total = sum(majority_weight(n, i) for i in range(n + 1))
    assert abs(total - 1) < 1e-9


@pytest.mark.parametrize("n", [5, 30, 101, 300, 1000])
def test_float_path_matches_exact(n):
    rng = np.random.default_rng(n)
    degrees = sorted(set(rng.integers(0, n + 1, size=40).tolist()) | {0, 1, 2, n})
    for b in [Fraction(0), Fraction(-1, 2), Fraction(32, 10), Fraction(-91, 10), Fraction(15)]:
        scale = max(abs(threshold_coefficient(n, i, b, exact=True)) for i in range(1, min(n, 8) + 1))
        for i in degrees:
            e = threshold_coefficient(n, i, b, exact=True)
            s, la = threshold_log_coefficient(n, i, b)
            if e == 0:
                # an exact zero may come out as rounding noise, far below the coefficient scale
                assert s == 0 or la < math.log(scale) - 20
                continue
            log_e = math.log(abs(e.numerator)) - math.log(e.denominator)
            assert s == (1 if e > 0 else -1)
            assert abs(la - log_e) < 1e-9, (n, i, b)


def test_large_n_log_space_is_finite_and_exact():
    n = 100_001
    for i in (1, 3, 5):
        exact = zeta(i, n, exact=True)
        s, la = log_abs_zeta(i, n)
        assert s == (1 if exact > 0 else -1)
        assert abs(la - (math.log(abs(exact.numerator)) - math.log(exact.denominator))) < 1e-9
    # n = 10^6 + 1: finite far below float's range, and W^1 -> 2/pi
    s, la = log_abs_zeta(100_001, 10**6 + 1)
    assert s != 0 and math.isfinite(la) and la < -1e5
    assert abs(majority_weight(10**6 + 1, 1) - 2 / math.pi) < 1e-6


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10).flatmap(lambda n: st.lists(st.integers(-50, 50), min_size=2**n, max_size=2**n)))
def test_walsh_hadamard_is_self_inverse(values):
    v = np.array(values, dtype=np.int64)
    assert np.array_equal(walsh_hadamard(walsh_hadamard(v)), len(v) * v)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 10).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, 2**n - 1))))
def test_parity_has_exactly_one_nonzero_coefficient(n_and_S):
    n, S = n_and_S
    x = cube(n)
    mask = np.array([(S >> j) & 1 for j in range(n)], dtype=bool)
    values = np.prod(np.where(mask, x, 1), axis=1).astype(np.int64)
    coeffs = fourier_coefficients(values, exact=True)
    assert [T for T, c in enumerate(coeffs) if c != 0] == [S]
    assert coeffs[S] == 1


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 8).flatmap(lambda n: st.lists(st.integers(-9, 9), min_size=2**n, max_size=2**n)))
def test_parseval_brute_force(values):
    v = np.array(values, dtype=np.int64)
    coeffs = fourier_coefficients(v, exact=True)
    assert sum(c * c for c in coeffs) == Fraction(int(np.sum(v * v)), len(v))


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ParameterError, match="degree"):
        threshold_coefficient(5, 6, 0)
    with pytest.raises(ParameterError, match="n must"):
        majority_coefficient(0, 0)
    with pytest.raises(ParameterError, match="tie"):
        majority_coefficient(4, 1, tie=2)
    with pytest.raises(ParameterError, match="power-of-two"):
        walsh_hadamard(np.zeros(6))
