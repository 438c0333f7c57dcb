"""The claims ledger (experiments.claims, icurr verify): decision rules on planted data, the registry's
refusals, every claim's quoted statement on its line of the paper, the committed CLAIMS.md in step with
the registry, and the smoke tier end to end."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from experiments.claims import load_claims
from experiments.claims.ledger import Claim, Outcome, Rule, Source, exact_verdict, interval_verdict, register
from experiments.claims.mlp_claims import ratio_interval
from theory._checks import ParameterError

ROOT = Path(__file__).resolve().parents[1]
PAPERS = ROOT.parent / "shared" / "papers"
GALLERY = ROOT / "reports" / "gallery" / "claims"


def test_interval_rule_on_planted_intervals():
    assert interval_verdict(1.2, 1.9, 1.0)[0] == "PASS"  # a planted effect
    assert interval_verdict(0.5, 0.9, 1.0)[0] == "FAIL"  # a planted reversal
    verdict, reason = interval_verdict(0.8, 1.3, 1.0)  # a planted null straddles
    assert verdict == "INCONCLUSIVE" and "straddles 1" in reason
    assert interval_verdict(0.2, 0.4, 0.5, claimed="<")[0] == "PASS"
    assert interval_verdict(float("nan"), 2.0, 1.0)[0] == "INCONCLUSIVE"
    assert exact_verdict(False, "x")[0] == "FAIL" and exact_verdict(True, "x")[0] == "PASS"


def test_ratio_interval_on_planted_pairs():
    import numpy as np

    rng = np.random.default_rng(1)
    base = 2000 * np.exp(rng.normal(0, 0.1, 15))
    est, lo, hi = ratio_interval(base, base / 2)  # planted: twice as fast, paired
    assert abs(est - 2) < 1e-9 and lo == pytest.approx(2) and hi == pytest.approx(2)
    est, lo, hi = ratio_interval(base, 2000 * np.exp(rng.normal(0, 0.3, 15)))  # planted null
    assert lo < 1 < hi and interval_verdict(lo, hi, 1.0)[0] == "INCONCLUSIVE"
    est, lo, hi = ratio_interval([100, None, 120], [50, 60, 55])  # a run that never reached counts as infinite
    assert est == pytest.approx(120 / 55)


def test_ratio_interval_percentiles_are_numpys_on_finite_pairs():
    """The same 2000 joint resamples (default_rng(0)) and numpy's linear percentiles, when nothing is censored."""
    rng = np.random.default_rng(5)
    for n in (3, 7, 12):
        base, faster = rng.integers(100, 1000, n).astype(float), rng.integers(50, 900, n).astype(float)
        r = np.random.default_rng(0)
        boots = [np.median(base[i]) / np.median(faster[i]) for i in (r.integers(0, n, n) for _ in range(2000))]
        _, lo, hi = ratio_interval(base, faster)
        assert (lo, hi) == pytest.approx(tuple(np.percentile(boots, [2.5, 97.5])), rel=1e-12)


def test_ratio_interval_reads_infinite_resampled_ratios_as_infinite():
    """Censored baselines (never reached: None) make resampled ratios infinite, where numpy interpolates NaN. A
    finite sentinel M for them gives numpy's interpolation; the bound must equal it where it stays far below M and
    be +inf where the sentinel's is huge (faster arms fully observed: no inf / inf)."""
    M = 1e200
    cases = [([None, None, None], [10.0, 20.0, 30.0]),
             ([100.0, None, None, 300.0, None], [10.0, 20.0, 30.0, 40.0, 50.0]),
             ([100.0, 200.0, None, 300.0, 400.0, None, 250.0], [90.0, 150.0, 80.0, 120.0, 60.0, 70.0, 110.0])]
    for base, faster in cases:
        _, *got = ratio_interval(base, faster)
        _, *sentinel = ratio_interval([M if v is None else v for v in base], faster)
        for g, sb in zip(got, sentinel):
            assert g == math.inf if sb >= M / 1e6 else g == pytest.approx(sb, rel=1e-9)
    assert ratio_interval(*cases[1])[2] == math.inf


