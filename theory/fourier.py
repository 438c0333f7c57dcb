r"""Fourier analysis on the Boolean hypercube {+-1}^n under the uniform distribution.

Conventions (used everywhere in the package)
--------------------------------------------
* A point of the cube is indexed by an integer ``p`` in ``[0, 2**n)``: coordinate ``j``
  (0-based) is ``x_j = -1`` if bit ``j`` of ``p`` is set and ``+1`` otherwise.
* A set ``S`` of coordinates is a bitmask with the same bit order; ``chi_S(x) = prod_{j in S} x_j``.
* The Fourier coefficient is ``f^(S) = E_x[f(x) chi_S(x)]`` (O'Donnell 2014, Def. 1.2), so that
  ``f = sum_S f^(S) chi_S`` and Parseval reads ``E[f^2] = sum_S f^(S)^2``.

Threshold neurons and Majority
------------------------------
The biased threshold neuron ``x -> 1[w.x + b >= 0]`` with ``w`` in {+-1}^n is the derivative
``sigma'(w.x + b)`` of a ReLU neuron under the convention ``sigma'(0) = 1`` (the paper's
``1[. >= 0]``); ``strict=True`` gives ``1[w.x + b > 0]``, PyTorch's convention ``relu'(0) = 0``.
Writing ``J`` for the number of coordinates with ``w_j x_j = -1``, ``w.x = n - 2J``, so the neuron
fires iff ``J <= t`` with ``t = floor((n + b)/2)`` (``ceil((n + b)/2) - 1`` when strict).
By the generating-function identity ``sum_{j<=t} K_j(x; n) = K_t(x - 1; n - 1)`` for Krawtchouk
polynomials ``K_j(x; n) = sum_r (-1)^r C(x, r) C(n - x, j - r)``, for ``|S| = i >= 1``

    f^(S) = chi_S(w) * 2^-n * K_t(i - 1; n - 1)
          = chi_S(w) * 2^-n * C(n-1, t) / C(n-1, i-1) * K_{i-1}(t; n - 1),

and ``f^(empty) = P[Bin(n, 1/2) <= t]``. ``chi_S(w) = (-1)^(number of j in S with w_j = -1)``.

Majority is ``Maj_n(x) = sign(sum_j x_j)``; for even ``n`` a tie ``sum_j x_j = 0`` is broken to
``tie`` (+1 by default). This is exactly what a ReLU neuron realizes: for ``|b| < 1``,
``2 * 1[w.x + b >= 0] - 1 = Maj_n(w o x)`` with ``tie = +1`` if ``b >= 0`` and ``-1`` if ``b < 0``
(with ``strict=True``: ``tie = +1`` iff ``b > 0``). For odd ``n`` the bias and the tie rule play no
role. The paper's ``zeta_i(d) = E[Maj_d(x) chi_S(x)]``, ``|S| = i`` (Appendix B, "Notations").

Exact values are :class:`fractions.Fraction`; float values use log-space arithmetic (Krawtchouk
three-term recurrence with rescaling and ``scipy.special.betaln``) and stay finite for ``n`` up to
10^6 and beyond. :func:`walsh_hadamard` is the brute-force reference for ``n <= 20``.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from scipy import special, stats

from ._checks import ParameterError, check_choice, check_int, check_real

__all__ = [
    "cube",
    "chi",
    "walsh_hadamard",
    "fourier_coefficients",
    "weight_by_degree",
    "threshold_count",
    "threshold_coefficient",
    "threshold_log_coefficient",
    "threshold_weight",
    "majority_coefficient",
    "majority_weight",
    "zeta",
]

MAX_BRUTE_FORCE_N = 20
#: Work limits (a few seconds each): the exact path sums ``terms`` binomials of about ``n`` bits
#: (``n * terms`` at most this), the float path runs the Krawtchouk recurrence (this many steps at most).
MAX_EXACT_WORK = 6 * 10**7
MAX_RECURRENCE_STEPS = 10**7
#: The float path's largest n: its log-space values keep a relative error below about 1e-5 up to 10^9
#: (measured against sqrt(2 / (pi n)) for zeta_1), 0.4% at 10^12 and none of their digits at 10^15.
MAX_FLOAT_N = 10**9
#: The exact path's largest n (its denominator 2^n has 60206 digits there, about a second; 10^6 took 16 s).
MAX_EXACT_N = 2 * 10**5


# --------------------------------------------------------------------------- brute force
def cube(n: int) -> np.ndarray:
    """All of {+-1}^n as an int8 array of shape ``(2**n, n)``, row ``p`` as in the module doc."""
    n = check_int("n", n, 0, MAX_BRUTE_FORCE_N)
    p = np.arange(2**n, dtype=np.int64)[:, None]
    bits = (p >> np.arange(n, dtype=np.int64)[None, :]) & 1
    return (1 - 2 * bits).astype(np.int8)


def chi(S: int, x: np.ndarray) -> np.ndarray:
    """``chi_S(x)`` for a bitmask ``S`` and points ``x`` of shape ``(..., n)`` with entries +-1."""
    n = x.shape[-1]
    mask = ((S >> np.arange(n)) & 1).astype(bool)
    return np.prod(np.where(mask, x, 1), axis=-1)


def walsh_hadamard(values) -> np.ndarray:
    """Unnormalized Walsh-Hadamard transform along the last axis.

    ``(H v)[S] = sum_p (-1)^{|S & p|} v[p]`` for ``v`` of shape ``(..., 2**n)``, ``n <= 20``.
    ``H`` is symmetric and ``H H = 2**n I``. Integer input stays exact (int64, or Python ints for
    object arrays); the cost is ``n 2**n`` additions.
    """
    v = np.array(values, copy=True)
    size = v.shape[-1]
    n = size.bit_length() - 1
    if size < 1 or 2**n != size:
        raise ParameterError(f"values must have a power-of-two length along the last axis, got {size}")
    check_int("n", n, 0, MAX_BRUTE_FORCE_N)
    lead = v.shape[:-1]
    h = 1
    while h < size:
        v = v.reshape(*lead, size // (2 * h), 2, h)
        a = v[..., 0, :].copy()
        b = v[..., 1, :]
        v[..., 0, :] = a + b
        v[..., 1, :] = a - b
        h *= 2
    return v.reshape(*lead, size)


def fourier_coefficients(values, *, exact: bool = False):
    """Fourier coefficients ``f^(S)`` of ``f`` given by its ``2**n`` values (module-doc order).

    Returns a float array of shape ``(2**n,)`` indexed by the bitmask ``S``, or with ``exact=True``
    a list of Fractions (the values must then be integers or Fractions).
    """
    v = np.asarray(values)
    size = v.shape[-1]
    if exact:
        vals = [Fraction(x) for x in v.tolist()]
        den = math.lcm(*[q.denominator for q in vals]) if vals else 1
        ints = np.array([int(q * den) for q in vals], dtype=object)
        return [Fraction(int(s), den * size) for s in walsh_hadamard(ints)]
    return walsh_hadamard(v.astype(np.float64)) / size


def weight_by_degree(coefficients) -> list:
    """Fourier weight ``W^i = sum_{|S|=i} f^(S)^2`` from a full coefficient vector (bitmask order)."""
    size = len(coefficients)
    n = size.bit_length() - 1
    out = [0] * (n + 1)
    for S, c in enumerate(coefficients):
        out[bin(S).count("1")] += c * c
    return out


# --------------------------------------------------------------------------- threshold neurons
def threshold_count(n: int, bias, *, strict: bool = False) -> int:
    """The largest number ``t`` of coordinates with ``w_j x_j = -1`` for which the neuron fires.

    ``1[w.x + b >= 0]`` fires iff ``J <= t = floor((n + b)/2)``; strict: ``t = ceil((n + b)/2) - 1``.
    ``t < 0`` means the neuron never fires, ``t >= n`` that it always does.
    """
    half = (Fraction(n) + Fraction(bias)) / 2
    return math.ceil(half) - 1 if strict else math.floor(half)


def _validate(n, degree, bias, n_negative):
    n = check_int("n", n, 1, MAX_FLOAT_N)
    degree = check_int("degree", degree, 0, n)
    check_real("bias", bias)
    n_negative = check_int("n_negative", n_negative, 0, degree)
    return n, degree, n_negative


def _check_exact_work(n: int, degree: int, t: int) -> None:
    """Refuse an exact (rational) coefficient whose sum of binomials would run for minutes or more."""
    terms = (t + 1) if degree == 0 else min(t, degree - 1) + 1
    if n > MAX_EXACT_N:
        raise ParameterError(
            f"n must be at most {MAX_EXACT_N} for the exact rational value, got {n}: use the log-space float path "
            f"(exact=False; icurr theory fourier without --exact), finite for any n")
    if n * terms > MAX_EXACT_WORK:
        raise ParameterError(
            f"n = {n} with degree = {degree} is too large for the exact rational value ({terms} binomials of "
            f"about {n} bits, n * terms = {n * terms:.2e} > {MAX_EXACT_WORK:.0e}): use the log-space float path "
            f"(exact=False; icurr theory fourier without --exact), exact for n up to about 10^4 at any degree")


def _krawtchouk_exact(j: int, x: int, N: int) -> int:
    """``K_j(x; N) = sum_r (-1)^r C(x, r) C(N - x, j - r)`` as an exact integer."""
    return sum((-1) ** r * math.comb(x, r) * math.comb(N - x, j - r) for r in range(0, min(x, j) + 1))


def _log_krawtchouk(q: int, x: int, N: int) -> tuple[int, float]:
    """``(sign, log|K_q(x; N)|)`` by the three-term recurrence in the degree ``q``.

    ``(q+1) K_{q+1} = (N - 2x) K_q - (N - q + 1) K_{q-1}``, ``K_0 = 1``, ``K_1 = N - 2x``,
    with rescaling so that nothing overflows; ``K_q(x) = (-1)^x K_{N-q}(x)`` halves the work.
    """
    sign = 1
    if q > N - q:
        sign = -1 if x % 2 else 1
        q = N - q
    if q == 0:
        return sign, 0.0
    if q > MAX_RECURRENCE_STEPS:
        raise ParameterError(f"degree is too far from 0 and from n = {N + 1} for the float path: its recurrence "
                             f"takes min(degree - 1, n - degree) = {q} steps, at most {MAX_RECURRENCE_STEPS:.0e}")
    c = float(N - 2 * x)
    k_prev, k_cur, log_scale = 1.0, c, 0.0
    for m in range(1, q):
        k_next = (c * k_cur - (N - m + 1) * k_prev) / (m + 1)
        k_prev, k_cur = k_cur, k_next
        big = abs(k_cur)
        if big > 1e150 or (0 < big < 1e-150):
            k_prev /= big
            k_cur /= big
            log_scale += math.log(big)
    if k_cur == 0.0:
        return 0, -math.inf
    return sign * (1 if k_cur > 0 else -1), log_scale + math.log(abs(k_cur))


def _log_comb(N: int, k: int) -> float:
    if k == 0 or k == N:
        return 0.0
    return -math.log(N + 1) - float(special.betaln(N - k + 1, k + 1))


def threshold_log_coefficient(n: int, degree: int, bias=0, n_negative: int = 0, *, strict: bool = False):
    """``(sign, log|f^(S)|)`` of ``f(x) = 1[w.x + b >= 0]`` for ``|S| = degree`` (natural log).

    ``n_negative`` is the number of ``j in S`` with ``w_j = -1``. ``sign`` is 0 (and the log
    ``-inf``) where the coefficient vanishes. Finite for any ``n`` that fits in memory as an int.
    """
    n, degree, n_negative = _validate(n, degree, bias, n_negative)
    t = threshold_count(n, bias, strict=strict)
    if degree == 0:
        if t < 0:
            return 0, -math.inf
        return 1, float(stats.binom.logcdf(min(t, n), n, 0.5))
    if t < 0 or t >= n:
        return 0, -math.inf
    N = n - 1
    s, log_k = _log_krawtchouk(degree - 1, t, N)
    if s == 0:
        return 0, -math.inf
    s *= -1 if n_negative % 2 else 1
    return s, log_k + _log_comb(N, t) - _log_comb(N, degree - 1) - n * math.log(2.0)


def threshold_coefficient(n: int, degree: int, bias=0, n_negative: int = 0, *, strict: bool = False, exact: bool = False):
    """Fourier coefficient of the threshold neuron ``x -> 1[w.x + b >= 0]`` on a set of size ``degree``.

    Parameters: ``n`` >= 1 input bits, ``0 <= degree <= n``, any real ``bias`` (a Fraction stays
    exact), ``n_negative`` = how many coordinates of the set have ``w_j = -1``. Returns a Fraction
    with ``exact=True``, else a float (which may underflow to 0.0 for very high degree; use
    :func:`threshold_log_coefficient` there).
    """
    if not exact:
        s, log_abs = threshold_log_coefficient(n, degree, bias, n_negative, strict=strict)
        return 0.0 if s == 0 else s * math.exp(log_abs)
    n, degree, n_negative = _validate(n, degree, bias, n_negative)
    t = threshold_count(n, bias, strict=strict)
    _check_exact_work(n, degree, max(min(t, n), 0))
    if degree == 0:
        t = min(t, n)
        return Fraction(sum(math.comb(n, j) for j in range(0, t + 1)), 2**n) if t >= 0 else Fraction(0)
    if t < 0 or t >= n:
        return Fraction(0)
    value = Fraction(_krawtchouk_exact(t, degree - 1, n - 1), 2**n)
    return -value if n_negative % 2 else value


def threshold_weight(n: int, degree: int, bias=0, *, strict: bool = False, exact: bool = False):
    """Fourier weight ``W^i = C(n, i) f^(i)^2`` of the threshold neuron at degree ``i``."""
    c = threshold_coefficient(n, degree, bias, strict=strict, exact=exact)
    if exact:
        return math.comb(n, degree) * c * c
    s, log_abs = threshold_log_coefficient(n, degree, bias, strict=strict)
    return 0.0 if s == 0 else math.exp(2 * log_abs + _log_comb(n, degree))


# --------------------------------------------------------------------------- Majority
def _majority_bias(n: int, tie: int):
    check_choice("tie", tie, (1, -1))
    # For |b| < 1, 2*1[sum + b >= 0] - 1 is Majority with ties broken to +1 (b = 0) or -1 (b < 0).
    return Fraction(0) if tie == 1 else Fraction(-1, 2)


def majority_coefficient(n: int, degree: int, *, tie: int = 1, exact: bool = False):
    """``Maj_n^(S)`` for ``|S| = degree``; even ``n`` breaks ties to ``tie`` (see module doc), or with
    ``tie = 0`` gives them the value 0 (``Maj = sign(sum x)``, ``sign(0) = 0``: the paper's definition; its
    even-degree coefficients vanish).

    Closed form for odd ``n`` and odd ``i``:
    ``(-1)^((i-1)/2) C((n-1)/2, (i-1)/2) / C(n-1, i-1) * C(n-1, (n-1)/2) 2^(1-n)``.
    """
    n = check_int("n", n, 1, MAX_FLOAT_N)
    degree = check_int("degree", degree, 0, n)
    check_choice("tie", tie, (1, -1, 0))
    if tie == 0:  # sign(0) = 0, the paper's Maj: the mean of the two tie-broken Majorities (equal for odd n)
        up, down = (majority_coefficient(n, degree, tie=t, exact=exact) for t in (1, -1))
        return (up + down) / 2
    b = _majority_bias(n, tie)
    if degree == 0 and not exact:
        # By symmetry of Bin(n, 1/2): E[Maj] = 0 for odd n and tie * P[sum x = 0] for even n.
        return 0.0 if n % 2 else tie * float(stats.binom.pmf(n // 2, n, 0.5))
    c = threshold_coefficient(n, degree, b, exact=exact)
    return 2 * c - 1 if degree == 0 else 2 * c


def majority_weight(n: int, degree: int, *, tie: int = 1, exact: bool = False):
    """Fourier weight ``W^i[Maj_n] = C(n, i) zeta_i^2``; sums to 1 over ``i`` (Parseval)."""
    if exact:
        return math.comb(n, degree) * majority_coefficient(n, degree, tie=tie, exact=True) ** 2
    if tie == 0:
        return math.comb(n, degree) * majority_coefficient(n, degree, tie=0) ** 2
    if degree == 0:
        return majority_coefficient(n, 0, tie=tie) ** 2
    return 4 * threshold_weight(n, degree, _majority_bias(n, tie))


def zeta(i: int, d: int, *, tie: int = 1, exact: bool = False):
    """``zeta_i(d) = E[Maj_d(x) chi_S(x)]`` with ``|S| = i`` (paper, Appendix B notation)."""
    d = check_int("d", d, 1)
    i = check_int("i", i, 0, d)
    return majority_coefficient(d, i, tie=tie, exact=exact)


def log_abs_zeta(i: int, d: int, *, tie: int = 1) -> tuple[int, float]:
    """``(sign, log|zeta_i(d)|)``: finite for d up to 10^6 and beyond."""
    d = check_int("d", d, 1)
    i = check_int("i", i, 0, d)
    if i == 0:
        z = majority_coefficient(d, 0, tie=tie)
        return (0, -math.inf) if z == 0 else (1 if z > 0 else -1, math.log(abs(z)))
    s, log_abs = threshold_log_coefficient(d, i, _majority_bias(d, tie))
    return s, log_abs + math.log(2.0)


__all__.append("log_abs_zeta")
