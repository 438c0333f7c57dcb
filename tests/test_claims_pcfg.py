"""The PCFG claims (experiments.claims.pcfg_claims, Section 4.1 / App. D): the three-phase rule on planted loss
curves, the R4 candidates, the paired-difference interval and the decision rules on planted tables, the paper
tier's configs, the non-terminal probe on planted representations (Step 2 of the scale search), and the smoke
tier end to end."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from claims_helpers import smoke_records
import torch

from experiments.claims import load_claims
from experiments.claims.pcfg_claims import (SETUP, all_below, candidate_steps, diff_interval, r4_verdict,
                                            student_config, teacher_config, three_phases)

IDS = ("pcfg-f4-three-phases", "pcfg-r4-inflection-best", "pcfg-r5-ngram-measures", "pcfg-r5-nonterminal-probe")
STEPS = np.arange(0, 1201, 25)


def curve(loss_fn, steps=STEPS, init: float = 1.1) -> pd.DataFrame:
    """A teacher log: ``loss_fn(s)`` at every logged step after 0 (step 0: ``init``), two identical runs."""
    loss = np.array([init if s == 0 else loss_fn(s) for s in steps])
    one = pd.DataFrame({"step": steps, "test_loss": loss})
    return pd.concat([one.assign(run=0), one.assign(run=1)], ignore_index=True)


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def three_phase_loss(s, *, center=225, width=20, drop=0.3, decline=0.2):
    """Plateau at 0.98, a sigmoid drop of ``drop`` centred at ``center``, then an exponential decline."""
    return 0.98 - drop * sigmoid((s - center) / width) - decline * (1 - math.exp(-max(s - 300, 0) / 400))


def test_three_phases_on_a_planted_curve():
    ph = three_phases(curve(three_phase_loss))
    assert ph["holds"] and ph["plateau"] and ph["rapid_drop"] and ph["slow_decline"]
    assert ph["s1"] == 25 and ph["T0"] == 1200
    assert ph["inflection"] == 225                      # the sigmoid's centre
    assert 150 <= ph["p2_start"] < 225 < ph["p2_end"] <= 300
    assert ph["phase1_frac"] < 0.05 and 0.5 < ph["phase2_frac"] < 0.7
    assert ph["phase1_frac"] + ph["phase2_frac"] + ph["phase3_frac"] == pytest.approx(1.0)


def test_three_phases_fail_without_each_phase():
    """No plateau (the drop starts at once), no slow decline (flat after the drop), no rapid drop (a straight
    line): each fails its own condition."""
    early = three_phases(curve(lambda s: three_phase_loss(s, center=30)))
    assert not early["plateau"] and not early["holds"]
    flat = three_phases(curve(lambda s: three_phase_loss(s, decline=0.0)))
    assert flat["plateau"] and flat["rapid_drop"] and not flat["slow_decline"] and not flat["holds"]
    line = three_phases(curve(lambda s: 1.0 - 0.0004 * s))
    assert not line["rapid_drop"] and not line["holds"]
    slow = three_phases(curve(lambda s: three_phase_loss(s, width=120)))  # a drop spread over ~600 steps
    assert not slow["rapid_drop"] and not slow["holds"]


def test_candidates_snap_to_saved_checkpoints():
    ph = {"s1": 25, "p2_start": 175, "p2_end": 300, "inflection": 225, "T0": 1200}
    saved = list(range(0, 1201, 50))
    assert candidate_steps(ph, saved) == {"plateau": 100, "inflection": 200, "after": 450}
    # the end of phase 2 wins over 2 x inflection when later; the final checkpoint is never chosen
    assert candidate_steps(dict(ph, p2_end=700), saved)["after"] == 700
    assert candidate_steps(dict(ph, inflection=1100), saved)["after"] == 1150


def test_diff_interval_on_planted_pairs():
    rng = np.random.default_rng(1)
    base = rng.normal(0.3, 0.02, 8)
    est, lo, hi = diff_interval(base - 0.1, base)
    assert est == pytest.approx(-0.1) and lo == pytest.approx(-0.1) and hi == pytest.approx(-0.1)
    est, lo, hi = diff_interval(rng.normal(0.3, 0.05, 8), rng.normal(0.3, 0.05, 8))
    assert lo < 0 < hi
    with pytest.raises(ValueError):
        diff_interval([1.0, 2.0], [1.0])


def test_r4_and_r5_rules_on_planted_tables():
    def r4(plateau, after):
        return pd.DataFrame([{"baseline": "plateau", "ci_lo": plateau[0], "ci_hi": plateau[1]},
                             {"baseline": "after", "ci_lo": after[0], "ci_hi": after[1]},
                             {"baseline": "ce", "ci_lo": 0.1, "ci_hi": 0.2}])   # not decisive
    assert r4_verdict(r4((1.1, 1.5), (1.2, 2.0))) == "PASS"
    assert r4_verdict(r4((1.1, 1.5), (0.6, 0.95))) == "FAIL"
    assert r4_verdict(r4((1.1, 1.5), (0.9, 1.3))) == "INCONCLUSIVE"
    rows = pd.DataFrame({"ci_lo": [-0.2, -0.1, 0.05], "ci_hi": [-0.1, -0.01, 0.2], "decisive": [True, True, False]})
    assert all_below(rows) == "PASS"
    assert all_below(rows.assign(decisive=True)) == "FAIL"
    assert all_below(rows.assign(ci_hi=[-0.1, 0.02, 0.2])) == "INCONCLUSIVE"


def test_paper_tier_configs_construct():
    """cfg3b, 4 layers, 32 / 8 heads of dim 8, batch 512, 8000 / 4000 steps (Section 4, App. D.5-D.6)."""
    p = SETUP["paper"]
    t = teacher_config(p)
    assert (t.grammar, t.layers, t.heads * t.head_dim, t.steps, t.batch, t.mask_rate) == ("cfg3b", 4, 256, 8000, 512, 0.3)
    for strategy, first in (("two-shot", 1000), ("equal-split", 1000), ("oneshot", None), ("ce", None)):
        s = student_config(p, "teacher-dir", strategy, first)
        assert (s.layers, s.heads * s.head_dim, s.steps, s.batch, s.temperature) == (4, 64, 4000, 512, 1e-4)
        assert s.first_checkpoint == (str(first) if first else "auto") and s.stage_steps == 1000
    for tier in ("smoke", "cpu"):
        teacher_config(SETUP[tier]), student_config(SETUP[tier], "t", "two-shot", 10)


def test_probe_reads_planted_nonterminals_and_not_positions_alone():
    """Step 2: the App. D.3 probe reads the level-1 non-terminal from a representation that holds it (1.0) and
    stays near the positional baseline on position-only features, on random:levels=4,seed=1."""
    from distill.grammar import load_grammar
    from distill.probes import train_nonterminal_probe
    from distill.tasks import MaskedLMTask
    from infra.seeding import Stream, generator

    g = load_grammar("random:levels=4,seed=1")
    task = MaskedLMTask(g)
    cpu = torch.device("cpu")
    tr = task.parsed(generator(0, Stream.PROBE_TRAIN, cpu), 256)
    te = task.parsed(generator(0, Stream.PROBE_TEST, cpu), 128)
    T, lv, n_nt = g.max_length, 1, len(g.levels[1])

    def feats(p, planted: bool):
        n, t = p.tokens.shape
        f = [torch.nn.functional.one_hot(torch.arange(t).expand(n, t), T).float()]
        if planted:
            f.append(torch.nn.functional.one_hot(p.ancestors[:, lv].clamp_min(0), n_nt).float())
        return torch.cat(f, -1)[None]

    def acc(planted):
        return float(train_nonterminal_probe(feats(tr, planted), tr.ancestors, tr.boundary, feats(te, planted),
                                             te.ancestors, te.boundary, level=lv, n_classes=n_nt, steps=150,
                                             generator=generator(0, Stream.PROBE_TRAIN, cpu))[0])

    planted, positional = acc(True), acc(False)
    assert planted > 0.99
    assert positional < 0.93  # the majority class given the position alone is 0.87 on this grammar


def test_registered_as_transformer_claims():
    """(Each quote on its line: tests/test_claims.py::test_every_quote_is_on_its_line, for every claim.)"""
    claims = load_claims()
    assert all(claims[cid].kind == "transformer" for cid in IDS)


@pytest.mark.slow
def test_smoke_tier_end_to_end(tmp_path):
    from experiments.claims.verify import verify

    recs = smoke_records(IDS, tmp_path)
    again = verify([IDS[1]], "smoke", tmp_path, progress=False)  # every run reused
    assert again[0]["seconds"] < recs[1]["seconds"] / 2 + 1