def test_undefined_resamples_widen_the_interval():
    """inf / inf (both medians never reached) may be any ratio: 0 for the lower bound, +inf for the upper. Most
    pairs censored on both arms: the interval is [0, inf] whatever the rest says; none undefined: unchanged."""
    est, lo, hi = ratio_interval([None, None, None, 100.0, None], [None, 50.0, None, None, 40.0])
    assert math.isnan(est) and (lo, hi) == (0.0, math.inf)
    assert interval_verdict(lo, hi, 1.0)[0] == "INCONCLUSIVE"
    assert ratio_interval([None, None], [None, None])[1:] == (0.0, math.inf)
    finite = ([100.0, 200.0, 150.0, 120.0], [50.0, 60.0, 70.0, 80.0])
    assert ratio_interval(*finite) == ratio_interval(*finite)  # deterministic
    assert ratio_interval(*finite)[1] > 1


def test_a_claim_needs_a_source_and_a_rule():
    src = Source("progressive", "Theorem B.1", "001_eef68ba6c826acd6.txt", 449, "Under progressive distillation")
    rule = Rule("s", "d", "2026-11-30")
    run = lambda tier, out, progress=False: Outcome("PASS", "")  # noqa: E731
    with pytest.raises(ParameterError, match="decision rule"):
        register(Claim("x-no-rule", "t", "mlp", src, Rule("", "", ""), run))
    with pytest.raises(ParameterError, match="paper reference"):
        register(Claim("x-no-source", "t", "mlp", dataclasses.replace(src, quote=""), rule, run))
    with pytest.raises(ParameterError, match="claim id"):
        register(Claim("X Bad", "t", "mlp", src, rule, run))
    with pytest.raises(ParameterError, match="registered twice"):
        register(Claim(next(iter(load_claims())), "t", "mlp", src, rule, run))
    with pytest.raises(ParameterError, match="verdict"):
        Outcome("MAYBE", "")


@pytest.mark.skipif(not PAPERS.is_dir(), reason="../shared/papers is not beside this checkout")
def test_every_quote_is_on_its_line():
    for c in load_claims().values():
        lines = (PAPERS / c.source.file).read_text().splitlines()
        line = " ".join(lines[c.source.line - 1].split())
        assert " ".join(c.source.quote.split()) in line, (c.id, c.source.line, line[:200])


def test_committed_ledger_is_in_step_with_the_registry():
    """reports/gallery/claims/claims.json and CLAIMS.md (the cpu tier) hold every registered claim with the
    rule and source the registry has now: a rule changed after the run must be rebuilt (and say so)."""
    meta = json.loads((GALLERY / "claims.json").read_text())
    md = (GALLERY / "CLAIMS.md").read_text()
    claims = load_claims()
    assert meta["tier"] == "cpu"
    assert [r["id"] for r in meta["claims"]] == list(claims)
    for r in meta["claims"]:
        c = claims[r["id"]]
        assert r["rule"] == dataclasses.asdict(c.rule) and r["source"] == dataclasses.asdict(c.source), c.id
        assert r["status"] == "done" and r["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE"), (c.id, r.get("reason"))
        assert f"## {c.id}" in md and f"**{r['verdict']}**" in md
        if r.get("csv"):
            assert (GALLERY / r["csv"]).is_file()


def test_unknown_claims_and_tiers_fail_in_one_line(tmp_path):
    from cli_helpers import run_icurr

    res = run_icurr("verify", "no-such-claim", "--out", tmp_path / "o")
    assert res.returncode == 2 and "claim must be one of" in res.stderr and not (tmp_path / "o").exists()
    res = run_icurr("verify", "--tier", "huge", "--out", tmp_path / "o")
    assert res.returncode == 2 and "tier must be one of smoke, cpu, paper" in res.stderr
    res = run_icurr("verify", "--list")
    assert res.returncode == 0 and "f1-left-online" in res.stdout


@pytest.mark.slow
def test_smoke_tier_end_to_end(tmp_path):
    from cli_helpers import run_icurr

    res = run_icurr("verify", "--tier", "smoke", "--out", tmp_path / "v", "--no-progress")
    assert res.returncode == 0, res.stderr[-3000:]
    meta = json.loads((tmp_path / "v" / "claims.json").read_text())
    assert [r["id"] for r in meta["claims"]] == list(load_claims())
    assert all(r["status"] == "done" and r["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE") for r in meta["claims"])
    assert (tmp_path / "v" / "CLAIMS.md").read_text().startswith("# Claims ledger")
    by = {r["id"]: r for r in meta["claims"]}
    assert by["cor-b6-maj-correlation"]["verdict"] == "FAIL"  # exactly zero: the stage-1 output is odd
    assert by["cor-b6-maj-correlation"]["numbers"]["corrmaj_in_max"] < 1e-9


