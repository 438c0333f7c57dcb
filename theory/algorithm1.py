"""Hyper-parameters of the two-stage training of Algorithm 1 as the paper sets them.

Lemma B.2: ``eta_1 = m / (k |zeta_{k-1}|)``, ``lambda_1 = 1``, one step (``T_1 = 1``) with batch
``B_1 >= tau_g^-2 log(m d / delta)``; Lemma B.7: ``tau_g = |zeta_{k-1}| / k``,
``eta_2 = 4 k^1.5 / (d sqrt(m (T_2 - 1)))``, ``lambda_2 = 0``, ``B_2 = 1``.

The printed ``lambda_1 = 1`` does not remove ``w^(0)`` (the step is
``w1 = (1 - 2 eta_1 lambda_1) w0 - eta_1 grad``); Lemma B.2's centres need ``2 eta_1 lambda_1 = 1``,
which is what ``effective_lambda1`` gives (see ERRATA.md). Constants of the Omega's are 1.
"""
from __future__ import annotations

import math

from ._checks import check_int, check_real
from .fourier import zeta

__all__ = ["paper_hyperparameters"]


def paper_hyperparameters(d: int, k: int, width: int, *, T2: int = 1000, delta: float = 0.01) -> dict:
    """``eta1, lambda1, effective_lambda1, B1, tau_g, eta2, lambda2, B2`` for a width-``m`` network."""
    d = check_int("d", d, 2)
    k = check_int("k", k, 1, d - 1)
    m = check_int("width", width, 2)
    T2 = check_int("T2", T2, 2)
    check_real("delta", delta, 0, 1, lo_open=True, hi_open=True)
    z = abs(zeta(k - 1, d))
    if z == 0:
        raise ValueError(
            f"zeta_{k - 1}({d}) = 0: Algorithm 1's eta_1 = m/(k |zeta_(k-1)|) is undefined "
            "(odd k with odd d); use an even k"
        )
    eta1 = m / (k * z)
    tau_g = z / k
    return {
        "eta1": eta1,
        "lambda1": 1.0,
        "effective_lambda1": 1 / (2 * eta1),
        "tau_g": tau_g,
        "B1": math.ceil(tau_g**-2 * math.log(m * d / delta)),
        "eta2": 4 * k**1.5 / (d * math.sqrt(m * (T2 - 1))),
        "lambda2": 0.0,
        "B2": 1,
    }
