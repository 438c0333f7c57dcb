"""The Transformer sparse-parity claims of the ledger (experiments.claims.transformer_parity_claims): the rank
correlation against its closed form, Figure 11's rule on planted teacher logs (tracking passes, a flat or falling
attention fails), the paired ratios on planted censored runs, the configs of every tier (the paper's construct),
the quotes on their lines, and the smoke tier end to end."""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from claims_helpers import assert_reused, smoke_records

from experiments.claims import load_claims
from experiments.claims.ledger import PAPERS
from experiments.claims.transformer_parity_claims import (
    CHANGED, RHO, SETUP, all_above, attention_rows, attention_verdict, paired_ratios, spearman,
    student_configs, teacher_config,
)

pytestmark = pytest.mark.usefixtures("one_thread")
PAPER_DIR = Path(__file__).resolve().parents[2] / "shared" / "papers"
IDS = ("tf-f13-two-shot-faster", "tf-f11-attention-tracks-accuracy", "tf-r6-more-heads-faster",
       "ex-f3b-transformer-beats-oneshot")


# ------------------------------------------------------------------ Spearman

def test_spearman_equals_the_closed_form_without_ties_over_all_permutations():
    """rho = 1 - 6 sum d_i^2 / (n (n^2 - 1)) for distinct values: every permutation of 5 ranks."""
    x = np.array([0.3, 1.2, 2.0, 2.5, 7.0])
    for perm in itertools.permutations(range(5)):
        y = np.array(perm, float) * 10 + 1
        d = np.arange(5) - np.array(perm)
        assert spearman(x, y) == pytest.approx(1 - 6 * (d**2).sum() / (5 * 24), abs=1e-12)


def test_spearman_uses_average_ranks_for_ties_and_is_nan_for_a_constant():
    # ranks of (1, 1, 2): (1.5, 1.5, 3); of (1, 2, 3): (1, 2, 3); Pearson of those = sqrt(3) / 2
    assert spearman([1, 1, 2], [1, 2, 3]) == pytest.approx(math.sqrt(3) / 2, abs=1e-12)
    assert math.isnan(spearman([0.5, 0.5, 0.5], [1, 2, 3]))
    assert spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)     # monotone, not linear
    assert spearman([1, 2, 3, 4], [16, 9, 4, 1]) == pytest.approx(-1.0)


# ------------------------------------------------------------------ Figure 11's rule on planted logs

def _log(attn_in: list[list[float]], acc: list[list[float]], attn_off: float = 0.04) -> pd.DataFrame:
    rows = []
    for run, (a, c) in enumerate(zip(attn_in, acc)):
        for i, (ai, ci) in enumerate(zip(a, c)):
            rows.append({"step": 100 * i, "run": run, "test_accuracy": ci, "attn_in_support": ai,
                         "attn_off_support": attn_off})
            rows.append({"step": 100 * i + 50, "run": run, "test_accuracy": ci, "attn_in_support": np.nan,
                         "attn_off_support": np.nan})  # an evaluation without probes is left out
    return pd.DataFrame(rows)


ACC = [0.5, 0.49, 0.52, 0.7, 0.96, 1.0, 1.0]
RISING = [0.17, 0.17, 0.18, 0.2, 0.22, 0.23, 0.235]


def test_a_planted_tracking_teacher_passes_with_its_exact_numbers():
    table = attention_rows(_log([RISING, RISING], [ACC, ACC]), d=12, k=4)
    assert list(table["probes"]) == [7, 7]
    assert table["learned_step"].tolist() == [400, 400]           # the first probe with >= 95% accuracy
    assert table["rise"].tolist() == pytest.approx([0.22 - 0.17] * 2)
    assert table["share_start"].iloc[0] == pytest.approx(4 * 0.17 / (4 * 0.17 + 8 * 0.04))
    assert table["rho"].iloc[0] == pytest.approx(spearman(RISING, ACC))
    assert table["rho"].iloc[0] >= RHO and attention_verdict(table) == "PASS"


def test_flat_or_falling_attention_fails_and_a_mix_is_inconclusive():
    falling = RISING[::-1]
    flat_noise = [0.2, 0.21, 0.19, 0.2, 0.19, 0.2, 0.2]
    table = attention_rows(_log([falling, flat_noise], [ACC, ACC]), d=12, k=4)
    assert (table["rho"] < RHO).all()
    assert attention_verdict(table) == "FAIL"
    mixed = attention_rows(_log([RISING, falling], [ACC, ACC]), d=12, k=4)
    assert attention_verdict(mixed) == "INCONCLUSIVE"


def test_a_teacher_that_never_learns_does_not_track():
    """A rising attention with rho above the threshold but no evaluation at 95%: no rise is defined."""
    acc = [0.5, 0.52, 0.55, 0.6, 0.7, 0.8, 0.9]
    table = attention_rows(_log([RISING], [acc]), d=12, k=4)
    assert table["rho"].iloc[0] >= RHO and math.isnan(table["rise"].iloc[0])
    assert attention_verdict(table) == "FAIL"


