"""The curriculum figure (Figure 2 middle, Figure 9): the probe summary's ``corr{g}_in_max`` and
Monte Carlo standard error ``corr{g}_se``, the seed spread of :func:`reports.data.teacher_curves`, the
panels of :func:`reports.figures.plot_curriculum` and the section text of :mod:`reports.build`."""
from __future__ import annotations

import itertools
import math

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import chi2

from reports import data as D
from reports import figures as F
from reports.build import _curriculum_text
from simulate.probes import probe, probe_summary


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def scalar_fn(f):
    """A one-run model with scalar output (C = 1, so ``p = f``): ``x (N, d) -> (1, N, 1)``."""
    return lambda x: f(x)[None, :, None]


SIGNS = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0])


def planted(x: torch.Tensor) -> torch.Tensor:
    """``f = 1 + 0.3 sum_j s_j x_j + 0.2 x_0 x_1 x_2`` on ``{+-1}^5``: ``E[f x_j] = 0.3 s_j`` and, for every
    ``j``, ``Var(f x_j) = E f^2 - 0.09 = 1 + 5 (0.09) + 0.04 - 0.09 = 1.4``."""
    return 1 + 0.3 * (x * SIGNS).sum(1) + 0.2 * x[:, 0] * x[:, 1] * x[:, 2]


def test_mc_standard_error_matches_the_spread_of_repeated_probes():
    # K independent MC probes of N points each. Each estimate of E[f x_j] is a mean of N bounded
    # i.i.d. terms, normal to within Berry-Esseen at N = 2000, with SD sigma = sqrt(1.4 / N) = 0.026;
    # |E f x_j| = 0.3 is 11 sigma from 0, so the absolute value changes nothing. For normal estimates
    # (K - 1) s^2 / sigma^2 ~ chi2(K - 1): s / sigma lies in [sqrt(q(a) / (K-1)), sqrt(q(1-a) / (K-1))]
    # with probability 1 - 2a (a = 1e-4 per coordinate). The logged SE estimates sigma from the
    # probe's own points; its mean over K probes is within ~1% of sigma, inside that interval's slack.
    K, N, a = 300, 2000, 1e-4
    lo, hi = math.sqrt(chi2.ppf(a, K - 1) / (K - 1)), math.sqrt(chi2.ppf(1 - a, K - 1) / (K - 1))
    assert 1 / math.sqrt(2) < lo < hi < math.sqrt(2)  # a sqrt(n) or factor-2 variance slip would fail
    corr, se = [], []
    for rep in range(K):
        res = probe(scalar_fn(planted), 5, [0, 1, 2], generator=gen(rep), degrees=(1,), method="mc",
                    n_samples=N, chunk_size=512)
        s = probe_summary(res)
        assert torch.equal(s["corr1_se"], res.se[1].max(dim=1).values)  # the largest over the monomials
        corr.append(res.corr[1][0].numpy())
        se.append(float(s["corr1_se"][0]))
    corr, se = np.array(corr), np.array(se)
    sigma = math.sqrt(1.4 / N)
    assert np.mean(se) == pytest.approx(sigma, rel=0.02)  # the SE estimate itself
    np.testing.assert_allclose(corr.mean(0), 0.3, atol=5 * sigma / math.sqrt(K))
    ratio = corr.std(0, ddof=1) / np.mean(se)
    assert ((lo <= ratio) & (ratio <= hi)).all(), (ratio, lo, hi)


def test_exact_probe_has_zero_se_and_in_max_is_the_brute_force_max():
    d, support = 6, [1, 3, 4]

    def f(x):
        z = 2 * x[:, 1] - x[:, 3] + 0.5 * x[:, 1] * x[:, 4] + 0.25 * x[:, 0] + 0.75 * x[:, 3] * x[:, 4] * x[:, 1]
        return torch.sigmoid(z)

    res = probe(scalar_fn(f), d, support, generator=gen(0), method="exact", n_off=500)
    s = probe_summary(res)
    cube = torch.tensor(list(itertools.product([1.0, -1.0], repeat=d)))
    p = f(cube).double()
    for g in (1, 2, 3):
        assert float(s[f"corr{g}_se"][0]) == 0.0
        ins = [U for U in itertools.combinations(range(d), g) if set(U) <= set(support)]
        offs = [U for U in itertools.combinations(range(d), g) if not set(U) <= set(support)]

        def corr(U):
            return float((p * cube[:, list(U)].double().prod(1)).mean().abs())

        assert float(s[f"corr{g}_in_max"][0]) == pytest.approx(max(map(corr, ins)), abs=1e-6)
        assert float(s[f"corr{g}_off_max"][0]) == pytest.approx(max(map(corr, offs)), abs=1e-6)
        assert float(s[f"corr{g}_in_mean"][0]) == pytest.approx(np.mean(list(map(corr, ins))), abs=1e-6)
        assert float(s[f"corr{g}_gap"][0]) == pytest.approx(float(s[f"corr{g}_in_mean"][0] - s[f"corr{g}_off_max"][0]))
    assert float(s["corr1_in_max"][0]) > 0.1  # not a comparison of zeros


# ----------------------------------------------------------------------------- report data and figure

