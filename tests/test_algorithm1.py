"""Algorithm 1's first stage in the engine against the exact prediction of theory (Lemma B.2)."""
import math
from fractions import Fraction

import numpy as np
import torch

from simulate.data import first_support, sparse_parity_batch
from simulate.model import forward, init_symmetric
from simulate.sgd import two_stage_train
from theory.algorithm1 import paper_hyperparameters
from theory.gradient import lemma_b2_corrected, stage_one_update


def test_stage_one_matches_population_update_within_hoeffding():
    d, k, m, B1, delta = 11, 2, 8, 400_000, 1e-6
    gen = torch.Generator().manual_seed(0)
    params = init_symmetric(1, m, d, k, 1, generator=gen, dtype=torch.float64)
    x0 = torch.randint(0, 2, (16, d), generator=gen).double() * 2 - 1
    assert torch.equal(forward(params, x0), torch.zeros(1, 16, 1, dtype=torch.float64))  # symmetric init
    W0, b0, a0 = params.W[0].clone(), params.b[0].clone(), params.a[0, 0].clone()
    hp = paper_hyperparameters(d, k, m)
    support = first_support(k)

    def sampler(n):
        x, _, label = sparse_parity_batch(n, d, support, generator=gen, dtype=torch.float64)
        return x, label

    two_stage_train(params, sampler, T1=1, T2=0, B1=B1, B2=1, eta1=hp["eta1"], eta2=0.0,
                    lambda1=hp["effective_lambda1"], loss="hinge")
    W1 = params.W[0].numpy()
    # Hoeffding + union bound over the d*m coordinates: each per-sample gradient lies in [-|a|, |a|]
    tol = hp["eta1"] * (1 / m) * math.sqrt(2 * math.log(2 * d * m / delta) / B1)
    for i in range(m):
        w0 = W0[i].numpy().astype(int)
        b = Fraction(float(b0[i])).limit_denominator(2 * k)
        expected = stage_one_update(w0, float(a0[i]), b, range(k), eta=hp["eta1"],
                                    weight_decay=hp["effective_lambda1"], relu_grad_at_zero=0)
        np.testing.assert_allclose(expected, lemma_b2_corrected(w0, float(a0[i]), range(k), d, k), atol=1e-12)
        assert np.abs(W1[i] - expected).max() <= tol, (i, np.abs(W1[i] - expected).max(), tol)
    # the in-support weights are 1/(2k) in magnitude, far outside the tolerance of 0
    assert np.abs(W1[:, :k]).min() > 0.25 - tol > 10 * tol


def test_two_stage_defaults_come_from_theory(monkeypatch):
    """Left unset, B1, eta1, lambda1 and eta2 are the paper's values of theory.algorithm1."""
    import simulate.sgd as sgd

    d, k, m = 11, 2, 8
    gen = torch.Generator().manual_seed(1)
    params = init_symmetric(1, m, d, k, 1, generator=gen, dtype=torch.float64)
    calls = []
    monkeypatch.setattr(sgd, "train_sgd", lambda p, s, steps, eta, **kw: calls.append((steps, eta, kw)))
    import simulate.blocked as blocked

    monkeypatch.setattr(blocked, "train_online", lambda p, s, steps, eta, **kw: calls.append((steps, eta, kw)))
    sgd.two_stage_train(params, None, T2=100, k=k)
    hp = paper_hyperparameters(d, k, m, T2=100)
    (s1, eta1, kw1), (s2, eta2, kw2) = calls
    assert (s1, eta1, kw1["batch_size"], kw1["weight_decay_W"]) == (1, hp["eta1"], hp["B1"], hp["effective_lambda1"])
    assert (s2, eta2) == (100, hp["eta2"])
    import pytest

    from theory import ParameterError

    with pytest.raises(ParameterError, match="k"):
        sgd.two_stage_train(params, None, T2=100)
