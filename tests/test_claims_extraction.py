"""The Curriculum Extraction claims of the ledger (experiments.claims.extraction_claims): Figure 2's closed-form
spread against Monte Carlo over A and brute force over x, the decision rules on planted spreads, teachers and
intervals, the quotes on their lines, and the smoke tier end to end."""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from experiments.claims import load_claims
from experiments.claims.extraction_claims import (
    BAND, FACTOR, _ratios, closed_form_spread, hidden_coefficients, pearson_draws, separation, similar_verdict,
    spread_verdict,
)
from simulate import data as D
from simulate.extraction import projected_targets, projection, projection_correlations
from simulate.model import MLPParams, init_default

pytestmark = pytest.mark.usefixtures("one_thread")
PAPERS = Path(__file__).resolve().parents[2] / "shared" / "papers"
IDS = ("ex-f2-support-spread", "ex-f3a-beats-oneshot", "ex-similar-to-progressive")


def _teacher(d=8, m=48, runs=2, seed=0) -> MLPParams:
    return init_default(runs, m, d, 2, generator=torch.Generator().manual_seed(seed))


def _symmetric_teacher(d: int, support_weight: float, k: int = 2) -> MLPParams:
    """Rows of W: all 2^d sign vectors (a set invariant under permuting coordinates), bias 0.5; the first k
    coordinates' weights multiplied by ``support_weight``. With 1 every coordinate has the same spread."""
    W = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=d)))
    W[:, :k] *= support_weight
    m = len(W)
    return MLPParams(W[None], torch.full((1, m), 0.5), torch.zeros(1, 2, m))


# ------------------------------------------------------------------ Figure 2: exact and closed form

def test_hidden_coefficients_equal_brute_force_over_the_cube():
    t = _teacher(d=6, m=10)
    got = hidden_coefficients(t, 6)
    W, b = t.W.double().numpy(), t.b.double().numpy()
    want = np.zeros((2, 10, 6))
    for x in itertools.product([-1.0, 1.0], repeat=6):
        x = np.array(x)
        h = np.maximum(W @ x + b, 0)                                   # (R, m)
        want += h[:, :, None] * x[None, None, :]
    np.testing.assert_allclose(got.numpy(), want / 64, rtol=1e-12, atol=1e-14)


def test_closed_form_spread_matches_monte_carlo_over_A():
    """A c_j ~ N(0, sigma_j^2) with sigma_j = s ||c_j|| / sqrt(m_t), so sum_a (A_a c_j)^2 / sigma_j^2 over n draws
    is chi^2_n; Laurent & Massart (2000): P(|chi^2_n / n - 1| >= 2 sqrt(x/n) + 2x/n) <= 2 e^-x. With x = 20 and a
    union over the 2 x 8 (run, coordinate) pairs, a correct closed form fails with probability <= 32 e^-20."""
    t, scale, n, x = _teacher(), 1.5, 4000, 20.0
    coef = hidden_coefficients(t, 8)
    sigma = closed_form_spread(coef, scale)                            # (R, d)
    proj = projection((0, 1), n, 48, scale=scale, projection_seed=7, dtype=torch.float64)  # the engine's A, (R, n, m_t)
    second = torch.einsum("ram,rmd->rad", proj, coef).pow(2).mean(1)  # (R, d)
    tol = 2 * math.sqrt(x / n) + 2 * x / n                             # 0.151
    assert float((second / sigma**2 - 1).abs().max()) < tol
    # the test can fail: a closed form without the projection's scale is off by s^2 = 2.25
    assert float((second / closed_form_spread(coef) ** 2 - 1).abs().min()) > tol


