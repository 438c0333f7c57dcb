r"""Population gradient of a ReLU neuron at symmetric initialization (Claim B.3) and the
first-stage update of Algorithm 1 (Lemma B.2).

Setting: inputs uniform on {+-1}^d, target ``y = chi_S(x)``, one hidden neuron
``a * sigma(w.x + b)`` of a network whose output is 0 at the symmetric initialization, so the
correlation loss ``-y f`` and the hinge loss ``max(0, 1 - y f)`` have the same gradient there:
``grad_{w_j} loss = -y * a * sigma'(w.x + b) * x_j``. With ``T = S xor {j}`` and the threshold
neuron ``g = sigma'(w.x + b) = 1[w.x + b >= 0]`` (see :mod:`theory.fourier`),

    E[grad_{w_j} loss] = -a * g^(T) = -a * chi_T(w) * c_{|T|}(d, b),

``|T| = k - 1`` for ``j in S`` and ``k + 1`` for ``j not in S``. For odd ``d`` and ``|b| < 1``,
``c_i = zeta_i / 2`` (Majority), which is the paper's Claim B.3 up to its sign; see ERRATA.md.
Convention for the ReLU derivative at 0: ``relu_grad_at_zero = 1`` is the paper's ``1[. >= 0]``,
``0`` is PyTorch's. It matters only when ``w.x + b = 0`` is possible (even ``d`` and ``b = 0``).
Gradients are in the units of ``a`` (per unit output weight: ``a = 1``).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

from ._checks import ParameterError, check_choice, check_int, check_real
from .fourier import threshold_coefficient, zeta

__all__ = [
    "population_gradient",
    "gradient_magnitudes",
    "paper_gradient_magnitudes",
    "stage_one_update",
    "lemma_b2_stated",
    "lemma_b2_corrected",
]


def _support_mask(support, d: int) -> np.ndarray:
    idx = np.asarray(list(support), dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= d):
        raise ParameterError(f"support indices must lie in [0, {d - 1}], got {sorted(idx.tolist())}")
    if len(set(idx.tolist())) != idx.size:
        raise ParameterError(f"support indices must be distinct, got {sorted(idx.tolist())}")
    mask = np.zeros(d, dtype=bool)
    mask[idx] = True
    return mask


def population_gradient(
    w, bias, support, *, a=1, loss: str = "hinge", relu_grad_at_zero: int = 1, exact: bool = False
):
    """Exact ``E_x[d loss / d w_j]`` for every ``j``, at a zero network output (Claim B.3).

    ``w``: shape ``(d,)`` with entries +-1; ``bias``: real; ``support``: the indices of ``S``
    (0-based); ``a``: the neuron's output weight; ``loss``: ``"hinge"`` (``max(0, 1 - y f)``) or
    ``"correlation"`` (``-y f``), equal at ``f = 0``. Returns a float array ``(d,)`` or, with
    ``exact=True``, a list of Fractions (then ``a`` and ``bias`` should be ints/Fractions).
    """
    check_choice("loss", loss, ("hinge", "correlation"))
    w = np.asarray(w)
    if w.ndim != 1 or not np.all(np.abs(w) == 1):
        raise ParameterError("w must be a vector with entries +-1")
    d = w.size
    check_real("bias", bias)
    check_choice("relu_grad_at_zero", relu_grad_at_zero, (0, 1))
    mask = _support_mask(support, d)
    k = int(mask.sum())
    strict = relu_grad_at_zero == 0
    neg = w < 0
    n_neg_S = int(np.sum(neg & mask))
    coef = {
        deg: threshold_coefficient(d, deg, bias, strict=strict, exact=exact)
        for deg in {max(k - 1, 0), min(k + 1, d)}
    }
    out = []
    for j in range(d):
        if mask[j]:
            size, n_neg = k - 1, n_neg_S - int(neg[j])
        else:
            size, n_neg = k + 1, n_neg_S + int(neg[j])
        c = coef[size]
        sign = -1 if n_neg % 2 else 1
        out.append(-a * sign * c)
    return out if exact else np.asarray(out, dtype=np.float64)


def gradient_magnitudes(d: int, k: int, bias=0, *, relu_grad_at_zero: int = 1, exact: bool = False) -> dict:
    """``|E grad_{w_j}|`` per unit ``|a|`` for ``j`` in and off the support: ``|c_{k-1}|, |c_{k+1}|``.

    They do not depend on ``w`` (only the signs do). Off-support needs ``k < d``.
    """
    d = check_int("d", d, 2)
    k = check_int("k", k, 1, d - 1)
    check_real("bias", bias)
    strict = check_choice("relu_grad_at_zero", relu_grad_at_zero, (0, 1)) == 0
    return {
        "in_support": abs(threshold_coefficient(d, k - 1, bias, strict=strict, exact=exact)),
        "off_support": abs(threshold_coefficient(d, k + 1, bias, strict=strict, exact=exact)),
    }


def paper_gradient_magnitudes(d: int, k: int, *, exact: bool = False) -> dict:
    """Claim B.3 as stated: ``|zeta_{k-1}| / 2`` in support and ``|zeta_{k+1}| / 2`` off support."""
    d = check_int("d", d, 2)
    k = check_int("k", k, 1, d - 1)
    half = Fraction(1, 2) if exact else 0.5
    return {
        "in_support": half * abs(zeta(k - 1, d, exact=exact)),
        "off_support": half * abs(zeta(k + 1, d, exact=exact)),
    }


def stage_one_update(w0, a0, bias, support, *, eta, weight_decay, relu_grad_at_zero: int = 1):
    """Expected first-layer weights after one population step of stage 1 (Algorithm 1).

    ``w1 = w0 - eta * (E[grad_w loss] + 2 * weight_decay * w0)`` for one neuron, with the
    ``lambda ||w||^2`` penalty of Algorithm 1. With an infinite batch this is exact; with batch
    ``B`` each coordinate deviates by at most ``eta * |a0| * sqrt(2 log(2 d / delta) / B)``
    with probability ``1 - delta`` (Hoeffding; each sample's gradient lies in ``[-|a0|, |a0|]``).
    """
    g = population_gradient(w0, bias, support, a=a0, relu_grad_at_zero=relu_grad_at_zero)
    w0 = np.asarray(w0, dtype=np.float64)
    return w0 - eta * (g + 2 * weight_decay * w0)


def lemma_b2_stated(w0, a0, support, d: int, k: int) -> np.ndarray:
    """Lemma B.2's centres as printed: ``sign(a) zeta_{k-1} chi_{S-j}(w) / (2k)`` in support,
    ``zeta_{k+1} sign(a) chi_{S+j}(w) / (2k |zeta_{k-1}|)`` off support."""
    return _lemma_b2(w0, a0, support, d, k, divide_in_support=False)


def lemma_b2_corrected(w0, a0, support, d: int, k: int) -> np.ndarray:
    """What one population step gives with ``eta_1 = m / (k |zeta_{k-1}|)``, ``a = +-1/m`` and
    ``2 eta_1 lambda_1 = 1`` (odd ``d``): ``sign(a) sign(zeta_{k-1}) chi_{S-j}(w) / (2k)`` in
    support (magnitude ``1/(2k)``, as Lemma B.5 uses), off support as stated."""
    return _lemma_b2(w0, a0, support, d, k, divide_in_support=True)


def _lemma_b2(w0, a0, support, d, k, *, divide_in_support):
    w0 = np.asarray(w0, dtype=np.float64)
    mask = _support_mask(support, d)
    zkm1, zkp1 = zeta(k - 1, d), zeta(k + 1, d)
    sgn_a = np.sign(a0)
    chi_S = np.prod(w0[mask])
    out = np.empty(d)
    for j in range(d):
        if mask[j]:
            chi = chi_S * w0[j]  # chi_{S - j}(w), since w_j^2 = 1
            top = zkm1 / abs(zkm1) if divide_in_support else zkm1
            out[j] = sgn_a * top * chi / (2 * k)
        else:
            chi = chi_S * w0[j]
            out[j] = zkp1 * sgn_a * chi / (2 * k * abs(zkm1))
    return out


def stage_one_pair_correlations(w0, a0, bias, support, d: int, k: int) -> np.ndarray:
    """``E_x[f_pair(x) x_j]`` for every ``j`` (shape ``(d,)``), by enumeration of {+-1}^d (``d <= 20``).

    ``f_pair = a0 relu(w1.x + b) - a0 relu(w1'.x + b)`` is a mirrored pair of the symmetric
    initialization after the population stage-1 step with ``2 eta_1 lambda_1 = 1`` (so ``w1' = -w1``,
    :func:`lemma_b2_corrected`); ``a0 = +-1/m``. This is the quantity Lemma B.5 bounds below by
    ``1/(8k)`` (times ``|a0|``) for ``i in S``, see ERRATA.md.
    """
    from .fourier import cube

    w1 = lemma_b2_corrected(w0, a0, support, d, k)
    x = cube(d).astype(np.float64)
    z = x @ w1
    f = a0 * (np.maximum(z + float(bias), 0) - np.maximum(-z + float(bias), 0))
    return (f[:, None] * x).mean(0)


__all__.append("stage_one_pair_correlations")
