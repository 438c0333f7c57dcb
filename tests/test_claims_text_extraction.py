"""Curriculum Extraction on text (experiments.claims.text_extraction_claims, its Figure 3 (c)): the alignment budget
(the paper's 45% of the steps), the rule on planted paired seeds (effect passes, null and reversal do not), the
configs of every tier and the smoke tier end to end with reuse."""
from __future__ import annotations

import pandas as pd
import pytest
from claims_helpers import smoke_records

from experiments.claims import load_claims
from experiments.claims.ledger import interval_verdict
from experiments.claims.text_claims import SETUP, student_config
from experiments.claims.text_extraction_claims import EXTRACT_FRACTION, extract_steps, extraction_rows

ID = "ex-f3c-text-beats-oneshot"


def planted(extraction, oneshot, split) -> pd.DataFrame:
    seeds = range(len(extraction))
    return pd.DataFrame([{"student": s, "seed": k, "final_accuracy": v[k]} for s, v in
                         (("extraction", extraction), ("oneshot", oneshot), ("equal-split", split)) for k in seeds])


def test_alignment_budget_is_the_papers_share():
    assert EXTRACT_FRACTION == pytest.approx(2700 / 6000)  # Figure 4 (c): 2700 of 6000 iterations extract
    assert extract_steps(SETUP["cpu"]) == 180 and 2 * 180 < SETUP["cpu"]["ssteps"]
    for tier, p in SETUP.items():  # every tier's extraction student is a valid config
        cfg = student_config(p, "teacher-dir", "extraction", extract_steps=extract_steps(p))
        assert cfg.extract_steps * p["slayers"] < cfg.steps, tier


def test_rule_on_planted_seeds():
    better = extraction_rows(planted([0.20, 0.21, 0.22, 0.19, 0.20], [0.15, 0.16, 0.15, 0.14, 0.16],
                                     [0.18, 0.18, 0.19, 0.18, 0.17])).set_index("baseline")
    assert better.loc["oneshot", "diff"] == pytest.approx(0.05) and better.loc["oneshot", "pairs"] == 5
    assert interval_verdict(better.loc["oneshot", "ci_lo"], better.loc["oneshot", "ci_hi"], 0.0)[0] == "PASS"
    null = extraction_rows(planted([0.20, 0.15, 0.18, 0.16, 0.19], [0.18, 0.17, 0.16, 0.18, 0.17],
                                   [0.1] * 5)).set_index("baseline")
    assert interval_verdict(null.loc["oneshot", "ci_lo"], null.loc["oneshot", "ci_hi"], 0.0)[0] == "INCONCLUSIVE"
    worse = extraction_rows(planted([0.10] * 5, [0.15, 0.16, 0.15, 0.14, 0.16], [0.1] * 5)).set_index("baseline")
    assert interval_verdict(worse.loc["oneshot", "ci_lo"], worse.loc["oneshot", "ci_hi"], 0.0)[0] == "FAIL"


def test_registered_with_the_text_claims_kind():
    assert load_claims()[ID].kind == "transformer"


@pytest.mark.slow
def test_smoke_tier_end_to_end_and_reused(tmp_path):
    from experiments.claims.verify import verify

    recs = smoke_records((ID,), tmp_path)
    assert recs[0]["numbers"]["extract_steps"] == extract_steps(SETUP["smoke"])
    students = tmp_path / "runs" / "text-shared" / "students"
    assert len(list(students.iterdir())) == 3  # one-shot and equal-split of text_claims, and the extraction students
    again = verify([ID], "smoke", tmp_path, progress=False)  # every run reused
    assert again[0]["seconds"] < recs[0]["seconds"] / 2 + 1 and again[0]["reason"] == recs[0]["reason"]