def test_monte_carlo_coefficients_are_unbiased_in_the_squared_norm():
    """Over x: E||c^_j||^2 = ||c_j||^2 + (E||h||^2 - ||c_j||^2) / n; the estimator removes that bias. Over 400
    independent estimates from n = 64 inputs, the mean of the corrected ||c^_j||^2 is within 4 standard errors of
    the exact value, while the plain one's bias exceeds 4 standard errors (the test tells them apart)."""
    t, n, reps = _teacher(d=6, m=16, runs=1, seed=3), 64, 400
    exact = hidden_coefficients(t, 6).pow(2).sum(1)[0]                 # (d,)
    fixed, plain = [], []
    for r in range(reps):
        fixed.append(hidden_coefficients(t, 6, n_samples=n, generator=torch.Generator().manual_seed(r)).pow(2).sum(1)[0])
        g = torch.Generator().manual_seed(r)
        x = D.sample_cube(n, 6, generator=g).double()
        h = torch.relu(x @ t.W[0].double().T + t.b[0].double())
        plain.append((h.T @ x / n).pow(2).sum(0))
    fixed, plain = torch.stack(fixed), torch.stack(plain)
    se = fixed.std(0) / math.sqrt(reps)
    assert bool(((fixed.mean(0) - exact).abs() < 4 * se).all()), (fixed.mean(0), exact, se)
    assert bool(((plain.mean(0) - exact) > 4 * plain.std(0) / math.sqrt(reps)).all())


def test_pearson_draws_are_exact_over_the_cube_and_agree_with_the_engines_probe():
    t = _teacher()
    proj = projection((0, 1), 6, 48, projection_seed=2, dtype=torch.float64)
    got = pearson_draws(t, proj, 8)
    x = D.full_cube(8).double()
    z = projected_targets(MLPParams(*(v.double() for v in (t.W, t.b, t.a))), proj, x.expand(2, -1, -1))
    want = torch.einsum("rna,nd->rad", z - z.mean(1, keepdim=True), x) / len(x) / z.std(1, unbiased=False)[..., None]
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    mc = projection_correlations(t, proj.float(), 8, generator=torch.Generator().manual_seed(0), n_samples=40000)
    assert float((mc.double() - got).abs().max()) < 5 / math.sqrt(40000)  # a sample correlation's error <= 1/sqrt(n)


# ------------------------------------------------------------------ the rules on planted data

def test_spread_rule_on_planted_separations():
    spread = np.array([[3.0, 4.0, 1.0, 1.5], [2.0, 2.0, 1.0, 0.5]])
    np.testing.assert_allclose(separation(spread, [0, 1]), [2.0, 2.0])
    assert spread_verdict([2.0, 3.7])[0] == "PASS" and FACTOR == 2.0
    assert spread_verdict([3.0, 0.9, 5.0])[0] == "FAIL"               # one teacher not separated
    assert spread_verdict([1.0, 4.0])[0] == "FAIL"
    verdict, why = spread_verdict([3.0, 1.5])
    assert verdict == "INCONCLUSIVE" and "1.5" in why


def test_spread_rule_on_planted_teachers():
    """A teacher whose rows are every sign vector spreads alike on every coordinate (separation 1); weighting the
    support 3x is a planted effect (PASS), 0.9x a planted reversal (FAIL)."""
    spreads = {w: closed_form_spread(hidden_coefficients(_symmetric_teacher(6, w), 6)).numpy() for w in (1.0, 3.0, 0.9)}
    assert separation(spreads[1.0], [0, 1])[0] == pytest.approx(1.0, rel=1e-12)
    assert np.ptp(spreads[1.0]) < 1e-12
    sep_up, sep_down = separation(spreads[3.0], [0, 1]), separation(spreads[0.9], [0, 1])
    assert sep_up[0] > FACTOR and spread_verdict(sep_up)[0] == "PASS"
    assert sep_down[0] < 1 and spread_verdict(sep_down)[0] == "FAIL"


def test_similar_rule_on_planted_intervals():
    assert BAND == 2.0
    assert similar_verdict(0.7, 1.4)[0] == "PASS"
    assert similar_verdict(0.5, 2.0)[0] == "PASS"                      # the band's ends are inside
    assert similar_verdict(0.1, 0.45)[0] == "FAIL"                     # extraction over 2x slower
    assert similar_verdict(2.5, 4.0)[0] == "FAIL"                      # over 2x faster: not "similar" either
    assert similar_verdict(0.4, 1.2)[0] == "INCONCLUSIVE"
    assert similar_verdict(float("nan"), 1.0)[0] == "INCONCLUSIVE"