def test_r2_candidates_follow_the_teachers_own_curve():
    """R2's candidates sit at the plateau, 55%, 80%, 99% and twice the end of a planted accuracy curve,
    snapped to saved checkpoints (the final one excluded)."""
    import pandas as pd

    from experiments.claims.mlp_claims_r2 import candidate_steps

    steps = list(range(0, 2001, 100))
    acc = [0.5] * 8 + [0.6, 0.7, 0.85, 0.95, 0.995] + [1.0] * 8  # 55% at 800, 80% at 1000, 99% at 1200
    got = candidate_steps(pd.DataFrame({"step": steps, "test_accuracy": acc}), saved=list(range(200, 2001, 200)))
    assert got == {"plateau": 400, "beginning": 800, "middle": 1000, "end": 1200, "after": 1800}


def test_r1_compares_like_with_like_on_a_planted_log():
    """R1's rows: the gap at the first evaluation at >= 80% accuracy is in-support mean minus off-support mean
    (and min minus max), on a planted two-probe log."""
    import pandas as pd

    from experiments.claims.mlp_claims_r1 import transition_rows

    base = {"run": 0, "corr2_in_mean": 0.1, "corr2_off_mean": 0.0, "corr2_in_min": 0.1, "corr2_off_max": 0.0,
            "corr3_in_mean": 0.1, "corr3_off_mean": 0.0, "corr3_in_min": 0.1, "corr3_off_max": 0.0}
    log = pd.DataFrame([
        {**base, "step": 0, "test_accuracy": 0.5, "corr1_in_mean": 0.01, "corr1_off_mean": 0.02, "corr1_in_min": 0.0,
         "corr1_off_max": 0.05},
        {**base, "step": 10, "test_accuracy": 0.85, "corr1_in_mean": 0.30, "corr1_off_mean": 0.05,
         "corr1_in_min": 0.2, "corr1_off_max": 0.25},
        {**base, "step": 20, "test_accuracy": 1.0, "corr1_in_mean": 0.01, "corr1_off_mean": 0.0, "corr1_in_min": 0.0,
         "corr1_off_max": 0.0}])
    rows = transition_rows(log).set_index("at")
    assert rows.loc["transition", "step"] == 10
    assert rows.loc["transition", "gap1_mean"] == pytest.approx(0.25)
    assert rows.loc["transition", "gap1_max"] == pytest.approx(-0.05)  # the max against the max: not separated
    assert rows.loc["final", "corr1_in_mean"] == pytest.approx(0.01)


def test_the_header_says_whether_the_build_reused_runs(tmp_path):
    from experiments.claims.verify import verify

    verify(["t-even-degree"], "smoke", tmp_path / "v", progress=False)
    assert "wall in all, from scratch" in (tmp_path / "v" / "CLAIMS.md").read_text()
    (tmp_path / "v" / "runs" / "earlier").mkdir(parents=True)
    verify(["t-even-degree"], "smoke", tmp_path / "v", progress=False)
    assert "reusing the finished runs of an earlier build" in (tmp_path / "v" / "CLAIMS.md").read_text()
    assert json.loads((tmp_path / "v" / "claims.json").read_text())["from_scratch"] is False


def test_ratio_panel_draws_censored_intervals_without_warnings():
    """Bounds at 0 / infinity run to the panel's edges, an infinite estimate is marked at the top, NaN is
    left out: no invalid-value warnings (they came from inf - inf in the error bars)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from experiments.claims.mlp_claims import ratio_panel

    fig, ax = plt.subplots()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ratio_panel(ax, ["a", "b", "c", "d"], [1.33, np.inf, np.nan, 2.0], [0.0, 0.0, 0.0, 1.5],
                    [np.inf, np.inf, np.inf, 2.5], ylabel="y", title="t")
    lo, hi = ax.get_ylim()
    assert lo == 0.5 and hi == pytest.approx(2.5 * 2 * 1.3)  # half the smallest value shown (the line at 1), twice the largest
    assert any(line.get_marker() == "^" for line in ax.lines)  # the infinite estimate
    plt.close(fig)
