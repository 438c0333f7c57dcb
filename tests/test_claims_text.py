"""The BERT-on-text claims (experiments.claims.text_claims, Section 4.2 / Figure 6): the M_robust-peak rule and the
progressive-beats rule on planted numbers (a planted effect passes, a null or reversed one does not), the paper
tier's configs, the sources, and the smoke tier end to end with reuse on rerun."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from claims_helpers import smoke_records

from experiments.claims import load_claims
from experiments.claims.pcfg_claims import three_phases
from experiments.claims.text_claims import (SETUP, mrobust_peak, progressive_rows, progressive_verdict,
                                            student_config, teacher_config)

IDS = ("text-f6-three-phases", "text-f6-mrobust-peak", "text-f6-progressive-beats")
STEPS = np.arange(0, 4001, 50)


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def teacher_log(robust, *, center=1000, measure=100) -> pd.DataFrame:
    """A teacher log: a three-phase loss (plateau, a sigmoid drop centred at ``center``, slow decline) every 50
    steps, and ``m_robust_{n}`` = ``robust(s, n)`` every ``measure`` steps, for n = 3, 7."""
    rows = []
    for s in STEPS:
        decline = 0.5 * (1 - math.exp(-max(s - 1300, 0) / 1500))
        loss = 6.9 if s == 0 else 5.9 - 1.0 * sigmoid((s - center) / 80) - decline
        row = {"step": int(s), "run": 0, "test_loss": loss}
        if s % measure == 0:
            row.update({f"m_robust_{n}": robust(s, n) for n in (3, 7)})
        rows.append(row)
    return pd.DataFrame(rows)


def peaked(s, n, keep3=0.3, keep7=0.75):
    """Rises to 0.6 by step 1000, then falls to ~0.6 ``keep3`` (n = 3) or ~0.6 ``keep7`` (n = 7): Figure 6 (b)."""
    rise = 0.6 * sigmoid((s - 800) / 80)
    keep = keep3 if n == 3 else keep7
    return rise * (1 - (1 - keep) * (1 - math.exp(-max(s - 1000, 0) / 600)))


def test_three_phases_on_the_planted_text_curve():
    ph = three_phases(teacher_log(peaked))
    assert ph["holds"] and 950 <= ph["inflection"] <= 1050


def test_mrobust_rule_on_planted_curves():
    log = teacher_log(peaked)
    ph = three_phases(log)
    mp = mrobust_peak(log, ph)
    assert mp["holds"] and mp["in_phase2"] and mp["falls"] and mp["shorter_less"]
    assert ph["p2_start"] <= mp["peak"] <= ph["p2_end"] and 0.5 < mp["fall"] < 0.7
    assert mp["n_short"] == 3 and mp["n_long"] == 7 and mp["fall_long"] < mp["fall"]
    # the pilots' shape: rises through phase 2 and stays flat (a null: no peak, no fall)
    flat = mrobust_peak(teacher_log(lambda s, n: 0.7 * sigmoid((s - 1000) / 150)), ph)
    assert not flat["falls"] and not flat["in_phase2"] and not flat["holds"]
    # a peak far after phase 2 does not count, nor a fall where the longer n-gram falls more
    late = mrobust_peak(teacher_log(lambda s, n: peaked(s - 1500, n)), ph)
    assert not late["in_phase2"] and not late["holds"]
    reversed_ = mrobust_peak(teacher_log(lambda s, n: peaked(s, n, keep3=0.5, keep7=0.3)), ph)  # n = 7 falls more
    assert reversed_["in_phase2"] and reversed_["falls"] and not reversed_["shorter_less"] and not reversed_["holds"]
    with pytest.raises(ValueError):
        mrobust_peak(log.drop(columns=["m_robust_3", "m_robust_7"]), ph)


def planted_runs(gain: float, *, noise: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(1, 6):
        base = 0.2 + 0.01 * rng.standard_normal()
        rows += [{"student": "ce", "seed": s, "final_accuracy": base - 0.01},
                 {"student": "oneshot", "seed": s, "final_accuracy": base},
                 {"student": "equal-split", "seed": s, "final_accuracy": base + gain + noise * rng.standard_normal()}]
    return pd.DataFrame(rows)


def test_progressive_rule_on_planted_runs():
    rows = progressive_rows(planted_runs(0.05))
    assert list(rows["baseline"]) == ["oneshot", "ce"] and (rows["pairs"] == 5).all()
    assert rows.set_index("baseline")["diff"].to_dict() == pytest.approx({"oneshot": 0.05, "ce": 0.06}, abs=0.005)
    assert (rows["ci_lo"] > 0).all() and progressive_verdict(rows) == "PASS"
    assert progressive_verdict(progressive_rows(planted_runs(0.0, noise=0.02))) == "INCONCLUSIVE"
    assert progressive_verdict(progressive_rows(planted_runs(-0.05))) == "FAIL"


def test_tier_configs_construct():
    from distill.text_config import TextCompareConfig

    for tier in ("smoke", "cpu", "paper"):
        p = SETUP[tier]
        t = teacher_config(p)
        s = student_config(p, "runs/t", "equal-split", 1000)
        TextCompareConfig(teacher=t, student=s)  # the pair's cross-checks
        assert t.seeds == (p["tseed"],) and s.seeds == tuple(p["seeds"]) and s.split == "student"
    t, s = teacher_config(SETUP["paper"]), student_config(SETUP["paper"], "runs/t", "ce")
    assert (t.layers, t.heads, t.head_dim, s.heads, s.head_dim, t.batch, t.lr) == (12, 12, 64, 4, 64, 512, 1e-4)


def test_sources_are_on_their_lines():
    claims = load_claims()
    papers = Path(__file__).resolve().parents[2] / "shared" / "papers"
    if not papers.is_dir():
        pytest.skip("../shared/papers is not beside this checkout")
    for cid in IDS:
        c = claims[cid]
        line = " ".join((papers / c.source.file).read_text().splitlines()[c.source.line - 1].split())
        assert " ".join(c.source.quote.split()) in line and c.kind == "transformer"


@pytest.mark.slow
def test_smoke_tier_end_to_end(tmp_path):
    pytest.importorskip("tokenizers")
    from experiments.claims.verify import verify

    recs = smoke_records(IDS, tmp_path)
    shared = tmp_path / "runs" / "text-shared"
    assert len(list((shared / "teacher").iterdir())) == 1 and len(list((shared / "students").iterdir())) == 3
    again = verify([IDS[2]], "smoke", tmp_path, progress=False)  # every run reused
    assert again[0]["seconds"] < recs[2]["seconds"] / 2 + 1 and again[0]["reason"] == recs[2]["reason"]
