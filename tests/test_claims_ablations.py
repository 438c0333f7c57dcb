"""The MLP ablation claims (experiments.claims.mlp_claims_ablations: Figures 14, 8 and 9): their decision rules
on planted tables (a planted effect passes, a planted null or reversal does not), the helpers on planted logs,
the configs of every tier (the paper's included) and the smoke tier of Figure 14 end to end."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from experiments.claims import load_claims
from experiments.claims import mlp_claims_ablations as A
from experiments.claims import mlp_claims_fig9 as F9
from experiments.claims.mlp_claims_r2 import CANDIDATES, speedup_table

PAIRS = [f"{t}-{s}" for t in range(3) for s in range(5)]  # 3 teacher x 5 student seeds


def _base(seed: int = 0) -> np.ndarray:
    return 20000 * np.exp(np.random.default_rng(seed).normal(0, 0.1, len(PAIRS)))


def _temperature_runs(two: dict, one: dict) -> pd.DataFrame:
    """Runs of both strategies at every temperature; ``two`` / ``one``: tau -> samples per pair."""
    rows = [{"pair": p, "student": name, "temperature": t, "samples_to_95": v}
            for name, by in (("two-shot", two), ("oneshot", one)) for t in A.TEMPERATURES for p, v in zip(PAIRS, by[t])]
    return pd.DataFrame(rows)


def _decide(claim_id: str, table: pd.DataFrame) -> str:
    return {"f14-hard-labels": A._f14_hard, "f14-low-temperatures-alike": A._f14_alike,
            "f14-temperature-one-slower": A._f14_one}[claim_id](table)[0]


def test_temperature_rules_on_planted_runs():
    one = {t: _base(1) for t in A.TEMPERATURES}
    two = {0.0: _base(1) / 2, 1e-4: _base(1) / 2, 1e-2: _base(1) / 2 * 1.05, 1.0: _base(1) / 2 * 1.5}
    table = A.temperature_table(_temperature_runs(two, one))
    assert len(table) == 4 + 3 + 2
    r = A._row(table, "speedup", 1e-4)
    assert r["ratio"] == pytest.approx(2.0) and r["ci_lo"] == pytest.approx(2.0)  # planted: twice as fast, paired
    assert A._row(table, "tau1", 1.0, "two-shot")["ratio"] == pytest.approx(1.5)
    assert A._row(table, "tau1", 1.0, "oneshot")["ratio"] == pytest.approx(1.0)
    assert A._row(table, "vs_argmax", 1e-2)["ratio"] == pytest.approx(1.05)
    assert [_decide(c, table) for c in ("f14-hard-labels", "f14-low-temperatures-alike",
                                        "f14-temperature-one-slower")] == ["PASS", "PASS", "PASS"]
    # planted nulls: two-shot no faster than one-shot (independent noise), tau = 1 as fast as 1e-4
    null = {t: 20000 * np.exp(np.random.default_rng(7).normal(0, 0.3, len(PAIRS))) for t in A.TEMPERATURES}
    table = A.temperature_table(_temperature_runs(null, one))
    assert _decide("f14-hard-labels", table) == "INCONCLUSIVE"
    assert _decide("f14-temperature-one-slower", table) == "FAIL"  # identical runs: the interval is exactly [1, 1]
    # planted reversals: one-shot twice as fast; tau = 1e-2 twice as slow as argmax; tau = 1 faster
    rev = {0.0: _base(1), 1e-4: _base(1) * 2, 1e-2: _base(1) * 4, 1.0: _base(1)}
    table = A.temperature_table(_temperature_runs(rev, one))
    assert [_decide(c, table) for c in ("f14-hard-labels", "f14-low-temperatures-alike",
                                        "f14-temperature-one-slower")] == ["FAIL", "FAIL", "FAIL"]


def test_alike_rule_on_planted_intervals():
    assert A.alike_verdict([(1.0, 1.0), (0.9, 1.2)]) == "PASS"
    assert A.alike_verdict([(1.0, 1.0), (1.3, 1.6)]) == "FAIL"  # wholly outside: not alike
    assert A.alike_verdict([(1.0, 1.0), (0.7, 0.78)]) == "FAIL"
    assert A.alike_verdict([(1.0, 1.0), (1.1, 1.4)]) == "INCONCLUSIVE"  # straddles the margin


def _candidate_runs(speed: dict, seed: int = 0) -> pd.DataFrame:
    """Runs of one-shot, ce and the five candidates; ``speed``: candidate -> one-shot / candidate (default 1)."""
    rng = np.random.default_rng(seed)
    base = 20000 * np.exp(rng.normal(0, 0.05, len(PAIRS)))
    rows = [{"pair": p, "student": name, "checkpoint": np.nan,
             "samples_to_95": v if name == "oneshot" else v * np.exp(rng.normal(0, 0.1)) / speed.get(name, 1.0)}
            for name in ("oneshot", "ce", *CANDIDATES) for p, v in zip(PAIRS, base)]
    return pd.DataFrame(rows)


def test_middle_best_rule_on_planted_runs():
    def verdict(speed):
        runs = _candidate_runs(speed)
        return F9.middle_best_verdict(speedup_table(runs), F9.middle_rivals(runs))

    assert verdict({"middle": 2.0, "beginning": 1.5, "end": 1.3}) == "PASS"  # the middle helps the most
    assert verdict({"middle": 1.5, "beginning": 2.0}) == "FAIL"  # the beginning decisively beats the middle
    assert verdict({"middle": 0.8}) == "FAIL"  # the middle is slower than one-shot
    assert verdict({}) == "INCONCLUSIVE"  # a planted null: every candidate as fast as one-shot
    rivals = F9.middle_rivals(_candidate_runs({"middle": 1.5, "beginning": 2.0}))
    assert rivals.loc["beginning", "ratio"] == pytest.approx(2.0 / 1.5, rel=0.05)
    assert rivals.loc["beginning", "ci_lo"] > 1 and rivals.loc["end", "ci_hi"] < 1  # end is 1.5x slower than middle
    assert list(rivals.index) == [c for c in CANDIDATES if c != "middle"]


def _probe_log(lr: float, seeds, in1: float) -> pd.DataFrame:
    """A planted probed log: per run, 50% accuracy, then 85% (the transition) with degree-1 in-support mean
    ``in1`` against an off-support mean 0.02, degrees 2 and 3 in 0.03 / off 0.005, then 100% with nothing."""
    rows = []
    for run, _ in enumerate(seeds):
        for step, acc, on in ((0, 0.5, 0), (128, 0.85, 1), (256, 1.0, 0)):
            row = {"run": run, "step": step, "test_accuracy": acc}
            for g, (i, o) in {1: (in1, 0.02), 2: (0.03, 0.005), 3: (0.03, 0.005)}.items():
                row.update({f"corr{g}_in_mean": on * i + 1e-4, f"corr{g}_off_mean": on * o + 1e-4,
                            f"corr{g}_in_min": on * i / 2, f"corr{g}_off_max": on * o * 2})
            rows.append(row)
    return pd.DataFrame(rows)


def test_probe_rates_pair_the_seeds_on_planted_logs(monkeypatch, tmp_path):
    """The helper reads both rates' logs, keeps R1's transition rows, pairs them by seed and forms the
    in/off ratios; the two Figure 9 probe rules decide on them."""
    seeds = F9._PROBE["smoke"]["seeds"]
    base_lr = F9._PROBE["smoke"]["lr"]
    planted = {base_lr: 0.06, F9.FASTER * base_lr: 0.03}  # degree 1: 3x the background, then 1.5x
    monkeypatch.setattr(F9, "probed_teachers", lambda p, out, progress=False: _probe_log(p["lr"], p["seeds"],
                                                                                        planted[p["lr"]]))
    rows, logs = F9.probe_rates("smoke", tmp_path)
    assert set(logs) == set(planted)
    mid = rows[rows["at"] == "transition"]
    base, fast = (mid[mid["lr"] == lr].set_index("seed") for lr in logs)
    assert list(base.index) == list(seeds) and (base["step"] == 128).all()
    assert fast["snr1"].to_numpy() == pytest.approx((0.03 + 1e-4) / (0.02 + 1e-4))
    assert F9.degree1_weaker_verdict(base["snr1"], fast["snr1"]) == "PASS"
    assert F9.degree1_weaker_verdict(fast["snr1"], base["snr1"]) == "FAIL"  # a planted reversal
    assert F9.degree23_verdict(fast) == "PASS"
    assert F9._f9_gap(base, fast)[0] == "PASS" and F9._f9_degree1(base, fast)[0] == "PASS"


def test_degree_rules_on_planted_rows():
    fast = pd.DataFrame({"gap2_mean": [0.02, 0.01, 0.03], "gap3_mean": [0.01, 0.02, 0.01]})
    assert F9.degree23_verdict(fast) == "PASS"
    assert F9.degree23_verdict(fast.assign(gap3_mean=[0.01, -0.01, 0.02])) == "INCONCLUSIVE"
    assert F9.degree23_verdict(fast.assign(gap2_mean=[-0.01, 0.0, -0.02])) == "FAIL"  # a planted null at degree 2
    base = pd.Series([2.0, 2.5, 3.0], index=[0, 1, 2])
    assert F9.degree1_weaker_verdict(base, pd.Series([1.5, 2.0, 2.9], index=[0, 1, 2])) == "PASS"
    assert F9.degree1_weaker_verdict(base, pd.Series([1.5, 2.6, 2.9], index=[0, 1, 2])) == "INCONCLUSIVE"
    assert F9.degree1_weaker_verdict(base, base) == "FAIL"  # equal: not lower


@pytest.mark.parametrize("tier", ["smoke", "cpu", "paper"])
def test_every_tier_builds_valid_configs(tier):
    """The paper tier is never run here, but its configs (teachers, students, temperatures, probes) are valid."""
    from experiments.claims.mlp_claims_r1 import probe_config
    from experiments.claims.mlp_claims_r2 import _SETUP, student_config, teacher_config

    p = _SETUP[tier]
    for setup in (p, {**p, "sw": A.WIDER * p["sw"]}, F9._F9[tier]):
        teacher_config(setup), student_config(setup, "teacher-dir")
    assert F9._F9[tier]["tlr"] == (0.01 if tier == "paper" else F9.FASTER * p["tlr"])
    cfg = A.temperature_config(p, "teacher-dir", 0, 1000)
    n = len(p["sseeds"])
    assert len(cfg.seeds) == len(cfg.run_temperatures) == n * len(A.TEMPERATURES)
    assert [(cfg.seeds[i * n + j], cfg.run_temperatures[i * n + j]) for i in (0, 3) for j in (0, n - 1)] == \
        [(p["sseeds"][0], 0.0), (p["sseeds"][-1], 0.0), (p["sseeds"][0], 1.0), (p["sseeds"][-1], 1.0)]
    for lr in (F9._PROBE[tier]["lr"], F9.FASTER * F9._PROBE[tier]["lr"]):
        assert probe_config({**F9._PROBE[tier], "lr": lr}).lr == lr


def test_the_ablation_claims_are_registered_in_order():
    ids = list(load_claims())
    mine = ["f14-hard-labels", "f14-low-temperatures-alike", "f14-temperature-one-slower", "f8-wide-students",
            "f9-higher-rate-middle-best", "f9-degree23-gap", "f9-degree1-gap-weaker"]
    assert [i for i in ids if i in mine] == mine
    assert ids.index(mine[0]) > ids.index("r2-checkpoint-in-transition")


@pytest.mark.slow
def test_figure14_smoke_end_to_end(tmp_path):
    """The three Figure 14 claims share one experiment: the first trains it, the others reuse it (same numbers);
    one-shot at every temperature and two-shot from R2's middle checkpoint pair by seed."""
    claims = load_claims()
    first = claims["f14-hard-labels"].run("smoke", tmp_path / "f14-hard-labels")
    students = sorted((tmp_path / "f14-hard-labels" / "students").iterdir())
    assert len(students) == 2  # one teacher seed: one directory per strategy
    other = claims["f14-temperature-one-slower"].run("smoke", tmp_path / "f14-temperature-one-slower")
    assert not (tmp_path / "f14-temperature-one-slower").exists()
    assert sorted((tmp_path / "f14-hard-labels" / "students").iterdir()) == students
    pd.testing.assert_frame_equal(first.table, other.table)
    assert first.verdict in ("PASS", "FAIL", "INCONCLUSIVE") and "tau = 1e-4" in first.reason
    assert set(first.table["comparison"]) == {"speedup", "vs_argmax", "tau1"}
    assert (first.table["pairs"] == 2).all()
    first.figure(tmp_path / "f14.png")
    assert (tmp_path / "f14.png").stat().st_size > 10_000