def teacher_log(seeds=(0, 1, 2), degrees=(1, 2, 3), *, width=64, se=0.004, with_new=True) -> pd.DataFrame:
    """Planted teacher metrics: the in-support mean peaks at step 400 at 0.1 g + 0.01 seed; the
    off-support mean stays at 0.01; maxima are means + 0.02; probes every 200 steps, accuracy every 100."""
    rows = []
    for seed in seeds:
        for step in range(0, 1001, 100):
            row = {"kind": "teacher", "run_hash": f"h{width}{seed}", "run": 0, "seed": seed, "d": 12, "k": 3,
                   "width": width, "step": step, "samples": step, "test_accuracy": min(1.0, 0.5 + step / 1000)}
            if step % 200 == 0:
                for g in degrees:
                    bump = (0.1 * g + 0.01 * seed) * (step == 400)
                    row.update({f"corr{g}_in_mean": 0.01 + bump, f"corr{g}_off_mean": 0.01,
                                f"corr{g}_off_max": 0.03, f"corr{g}_in_min": 0.0, f"corr{g}_gap": bump - 0.02})
                    if with_new:
                        row.update({f"corr{g}_in_max": 0.03 + bump, f"corr{g}_se": se * (1 + seed)})
            rows.append(row)
    return pd.DataFrame(rows)


def test_teacher_curves_spread_over_seeds_per_degree():
    curves = D.teacher_curves(D.teacher_rows(teacher_log()))
    assert D.probed_degrees(curves) == [1, 2, 3]
    at = curves.set_index("step").loc[400]
    for g in (1, 2, 3):
        assert at[f"corr{g}_in_mean_median"] == pytest.approx(0.01 + 0.1 * g + 0.01)
        assert at[f"corr{g}_in_mean_min"] == pytest.approx(0.01 + 0.1 * g)
        assert at[f"corr{g}_in_mean_max"] == pytest.approx(0.01 + 0.1 * g + 0.02)
        assert at[f"corr{g}_in_max_median"] == pytest.approx(0.03 + 0.1 * g + 0.01)
        assert at[f"corr{g}_off_max_n"] == 3 and at[f"corr{g}_se_median"] == pytest.approx(0.008)
    assert np.isnan(curves.set_index("step").loc[100, "corr1_in_mean_median"])  # no probe at step 100
    assert (curves["test_accuracy_n"] == 3).all()
    peaks = D.curriculum_peaks(curves)
    assert peaks["step"].tolist() == [400] * 3
    assert peaks["gap"].tolist() == pytest.approx([0.11, 0.21, 0.31])
    old = D.teacher_curves(D.teacher_rows(teacher_log(with_new=False)))  # runs logged before the new columns
    assert "corr1_in_max_median" not in old and "corr1_se_median" not in old and "corr1_off_max_median" in old


def test_plot_curriculum_one_row_per_setting_wrapped_at_three(tmp_path):
    log = pd.concat([teacher_log(), teacher_log(seeds=(0,), degrees=(1, 2, 3, 4), width=128, se=0.0)])
    curves = D.teacher_curves(D.teacher_rows(log))
    panels = F.curriculum_panels(curves)
    assert [(s[2], g) for s, g in panels] == [(64, 1), (64, 2), (64, 3), (128, 1), (128, 2), (128, 3), (128, 4)]
    marks = pd.DataFrame({"d": [12], "k": [3], "teacher_width": [64], "teacher_seed": [0], "strategy": ["two-shot"],
                          "checkpoint_rule": ["accuracy"], "checkpoint_step": [400.0]})
    labels = F.plot_curriculum(curves, marks, tmp_path / "c.png")
    h, w = mpimg.imread(tmp_path / "c.png").shape[:2]
    assert w == pytest.approx(3 * 4.8 * 200, rel=0.03) and 3 * 3.6 * 200 < h < (3 * 3.6 + 1.0) * 200  # 3 x 3 at 200 dpi
    assert labels[:4] == ["in-support mean over monomials", "off-support mean over monomials",
                          "in-support max over monomials", "off-support max over monomials"]
    assert "bars: +-2 Monte Carlo SE" in labels and "chosen checkpoint (accuracy rule)" in labels
    assert any(lab.startswith("band: min-max over teacher seeds") for lab in labels)
    assert not any("h64" in lab or "h128" in lab for lab in labels)  # legends by meaning, not run hash
    exact = D.teacher_curves(D.teacher_rows(teacher_log(seeds=(0,), se=0.0)))
    labels = F.plot_curriculum(exact, pd.DataFrame(), tmp_path / "e.png")
    assert not any("SE" in lab or "band" in lab for lab in labels)  # no MC error, one seed


def test_section_text_follows_the_data():
    mc = _curriculum_text(D.teacher_curves(D.teacher_rows(teacher_log())), pd.DataFrame(), True)
    assert "median over 3 teacher seeds" in mc and "band: min-max over the seeds" in mc
    assert "+-2 standard errors" in mc and "Green dash-dot" in mc
    assert "degree 3: 0.31 at step 400 (in max 0.34 vs off max 0.03, 2 SE = 0.016)" in mc
    exact = _curriculum_text(D.teacher_curves(D.teacher_rows(teacher_log(seeds=(0,), se=0.0))), pd.DataFrame(), False)
    assert "exact over {+-1}^d" in exact and "one seed, so no seed band" in exact and "No student summary" in exact
    old = _curriculum_text(D.teacher_curves(D.teacher_rows(teacher_log(with_new=False))), pd.DataFrame(), False)
    assert "were not logged" in old and "only the means" in old
