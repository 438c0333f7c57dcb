"""Curriculum Extraction on the PCFG (experiments.claims.pcfg_extraction_claims, Figure 4 of the extraction paper):
the decision rules on planted numbers, the arms of every tier (the full-budget one-shot shared with pcfg_claims, the
paper tier's sizes), and the smoke tier end to end with its reuse on a rerun."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from claims_helpers import assert_reused, smoke_records

from experiments.claims import load_claims
from experiments.claims.pcfg_claims import SETUP as PCFG_SETUP
from experiments.claims.pcfg_claims import student_config
from experiments.claims.pcfg_extraction_claims import SETUP, SPEED, arm_name, arms, beats_verdict, diff_rows
from infra.config import config_hash

IDS = ("ex-f4ab-pcfg-beats-oneshot", "ex-f4c-more-layers-better")


def planted(effect: float, *, seeds: int = 5, speedup: float = 1.0, noise: float = 0.004) -> pd.DataFrame:
    """Runs of two arms of the same seeds: one-shot at 0.70 + seed noise, extraction ``effect`` higher (the
    same seed noise plus a small independent part) and ``speedup`` times faster to the target."""
    rng = np.random.default_rng(3)
    base = 0.70 + rng.normal(0, 0.01, seeds)
    rows = []
    for i, b in enumerate(base):
        rows.append({"student": "oneshot@600", "seed": i + 1, "final_accuracy": b, SPEED: 20000.0})
        rows.append({"student": "extraction[1,2]@600", "seed": i + 1,
                     "final_accuracy": b + effect + rng.normal(0, noise), SPEED: 20000.0 / speedup})
    return pd.DataFrame(rows)


PAIR = [("extraction[1,2]@600", "oneshot@600")]


def test_a_planted_effect_passes_with_its_numbers():
    t = diff_rows(planted(0.02, speedup=1.25), PAIR)
    x = t.iloc[0]
    assert x.seeds == 5 and 0 < x.ci_lo <= x["diff"] <= x.ci_hi and abs(x["diff"] - 0.02) < 0.01
    assert x.speed_ratio == pytest.approx(1.25) and x.speed_lo == pytest.approx(1.25)
    assert beats_verdict(t) == "PASS"


def test_a_planted_null_does_not_pass_and_a_planted_loss_fails():
    null = diff_rows(planted(0.0, noise=0.01), PAIR)
    assert null.ci_lo.iloc[0] < 0 < null.ci_hi.iloc[0] and beats_verdict(null) == "INCONCLUSIVE"
    worse = diff_rows(planted(-0.02), PAIR)
    assert worse.ci_hi.iloc[0] < 0 and beats_verdict(worse) == "FAIL"
    # every budget must pass: one straddling budget leaves the claim undecided, one losing budget fails it
    both = pd.concat([diff_rows(planted(0.02), PAIR), null], ignore_index=True)
    assert beats_verdict(both) == "INCONCLUSIVE"
    assert beats_verdict(pd.concat([both, worse], ignore_index=True)) == "FAIL"


def test_a_run_that_never_reaches_the_target_is_infinitely_slow():
    runs = planted(0.02)
    runs.loc[runs["student"] == "oneshot@600", SPEED] = np.nan
    x = diff_rows(runs, PAIR).iloc[0]
    assert x.speed_ratio == np.inf and x.speed_lo == np.inf


@pytest.mark.parametrize("tier", ["smoke", "cpu", "paper"])
def test_every_tier_builds_its_arms(tier):
    s, p = SETUP[tier], PCFG_SETUP[SETUP[tier]["base"]]
    every = arms(tier, "/runs/pcfg-shared/teacher/x")
    steps, full, single = s["ablation"]
    assert set(every) == {arm_name(b) for _, b in s["budgets"]} | {
        arm_name(b, tuple(range(1, k + 1))) for k, b in s["budgets"]} | {arm_name(steps, single)}
    for name, (cfg, ends) in every.items():
        assert (cfg.seeds, cfg.lr, cfg.temperature, cfg.layers) == (p["seeds"], p["slr"], 1e-4, p["slayers"])
        if cfg.strategy == "extraction":
            assert ends[-1] == len(cfg.extract_layers) * cfg.extract_steps < cfg.steps
            base = every[arm_name(cfg.steps)][0]   # the one-shot of its budget, but for the schedule (and measures)
            assert dataclasses.replace(cfg, strategy="oneshot", extract_layers=(), extract_steps=100,
                                       measure_every=base.measure_every) == base
    one, many = every[arm_name(steps, single)][0], every[arm_name(steps, full)][0]
    assert one.extract_steps * len(single) == many.extract_steps * len(full)   # the same alignment budget


def test_the_full_budget_oneshot_is_pcfg_claims_own():
    """Same config, same hash: the cpu tier reuses pcfg-r4's one-shot students instead of retraining them."""
    p = PCFG_SETUP["cpu"]
    cfg, _ = arms("cpu", "/t")[arm_name(p["ssteps"])]
    assert config_hash(cfg) == config_hash(student_config(p, "/t", "oneshot"))


def test_the_paper_tier_is_figure_4():
    """cfg3b; 4-layer 8-head students of a 4-layer 32-head teacher; 2 / 3 / 4 stages at 4000 / 6000 / 8000; 4c at
    6000 with 2700 alignment steps (3 x 900) against block 1 alone for 2700."""
    every = arms("paper", "/t")
    ex = {n: c for n, (c, _) in every.items() if c.strategy == "extraction"}
    assert {(c.steps, c.extract_layers, c.extract_steps) for c in ex.values()} == {
        (4000, (1, 2), 900), (6000, (1, 2, 3), 900), (8000, (1, 2, 3, 4), 900), (6000, (1,), 2700)}
    c = next(iter(ex.values()))
    assert (c.layers, c.heads, c.head_dim, c.batch) == (4, 8, 8, 512)
    p = PCFG_SETUP["paper"]
    assert (p["grammar"], p["tlayers"], p["theads"]) == ("cfg3b", 4, 32)


def test_registered_as_transformer_claims_of_the_extraction_paper():
    claims = load_claims()
    for cid in IDS:
        assert claims[cid].kind == "transformer" and claims[cid].source.paper == "extraction"
        assert claims[cid].source.line == 41


@pytest.mark.slow
def test_smoke_tier_end_to_end_and_reused(tmp_path):
    recs = smoke_records(IDS, tmp_path, min_figure_bytes=10_000)
    rows = recs[0]["numbers"]["rows"]
    assert [(x["better"], x["baseline"], x["seeds"]) for x in rows] == [
        ("extraction[1]@60", "oneshot@60", 2), ("extraction[1,2]@120", "oneshot@120", 2)]
    assert all(0.0 < x["median_better"] <= 1.0 and x["ci_lo"] <= x["diff"] <= x["ci_hi"] for x in rows)
    assert_reused(IDS, tmp_path, recs)  # every run reused: same numbers, fast
