"""The GPT claims (experiments.claims.gpt_claims, App. E, R7): the window statistic and the two decision rules on
planted runs (a planted effect passes, a null is inconclusive, a reversed effect fails), the level numbering
against the engine, the paper tier's configs, the sources, and the smoke tier end to end with reuse on rerun."""
from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
from claims_helpers import smoke_records

from experiments.claims import load_claims
from experiments.claims.gpt_claims import (LEVELS, SETUP, level_gaps, progressive_verdict, shrink_verdict,
                                           student_config, teacher_config, window_means)

IDS = ("gpt-r7-progressive-beats-oneshot", "gpt-r7-gap-shrinks")
SEEDS = (10, 11, 12, 13, 14)


def planted(gap_by_level: dict, *, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Runs of every level and seed: one-shot window loss 0.5 (+ per-seed noise), progressive 0.5 - gap (+ its
    own noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for level, gap in gap_by_level.items():
        for s in SEEDS:
            base = 0.5 + 0.05 * rng.standard_normal()
            rows += [{"level": level, "student": "oneshot", "seed": s, "window_loss": base},
                     {"level": level, "student": "equal-split", "seed": s,
                      "window_loss": base - gap + noise * rng.standard_normal()}]
    return pd.DataFrame(rows)


def test_window_means_average_the_evaluations_inside_the_budget():
    log = pd.DataFrame({"step": [0, 25, 50, 75, 0, 25, 50, 75], "seed": [1] * 4 + [2] * 4,
                        "test_loss": [9.0, 1.0, 3.0, 9.0, 9.0, 2.0, 2.0, 9.0],
                        "test_accuracy": [0.0, 0.5, 0.7, 1.0, 0.0, 0.2, 0.4, 1.0]})
    w = window_means(log, 50)  # steps 25 and 50; step 0 and 75 left out
    assert w.loc[1, "window_loss"] == pytest.approx(2.0) and w.loc[2, "window_loss"] == pytest.approx(2.0)
    assert w.loc[1, "window_accuracy"] == pytest.approx(0.6) and w.loc[2, "window_accuracy"] == pytest.approx(0.3)
    with pytest.raises(ValueError):
        window_means(log, 10)


def test_progressive_rule_on_planted_gaps():
    effect = level_gaps(planted({4: 0.1, 3: 0.06, 2: 0.03}))
    assert list(effect["level"]) == [4, 3, 2]
    assert effect.set_index("level")["gap"].to_dict() == pytest.approx({4: 0.1, 3: 0.06, 2: 0.03})
    assert (effect["ci_lo"] > 0).all() and progressive_verdict(effect) == "PASS"
    null = level_gaps(planted({4: 0.0, 3: 0.0, 2: 0.0}, noise=0.05))
    assert progressive_verdict(null) == "INCONCLUSIVE"
    reversed_ = level_gaps(planted({4: 0.1, 3: 0.06, 2: -0.05}))  # one-shot ahead at level 2
    assert progressive_verdict(reversed_) == "FAIL"


def test_shrink_rule_on_planted_gaps():
    verdict, (est, lo, hi) = shrink_verdict(planted({4: 0.1, 3: 0.06, 2: 0.03}))
    assert verdict == "PASS" and est == pytest.approx(0.07) and lo > 0
    assert shrink_verdict(planted({4: 0.0, 3: 0.0, 2: 0.0}, noise=0.05))[0] == "INCONCLUSIVE"
    assert shrink_verdict(planted({4: 0.02, 3: 0.05, 2: 0.1}))[0] == "FAIL"  # the gap grows instead
    # the ordering, not the sign: less negative at level 4 than at level 2 passes
    assert shrink_verdict(planted({4: -0.01, 3: -0.05, 2: -0.1}))[0] == "PASS"


def test_levels_count_more_tokens_as_they_fall():
    """App. E numbering in the engine: level 1 is every token and C^(4) <= C^(3) <= C^(2) position by position."""
    import torch

    from distill.grammar import load_grammar
    from distill.tasks import NextTokenTask
    from infra.seeding import Stream, generator

    g = load_grammar(SETUP["cpu"]["grammar"])
    parsed = NextTokenTask(g, 1).parsed(generator(0, Stream.EVAL, torch.device("cpu")), 64)
    sel = {lv: NextTokenTask(g, lv).from_parsed(parsed).selected for lv in (1, *LEVELS)}
    assert torch.equal(sel[1], parsed.valid)
    assert bool((sel[4] <= sel[3]).all() and (sel[3] <= sel[2]).all())
    counts = [int(sel[lv].sum()) for lv in LEVELS]
    assert counts[0] < counts[1] < counts[2] < int(sel[1].sum())


def test_paper_tier_configs_construct():
    """cfg3f, 4 layers, a 32-head teacher and 8-head students of head dim 8, batch 512, C_1 = T0/20 (App. E)."""
    p = SETUP["paper"]
    for level in LEVELS:
        t = teacher_config(p, level)
        assert (t.grammar, t.objective, t.boundary_level, t.layers, t.heads * t.head_dim, t.steps, t.batch) == (
            "cfg3f", "next-token", level, 4, 256, 8000, 512)
    s = student_config(p, "teacher-dir", "equal-split")
    assert (s.layers, s.heads, s.steps, s.batch, s.temperature, s.kappa, s.split) == (4, 8, 4000, 512, 1e-4, 0.5,
                                                                                     "teacher")
    assert s.first_checkpoint == str(p["tsteps"] // 20)
    assert student_config(p, "teacher-dir", "oneshot").first_checkpoint == "auto"
    for tier in ("smoke", "cpu"):
        assert SETUP[tier]["budget"] <= SETUP[tier]["ssteps"] and SETUP[tier]["budget"] % SETUP[tier]["every"] == 0
        teacher_config(SETUP[tier], 2), student_config(SETUP[tier], "t", "equal-split")


def test_registered_as_transformer_claims():
    """(Each quote on its line: tests/test_claims.py::test_every_quote_is_on_its_line, for every claim.)"""
    claims = load_claims()
    assert all(claims[cid].kind == "transformer" for cid in IDS)


@pytest.mark.slow
def test_smoke_tier_end_to_end(tmp_path):
    from experiments.claims.verify import verify

    recs = smoke_records(IDS, tmp_path)
    for r in recs:
        assert [g["level"] for g in r["numbers"]["gaps"]] == list(LEVELS)
    table = pd.read_csv(tmp_path / f"{IDS[0]}.csv")
    runs = table[table["kind"] == "run"]
    assert len(runs) == len(LEVELS) * 2 * len(SETUP["smoke"]["seeds"]) and runs["window_loss"].gt(0).all()
    shared = tmp_path / "runs" / "gpt-shared"
    assert len(list((shared / "teacher").iterdir())) == len(LEVELS)
    assert len(list((shared / "students").iterdir())) == 2 * len(LEVELS)
    again = verify([IDS[0]], "smoke", tmp_path, progress=False)  # every run reused
    assert again[0]["seconds"] < recs[0]["seconds"] / 2 + 1
    assert again[0]["numbers"]["gaps"] == recs[0]["numbers"]["gaps"]
