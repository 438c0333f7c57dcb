"""Claim B.3 / Lemma B.2 against exact enumeration and a torch autograd Monte Carlo estimate."""
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from theory import ParameterError
from theory.fourier import cube, zeta
from theory.gradient import (
    gradient_magnitudes,
    lemma_b2_corrected,
    paper_gradient_magnitudes,
    population_gradient,
    stage_one_update,
)


def brute_force_gradient(w, b, support, a, relu_grad_at_zero):
    """E_x[-y a sigma'(w.x + b) x_j] by enumerating {+-1}^d (network output 0 at init)."""
    x = cube(len(w)).astype(np.int64)
    z = x @ np.asarray(w) + b
    fire = (z > 0) | ((z == 0) & (relu_grad_at_zero == 1))
    y = np.prod(x[:, list(support)], axis=1)
    per_sample = -(y * fire)[:, None] * x
    return [a * Fraction(int(s), 2 ** len(w)) for s in per_sample.sum(0)]


@pytest.mark.parametrize("d", range(2, 13))
def test_population_gradient_equals_enumeration(d):
    rng = np.random.default_rng(100 + d)
    for trial in range(4):
        k = int(rng.integers(1, d))
        support = rng.choice(d, size=k, replace=False).tolist()
        w = rng.choice([-1, 1], size=d)
        b = Fraction(int(rng.integers(1, 2 * k)), k) - 1  # the paper's grid -1+1/k, ..., 1-1/k
        a = Fraction(1, 7) * (1 if trial % 2 else -1)
        for g0 in (0, 1):
            exact = population_gradient(w, b, support, a=a, relu_grad_at_zero=g0, exact=True)
            assert exact == brute_force_gradient(w, b, support, a, g0), (d, k, b, g0)


def test_population_gradient_matches_autograd_monte_carlo():
    """d = 30: autograd on a symmetric pair of neurons (output 0) with hinge loss, N samples.

    Each sample's gradient coordinate lies in [-|a|, |a|], so by Hoeffding and a union bound over
    the d coordinates, |mean - E| <= |a| sqrt(2 log(2 d / delta) / N) with probability 1 - delta.
    """
    d, k, N, delta = 30, 2, 400_000, 1e-6
    gen = torch.Generator().manual_seed(0)
    w0 = (torch.randint(0, 2, (d,), generator=gen) * 2 - 1).to(torch.float64)
    b, a = 0.5, 1.0
    support = [3, 17]
    w = w0.clone().requires_grad_(True)
    w_mirror = w0.clone()
    x = (torch.randint(0, 2, (N, d), generator=gen) * 2 - 1).to(torch.float64)
    y = x[:, support].prod(dim=1)
    f = a * torch.relu(x @ w + b) - a * torch.relu(x @ w_mirror + b)  # exactly 0, as at symmetric init
    loss = torch.relu(1 - y * f).mean()
    loss.backward()
    expected = population_gradient(w0.numpy(), b, support, a=a, relu_grad_at_zero=0)
    tol = abs(a) * math.sqrt(2 * math.log(2 * d / delta) / N)
    err = np.abs(w.grad.numpy() - expected)
    assert err.max() <= tol, (err.max(), tol)
    # the estimate resolves the in-support signal, so a wrong sign or magnitude would fail
    assert np.abs(expected[support]).min() > 5 * tol


@pytest.mark.parametrize("d", [7, 21, 101])
@pytest.mark.parametrize("k", [2, 4, 6])
def test_odd_d_matches_paper_magnitudes(d, k):
    exact = gradient_magnitudes(d, k, Fraction(1, 3), exact=True)
    paper = paper_gradient_magnitudes(d, k, exact=True)
    assert exact == paper


def test_even_d_depends_on_tie_rule():
    # d even, b = 0, k odd: zeta_{k-1} has even degree; the tie rule decides the signal
    with_tie = gradient_magnitudes(10, 3, 0, relu_grad_at_zero=1, exact=True)
    without = gradient_magnitudes(10, 3, 0, relu_grad_at_zero=0, exact=True)
    assert with_tie["in_support"] == without["in_support"] != 0
    assert paper_gradient_magnitudes(10, 3, exact=True)["in_support"] == with_tie["in_support"]
    assert gradient_magnitudes(11, 3, 0, exact=True)["in_support"] == 0


def test_stage_one_update_gives_corrected_lemma_b2_centres():
    d, k, m = 21, 4, 16
    rng = np.random.default_rng(5)
    from theory.algorithm1 import paper_hyperparameters

    hp = paper_hyperparameters(d, k, m)
    for _ in range(5):
        w0 = rng.choice([-1, 1], size=d)
        a0 = rng.choice([-1, 1]) / m
        b = Fraction(int(rng.integers(1, 2 * k)), k) - 1
        w1 = stage_one_update(w0, a0, b, range(k), eta=hp["eta1"], weight_decay=hp["effective_lambda1"])
        np.testing.assert_allclose(w1, lemma_b2_corrected(w0, a0, range(k), d, k), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(np.abs(w1[:k]), 1 / (2 * k), rtol=1e-9)


def test_bad_input():
    with pytest.raises(ParameterError, match="support"):
        population_gradient([1, -1, 1], 0, [0, 5])
    with pytest.raises(ParameterError, match="k must"):
        gradient_magnitudes(5, 5)


def test_stage_one_pair_correlations_cancel_over_initial_signs():
    """Lemma B.5's per-pair correlation is >= 1/(8k) in size but its sign is chi_{S-j}(w0): the mean
    over the in-support initial sign patterns is exactly 0 (ERRATA item 9)."""
    import itertools

    from theory.gradient import stage_one_pair_correlations

    d, k, b = 9, 2, 0.5
    values = []
    for pattern in itertools.product([-1, 1], repeat=k):
        w0 = np.ones(d)
        w0[:k] = pattern
        c = stage_one_pair_correlations(w0, 1.0, b, range(k), d, k)
        assert abs(c[0]) >= 1 / (8 * k)
        # the sign is sign(a) sign(zeta_{k-1}) chi_{S-j}(w0), here with a = 1 and j = 0
        assert np.sign(c[0]) == np.sign(zeta(k - 1, d)) * np.prod(pattern[1:])
        values.append(c[0])
    assert abs(np.mean(values)) < 1e-12 and max(values) > 0 > min(values)
