"""The hierarchical-parity claims (experiments.claims.mlp_claims_hier, Appendix C.3): their decision rules on
planted level logs and planted ratio tables, the candidates on a planted two-stage accuracy curve, their
sources on their lines, and the smoke tier end to end."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.claims import load_claims
from experiments.claims.mlp_claims_hier import _SETUP, c3_verdict, hier_candidates, peak_rows, separation

PAPERS = Path(__file__).resolve().parents[2] / "shared" / "papers"
IDS = ("hier-levels-spike-apart", "hier-progressive-faster", "hier-two-checkpoints-in-transition")


def planted_levels(peak_l1: int, peak_l2: int, *, run: int = 0, off: float = 0.01, height: float = 0.05):
    """A level log over steps 0..4000 (every 100): level l's degree-1 in-support mean is a bump of ``height``
    centred at its peak over a flat off-support ``off``; degree 2 peaks 200 steps later; accuracies ramp."""
    steps = np.arange(0, 4001, 100)
    bump = lambda c: off + height * np.exp(-((steps - c) / 300.0) ** 2)  # noqa: E731
    return pd.DataFrame({"step": steps, "run": run, "seed": 10 + run, "corr1_off": off, "corr2_off": off,
                         "corr1_in_l1": bump(peak_l1), "corr1_in_l2": bump(peak_l2),
                         "corr2_in_l1": bump(peak_l1 + 200), "corr2_in_l2": bump(peak_l2 + 200),
                         "acc_l1": np.clip(steps / 2000, 0, 1), "acc_l2": np.clip(steps / 3000, 0, 1)})


def planted_log(s99: int, run: int = 0):
    steps = np.arange(0, 4001, 100)
    return pd.DataFrame({"step": steps, "run": run, "test_accuracy": np.where(steps >= s99, 1.0, 0.5)})


def test_levels_peaking_apart_pass_and_together_fail():
    """Peaks 1000 apart with steps-to-99% 3000 (margin 300): separated; 100 apart: not; a level whose
    in-support mean never doubles the off-support one does not spike."""
    apart = peak_rows(planted_levels(1000, 2000), planted_log(3000), 2)
    assert apart.set_index("level")["peak1"].to_dict() == {1: 1000, 2: 2000}
    assert apart.set_index("level")["peak2"].to_dict() == {1: 1200, 2: 2200}
    assert apart.set_index("level")["acc90"].to_dict() == {1: 1800, 2: 2700}
    assert apart["spike"].all() and (apart["s99"] == 3000).all()
    sep = separation(apart).iloc[0]
    assert sep["min_peak_distance"] == 1000 and sep["margin"] == pytest.approx(300) and sep["separated"]
    assert sep["first_level"] == 1
    together = separation(peak_rows(planted_levels(1500, 1600), planted_log(3000), 2)).iloc[0]
    assert together["min_peak_distance"] == 100 and not together["separated"]
    flat = separation(peak_rows(planted_levels(1000, 2000, height=0.005), planted_log(3000), 2)).iloc[0]
    assert not flat["all_spike"] and not flat["separated"]


def test_claim1_verdict_counts_runs():
    levels = pd.concat([planted_levels(1000, 2000, run=0), planted_levels(1500, 1550, run=1)])
    log = pd.concat([planted_log(3000, 0), planted_log(3000, 1)])
    sep = separation(peak_rows(levels, log, 2))
    assert sep["separated"].tolist() == [True, False]  # one of two: INCONCLUSIVE under the rule


def test_candidates_follow_the_teachers_own_two_stage_curve():
    """4 classes (chance 0.25): early at 0.4375, middle 0.625, late 0.8125, end 0.99, after halfway from the end
    to the final step; snapped to saved checkpoints (final excluded)."""
    steps = list(range(0, 4001, 100))
    acc = [0.25] * 5 + [0.45] * 5 + [0.5] * 5 + [0.7] * 5 + [0.85] * 5 + [1.0] * 16
    log = pd.DataFrame({"step": steps, "test_accuracy": acc})
    got = hier_candidates(log, list(range(0, 4001, 200)), 4, 4000)
    assert got == {"early": 400, "middle": 1400, "late": 2000, "end": 2400, "after": 3200}
    jump = pd.DataFrame({"step": steps, "test_accuracy": [0.25] * 10 + [1.0] * 31})  # one jump: late bumped past early
    got = hier_candidates(jump, list(range(0, 4001, 500)), 4, 4000)
    assert got["early"] == 1000 and got["late"] == 1500 and got["after"] == 2500


def ratio_table(a, b):
    rows = [{"target": "samples_to_95", "faster": "p3-in", "base": f"p2-{c}", "ci_lo": lo, "ci_hi": hi}
            for c, (lo, hi) in zip(("early", "middle", "late"), a)]
    rows.append({"target": "samples_to_95", "faster": "p3-out", "base": "p2-early", "ci_lo": b[0], "ci_hi": b[1]})
    rows.append({"target": "samples_to_99", "faster": "p3-out", "base": "p2-early", "ci_lo": 5.0, "ci_hi": 6.0})
    return pd.DataFrame(rows)


def test_claim3_rule_on_planted_ratios():
    assert c3_verdict(ratio_table([(1.2, 1.5)] * 3, (0.9, 1.1)))[0] == "PASS"  # planted effect, outside neutral
    assert c3_verdict(ratio_table([(1.2, 1.5), (1.1, 1.3), (0.7, 0.9)], (0.9, 1.1)))[0] == "FAIL"
    assert c3_verdict(ratio_table([(1.2, 1.5)] * 3, (1.1, 1.3)))[0] == "FAIL"  # the outside checkpoint helped
    assert c3_verdict(ratio_table([(1.2, 1.5), (0.9, 1.3), (1.2, 1.4)], (0.9, 1.1)))[0] == "INCONCLUSIVE"
    assert c3_verdict(ratio_table([(float("nan"),) * 2] * 3, (0.9, 1.1)))[0] == "INCONCLUSIVE"


def test_claims_are_registered_with_valid_paper_configs():
    """Registered in the ledger; every tier's teacher fits the task (d >= (2^D - 1) k) and its schedules fit
    the students' steps (the paper tier is never run here, its configs must still construct)."""
    from infra.schedule import stage_plan
    from simulate.config import StudentConfig, TeacherConfig

    claims = load_claims()
    assert all(i in claims for i in IDS)
    for tier, p in _SETUP.items():
        TeacherConfig(task="hierarchical", d=p["d"], depth=p["depth"], k=p["k"], width=p["tw"], steps=p["tsteps"],
                      lr=p["tlr"], lr_a_mult=p["tmult"], eval_every=p["every"], checkpoint_every=p["every"],
                      probe_every=0, seeds=p["tseeds"], device="cpu")
        StudentConfig(teacher="x", width=p["sw"], steps=p["ssteps"], lr=p["lr"], eval_every=p["seval"], probe_every=0,
                      stage_steps=p["T"], seeds=p["sseeds"], device="cpu")
        assert stage_plan("progressive", steps=p["ssteps"], stage_steps=p["T"], n_checkpoints=p["N"],
                          teacher_steps=p["tsteps"], spacing=p["every"]) == (p["N"], p["T"])
        assert stage_plan("progressive", steps=p["ssteps"], stage_steps=p["T"], teacher_steps=p["tsteps"],
                          spacing=p["every"], checkpoints=(p["every"], 2 * p["every"])) == (3, p["T"])


@pytest.mark.skipif(not PAPERS.is_dir(), reason="../shared/papers is not beside this checkout")
def test_quotes_are_on_their_lines():
    claims = load_claims()
    lines = (PAPERS / "001_eef68ba6c826acd6.txt").read_text().splitlines()
    for i in IDS:
        s = claims[i].source
        assert " ".join(s.quote.split()) in " ".join(lines[s.line - 1].split()), i


@pytest.mark.slow
def test_smoke_tier_of_the_three_claims(tmp_path):
    """The three claims at the smoke tier share one teacher (trained once) and the one-shot students."""
    from experiments.claims.verify import verify

    recs = verify(list(IDS), "smoke", tmp_path / "v", progress=False)
    assert [r["status"] for r in recs] == ["done"] * 3, [r.get("reason") for r in recs]
    assert len(list((tmp_path / "v" / "runs" / "hier-shared" / "teacher").glob("*/config.json"))) == 1
    peaks = recs[0]["numbers"]["peaks"]
    assert {r["level"] for r in peaks} == {1, 2} and all(0 <= r["peak1"] <= 4000 for r in peaks)
    assert all((tmp_path / "v" / f"{i}.png").is_file() and (tmp_path / "v" / f"{i}.csv").is_file() for i in IDS)