# ------------------------------------------------------------------ paired ratios on planted runs

def test_censored_baselines_give_an_infinite_upper_bound_and_pass():
    wide = pd.DataFrame({"ce": [100.0, 200.0, None, None, 300.0], "two-shot": [10.0, 20.0, 30.0, 40.0, 50.0]})
    table = paired_ratios(wide, [("ce", "two-shot")])
    row = table.iloc[0]
    assert row["ratio"] == pytest.approx(300 / 30) and row["ci_hi"] == math.inf and row["ci_lo"] > 1
    assert (row["median_baseline"], row["median_faster"], row["pairs"]) == (300.0, 30.0, 5)
    assert all_above(table) == "PASS"


def test_planted_nulls_do_not_pass():
    same = pd.DataFrame({"a": [10.0, 20.0, 30.0, 40.0], "b": [10.0, 20.0, 30.0, 40.0]})
    assert paired_ratios(same, [("a", "b")])[["ratio", "ci_lo", "ci_hi"]].iloc[0].tolist() == [1.0, 1.0, 1.0]
    assert all_above(paired_ratios(same, [("a", "b")])) == "FAIL"       # equal is not faster
    never = pd.DataFrame({"a": [None] * 4, "b": [None] * 4})             # nobody learned: no ratio
    assert all_above(paired_ratios(never, [("a", "b")])) == "INCONCLUSIVE"
    noisy = pd.DataFrame({"a": [10.0, 40.0, 20.0, 30.0, 25.0], "b": [30.0, 15.0, 35.0, 20.0, 25.0]})
    assert all_above(paired_ratios(noisy, [("a", "b")])) == "INCONCLUSIVE"
    faster = pd.DataFrame({"a": [10.0, 20.0, 30.0, 40.0], "b": [1.0, 2.0, 3.0, 4.0]})
    assert all_above(paired_ratios(faster, [("a", "b"), ("a", "a")])) == "FAIL"   # one of two fails: FAIL


# ------------------------------------------------------------------ configs

@pytest.mark.parametrize("tier", ["smoke", "cpu", "paper"])
def test_every_tier_builds_valid_configs(tier, tmp_path):
    p = SETUP[tier]
    teachers = {h: teacher_config(p, h) for h in p["sweep"]}
    wide = teachers[p["theads"]]
    assert wide.heads == max(p["sweep"]) and wide.head_dim == 8 and wide.layers == 2 and wide.probe_every > 0
    assert all(t.probe_every == 0 and t.steps == p["sweep_steps"] for h, t in teachers.items() if h != p["theads"])
    students = student_configs(p, tmp_path)
    n, runs = p["n_students"], len(p["tseeds"])
    assert students[("ce", 0)].seeds == tuple(range(n * runs))
    for r in range(runs):
        seeds = {s: students[(s, r)].seeds for s in ("oneshot", "two-shot", "extraction")}
        assert set(seeds.values()) == {tuple(range(r * n, (r + 1) * n))}
        assert students[("oneshot", r)].temperature == students[("extraction", r)].temperature == 1.0
        assert students[("two-shot", r)].temperature == 1e-4 and students[("two-shot", r)].first_checkpoint == "auto"
        assert all(students[(s, r)].teacher_run == r and students[(s, r)].heads == p["sheads"] for s in seeds)


def test_the_paper_tier_is_appendix_c2():
    p = SETUP["paper"]
    t = teacher_config(p)
    assert (t.d, t.k, t.heads, t.head_dim, t.layers, t.batch, t.readout, t.support) == (100, 6, 32, 8, 2, 32, "last",
                                                                                         "first")
    assert student_configs(p, "/t")[("two-shot", 0)].heads == 4


# ------------------------------------------------------------------ registry

def test_the_claims_are_registered_as_transformer_claims_with_their_quotes():
    claims = load_claims()
    for cid in IDS:
        c = claims[cid]
        assert c.kind == "transformer" and c.rule.statistic and c.rule.decision
        assert c.rule.changed.startswith(CHANGED) if c.id != "tf-f11-attention-tracks-accuracy" else not c.rule.changed
        line = (PAPER_DIR / PAPERS[c.source.paper]).read_text(encoding="utf-8").splitlines()[c.source.line - 1]
        assert " ".join(c.source.quote.split()) in " ".join(line.split()), cid


# ------------------------------------------------------------------ smoke tier end to end

@pytest.mark.slow
def test_smoke_tier_end_to_end_and_reused(tmp_path):
    records = smoke_records(IDS, tmp_path, min_figure_bytes=10_000)
    f13 = records[0]["numbers"]["ratios"]
    assert [(x["baseline"], x["faster"], x["pairs"]) for x in f13] == [("ce", "two-shot", 4), ("oneshot", "two-shot", 4)]
    assert_reused(IDS, tmp_path, records)  # every run is reused: same numbers, fast