def test_ratios_on_planted_runs():
    rng = np.random.default_rng(0)
    one = 10000 * np.exp(rng.normal(0, 0.1, 15))
    wide = pd.DataFrame({"oneshot": one, "two-shot": one / 1.5, "extraction": one / 2, "extraction-T": one})
    t = _ratios(wide).set_index(["baseline", "student"])
    assert t.loc[("oneshot", "extraction"), "ratio"] == pytest.approx(2.0)
    assert t.loc[("oneshot", "extraction"), "ci_lo"] == pytest.approx(2.0)   # paired: no spread
    assert t.loc[("two-shot", "extraction"), "ratio"] == pytest.approx(4 / 3)
    assert t.loc[("oneshot", "extraction-T"), "ratio"] == pytest.approx(1.0)


# ------------------------------------------------------------------ registry and end to end

@pytest.mark.skipif(not PAPERS.is_dir(), reason="../shared/papers is not beside this checkout")
def test_quotes_are_on_their_lines():
    claims = load_claims()
    for cid in IDS:
        c = claims[cid]
        assert c.source.paper == "extraction" and c.source.file == "003_f312e8397793c6ce.txt"
        line = " ".join((PAPERS / c.source.file).read_text().splitlines()[c.source.line - 1].split())
        assert " ".join(c.source.quote.split()) in line, cid


def test_paper_tier_configs_are_valid():
    """The paper tier is never run here, but its configs must construct (a GPU job)."""
    from simulate.config import StudentConfig, TeacherConfig
    from experiments.claims.extraction_claims import _F2, _F3

    p = _F3["paper"]
    TeacherConfig(d=p["d"], k=p["k"], width=p["tw"], steps=p["tsteps"], lr=p["tlr"], lr_a_mult=p["lr_a_mult"],
                  eval_every=p["every"], checkpoint_every=p["every"], probe_every=0, seeds=p["tseeds"], device="cpu")
    StudentConfig(strategy="extraction", width=p["sw"], steps=p["ssteps"], lr=p["lr"], eval_every=p["every"],
                  probe_every=0, stage_steps=p["T"], extract_steps=4 * p["T"], seeds=p["sseeds"], device="cpu")
    q = _F2["paper"]
    TeacherConfig(d=q["d"], k=q["k"], width=q["width"], steps=q["steps"], lr=q["lr"], lr_a_mult=q["lr_a_mult"],
                  eval_every=q["every"], checkpoint_every=q["steps"], probe_every=0, seeds=q["seeds"], device="cpu")


@pytest.mark.slow
def test_smoke_tier_runs_and_the_second_claim_reuses_the_first_ones_runs(tmp_path):
    claims = load_claims()
    runs = tmp_path / "runs"
    f2 = claims["ex-f2-support-spread"].run("smoke", runs / "ex-f2-support-spread")
    assert f2.verdict in ("PASS", "FAIL", "INCONCLUSIVE") and len(f2.numbers["separation"]) == 1
    tab = f2.table
    assert len(tab) == 10 and tab["in_support"].sum() == 4
    # the closed form against the 128 draws of A: chi^2_127 / 127 within 2 sqrt(20/127) + 40/127 of 1
    ratio = (tab["spread_mc"] / tab["spread"]) ** 2
    assert float((ratio - 1).abs().max()) < 2 * math.sqrt(20 / 127) + 40 / 127
    f2.figure(tmp_path / "f2.png")
    assert (tmp_path / "f2.png").stat().st_size > 0
    a = claims["ex-f3a-beats-oneshot"].run("smoke", runs / "ex-f3a-beats-oneshot")
    before = sorted(p.name for p in (runs / "ex-f3a-beats-oneshot" / "students").iterdir())
    assert len(before) == 4                                            # oneshot, two-shot, extraction at 4T and T
    b = claims["ex-similar-to-progressive"].run("smoke", runs / "ex-similar-to-progressive")
    assert sorted(p.name for p in (runs / "ex-f3a-beats-oneshot" / "students").iterdir()) == before
    assert not (runs / "ex-similar-to-progressive").exists()
    assert a.numbers["ratios"] == b.numbers["ratios"] and len(a.numbers["ratios"]) == 4
    b.figure(tmp_path / "f3.png")
    assert (tmp_path / "f3.png").stat().st_size > 0
