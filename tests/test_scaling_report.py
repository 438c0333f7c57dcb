"""The "Measured vs predicted scaling" report on synthetic scaling directories written to the engine's
contract (searches/*/search.json, teachers/*/summary.json + config.json, online/ compare runs) with
planted power laws: fits, censoring, predictions, the consistent? column and the built report."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from infra.store import write_parquet
from reports import scaling_data as S
from reports.build import build_report
from reports.scaling import advantage_table, is_scaling_dir, scaling_sections

DS = [8, 11, 16, 23, 32, 45, 64]
GRID = [round(2 * 2 ** (i / 2)) for i in range(37)]  # factor 2^(1/2), 2 .. 524288
SEEDS = [0, 1, 2, 3, 4]
C_TEACHER = 0.5  # planted teacher loss exponent: final_loss = 2 d^-0.5


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _search(root, name, *, d, k, sup, sw, tw, b1_true, total, rng, eps=0.1):
    """One search.json of the contract for a planted B1* (``b1_true``) and total samples (``total``)."""
    above = b1_true > GRID[-1]
    b1 = None if above else next(g for g in GRID if g >= b1_true)
    i = len(GRID) if above else GRID.index(b1)
    below = i == 0
    failing = None if below else GRID[i - 1]
    run_dir = f"runs/{name}"
    evals = []
    if failing is not None:
        evals.append({"B1": failing, "success_rate": 0.2, "successes": 1, "runs": 5, "run_dir": run_dir,
                      "samples_to_eps": [None] * 5, "recovered_frac": [0.1] * 5, "final_loss": [0.9] * 5})
    if b1 is not None:
        noise = np.exp(rng.normal(0, 0.1, len(SEEDS)))
        evals.append({"B1": b1, "success_rate": 1.0, "successes": 5, "runs": 5, "run_dir": run_dir,
                      "samples_to_eps": [int(total * z) for z in noise], "recovered_frac": [1.0] * 5,
                      "final_loss": [0.01] * 5})
    _write(root / "searches" / name / "search.json", {
        "setting": {"d": d, "k": k, "supervision": sup, "student_width": sw, "teacher_width": tw, "eps": eps,
                    "recover_frac": 0.9, "T2": 2000},
        "target_rate": 0.8, "seeds": SEEDS, "grid": GRID, "factor": 2 ** 0.5, "evaluations": evals,
        "B1_star": b1, "censored": "above" if above else "below" if below else None,
        "bracket": [failing, b1], "n_evaluations": len(evals)})
    _write(root / run_dir / "summary.json", {"kind": "parity-two-stage-student", "d": d, "k": k, "T1": 1,
                                             "B1": b1, "T2": 2000, "B2": 1, "runs": []})


def _online(root, rng):
    """Compare runs of online SGD: ce samples_to_95 = 100 d^3; one-shot samples_to_loss_eps = 30 d;
    teachers' final loss 2 d^-0.5."""
    for d in (8, 12, 16, 24, 32):
        for t in (0, 1, 2):
            loss = 2 * d ** -C_TEACHER * math.exp(rng.normal(0, 0.05))
            for s in (0, 1):
                run = root / "online" / f"c{d}-{t}-{s}"
                _write(run / "config.json", {"kind": "CompareConfig", "strategies": ["ce", "oneshot"],
                                             "teacher": {"d": d, "k": 4, "width": 256, "seeds": [t]},
                                             "student": {"width": 64, "seeds": [s], "batch": 1}})
                students = {name: {"samples_to_95": int(100 * d ** 3 * math.exp(rng.normal(0, 0.1))),
                                   "samples_to_loss_eps": int(30 * d * math.exp(rng.normal(0, 0.1))),
                                   "samples_to_99": None, "final_accuracy": 1.0, "final_loss": 0.01}
                            for name in ("ce", "oneshot")}
                write_parquet(run / "metrics.parquet", pd.DataFrame(
                    {"step": [0, 10, 0, 10], "samples": [0, 10, 0, 10], "test_accuracy": [0.5, 1.0, 0.5, 1.0],
                     "role": ["ce", "ce", "oneshot", "oneshot"], "seed": [s] * 4}))
                _write(run / "summary.json", {"teacher": {"samples_to_95": 1000 * d, "final_loss": loss,
                                                          "final_accuracy": 1.0}, "students": students})


def make_scaling_dir(root, *, seed=0, online=True, teachers=True):
    """k = 4: labels B1* = 3 d^3 (censored above at d = 64), progressive 3 d^2 (teacher widths 256 and
    1024), one-shot 5 d; totals 10 d^3, 50 d^2, 20 d^2."""
    rng = np.random.default_rng(seed)
    _write(root / "scaling.json", {"tier": "smoke", "started": "t0", "finished": "t1", "wall_seconds": 90.0,
                                   "spec": {}})
    for d in DS:
        _search(root, f"lab{d}", d=d, k=4, sup="labels", sw=64, tw=None, b1_true=3 * d**3, total=10 * d**3, rng=rng)
        for tw in (256, 1024):
            _search(root, f"pro{d}-{tw}", d=d, k=4, sup="progressive", sw=64, tw=tw, b1_true=3 * d**2 * 256 / tw,
                    total=50 * d**2, rng=rng)
        _search(root, f"one{d}", d=d, k=4, sup="oneshot", sw=64, tw=1024, b1_true=5 * d, total=20 * d**2, rng=rng)
        for tw in (256, 1024) if teachers else ():
            _write(root / "teachers" / f"t{d}-{tw}" / "config.json", {"d": d, "k": 4, "width": tw})
            _write(root / "teachers" / f"t{d}-{tw}" / "summary.json", {
                "kind": "parity-two-stage-teacher", "d": d, "k": 4, "width": tw, "teacher_width": None,
                "supervision": "labels", "T1": 1, "B1": 4096, "T2": 2000, "B2": 1,
                "runs": [{"run": i, "seed": i, "final_loss": 2 * d ** -C_TEACHER * math.exp(rng.normal(0, 0.05))}
                         for i in range(3)]})
    if online:
        _online(root, rng)
    return root


@pytest.fixture(scope="module")
def scaling_dir(tmp_path_factory):
    # a fixed draw: a 95% interval misses a planted slope in 5% of the draws
    return make_scaling_dir(tmp_path_factory.mktemp("scaling"), seed=7)


def _fits(scaling_dir, n_boot=300):
    rng = np.random.default_rng(1)
    searches = S.read_searches(scaling_dir)
    cs = S.loss_exponents(S.teacher_points(scaling_dir), ["k", "teacher_width"])
    points = S.b1_points(searches)
    return points, cs, S.b1_fits(points, cs, n_boot=n_boot, rng=rng), S.total_fits(S.total_points(searches), cs)


def _row(fits, sup, tw=None):
    sel = fits[(fits["supervision"] == sup) & (fits["teacher_width"].isna() if tw is None else
                                                fits["teacher_width"] == tw)]
    assert len(sel) == 1
    return sel.iloc[0]


def test_b1_fit_recovers_planted_slopes_and_counts_censored(scaling_dir):
    points, cs, b1, _ = _fits(scaling_dir)
    assert len(points) == 4 * len(DS) and is_scaling_dir(scaling_dir)
    lab = points[points["supervision"] == "labels"].set_index("d")
    assert lab.loc[64, "censored"] == "above" and np.isnan(lab.loc[64, "B1_star"]) and lab.loc[64, "y"] == GRID[-1]
    assert (lab.loc[DS[:-1], "hi"] >= 3 * np.array(DS[:-1]) ** 3).all()  # B1* is the grid value above the truth
    assert (lab.loc[DS[:-1], "lo"] < 3 * np.array(DS[:-1]) ** 3).all()
    for sup, tw, planted in (("labels", None, 3.0), ("progressive", 1024, 2.0), ("oneshot", 1024, 1.0)):
        r = _row(b1, sup, tw)
        assert abs(r["exponent"] - planted) < 0.1, (sup, r["exponent"])
        # exact laws, but one search per d: the grid's rounding (factor 2^(1/2)) is all the scatter there is
        assert r["ci_lo"] <= planted <= r["ci_hi"] and r["ci_hi"] - r["ci_lo"] < 0.65
    assert _row(b1, "labels")["n_censored"] == 1 and _row(b1, "labels")["n_points"] == len(DS) - 1
    assert _row(b1, "progressive", 1024)["n_censored"] == 0 and _row(b1, "progressive", 1024)["n_points"] == len(DS)


def test_bracket_fit_covers_a_scattered_law():
    """B1* scatters about its law (the search's seeds): 300 planted ``B1* = 20 d^1.5 e^(0.3 z)`` read through a
    2^(1/2) grid; the 95% interval must cover 1.5 at least 95% - 3 binomial sd (0.013) of the time. Measured: 97.7%;
    the grid draws alone (the interval before) covered 45-49%."""
    rng = np.random.default_rng(0)
    d = np.array([8.0, 12, 16, 24, 32, 48, 64])
    grid = 16 * 2.0 ** (np.arange(40) / 2)
    hits = 0
    for _ in range(300):
        b1 = 20 * d ** 1.5 * np.exp(rng.normal(0, 0.3, d.size))
        i = np.searchsorted(grid, b1)  # grid[i - 1] < B1* <= grid[i]
        fit = S.bracket_fit(d, grid[i - 1], grid[i], n_boot=500, rng=rng)
        hits += fit.lo <= 1.5 <= fit.hi
    assert hits / 300 >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / 300)
    assert S.bracket_fit(d[:2], [8, 16], [16, 32], n_boot=10, rng=rng).lo == -np.inf  # two points: no error estimate


def test_teacher_loss_exponent_and_predictions(scaling_dir):
    _, cs, b1, total = _fits(scaling_dir)
    assert len(cs) == 2 and (abs(cs["c"] - C_TEACHER) < 0.05).all() and (cs["n_zero"] == 0).all()
    assert ((cs["c_lo"] <= cs["c"]) & (cs["c"] <= cs["c_hi"]) & (cs["c_hi"] - cs["c_lo"] < 0.1)).all()
    assert S.predicted("B1", "labels", 64, 4)[0] == 3.0
    assert S.predicted("B1", "progressive", 64, 4)[0] == 0.0
    assert S.predicted("B1", "oneshot", 64, 4, c=0.5)[0] == 1.0
    assert S.predicted("B1", "oneshot", 64, 4, c=2.0)[0] == 3.0  # capped at k-1
    assert np.isnan(S.predicted("B1", "oneshot", 64, 4, c=-0.3)[0])  # loss that does not fall: no prediction
    # the local slope of a unit-constant formula: labels' |zeta_(k-1)|^-2 log(m d / delta) over d = 16..64
    from theory.algorithm1 import paper_hyperparameters
    ds = [16, 32, 64]
    want = np.polyfit(np.log(ds), np.log([paper_hyperparameters(d, 4, 64, delta=S.DELTA)["B1"] for d in ds]), 1)[0]
    assert abs(S.local_slope("B1", "labels", ds, 4, 64, 0.1) - want) < 1e-12 and 3.0 < want < 3.3
    assert np.isnan(S.local_slope("B1", "oneshot", ds, 4, 64, 0.1, c=0.5))
    assert S.predicted("total", "labels", 64, 2)[0] == 2.0 and S.predicted("total", "labels", 64, 4)[0] == 3.0
    assert S.predicted("total", "progressive", 64, 4)[0] == 2.0
    assert S.predicted("total", "oneshot", 64, 6, c=0.5)[0] == 2.0
    assert S.predicted("total", "oneshot", 64, 6, c=2.0)[0] == 4.0
    assert abs(_row(b1, "oneshot", 1024)["predicted_exponent"] - 2 * _row(b1, "oneshot", 1024)["c"]) < 1e-12
    # unit-constant values: labels' stage-1 batch of paper_hyperparameters, progressive_upper's value
    from theory.algorithm1 import paper_hyperparameters
    from theory.bounds import progressive_upper
    assert S.absolute("B1", "labels", 16, 4, 64, 0.1) == paper_hyperparameters(16, 4, 64, delta=S.DELTA)["B1"]
    assert S.absolute("total", "progressive", 16, 4, 64, 0.1) == progressive_upper(16, 4, 0.1, S.DELTA, width=64).value
    assert np.isnan(S.absolute("B1", "oneshot", 16, 4, 64, 0.1, c=0.5))


def test_consistent_column(scaling_dir):
    _, _, b1, total = _fits(scaling_dir)
    lab = _row(b1, "labels")  # planted 3 = k-1, but the unit-constant formula bends upwards over d = 8..64
    assert lab["predicted_exponent"] == 3.0 and lab["predicted_local"] > 3.05
    assert lab["consistent"] == ("yes" if lab["ci_lo"] <= lab["predicted_local"] <= lab["ci_hi"] else "no")
    assert _row(b1, "oneshot", 1024)["consistent"] == "yes"  # planted 1 = min(2c, k-1), c = 0.5 (no formula)
    assert _row(b1, "progressive", 1024)["consistent"] == "no"  # planted 2, predicted 0 (local ~0.1)
    for sup, tw, planted in (("labels", None, 3.0), ("progressive", 1024, 2.0), ("oneshot", 1024, 2.0)):
        r = _row(total, sup, tw)  # bootstrap over seeds recovers the planted totals
        judged = r["predicted_local"] if np.isfinite(r["predicted_local"]) else r["predicted_exponent"]
        assert r["ci_lo"] <= planted <= r["ci_hi"], (sup, r["exponent"])
        assert r["consistent"] == ("yes" if r["ci_lo"] <= judged <= r["ci_hi"] else "no")
    # labels' total: Lemma B.7's stage 2 (m d^2 k^3 / eps^2) dominates its stage 1 at these d, so the
    # formula's local slope is ~2 while the planted totals grow like d^3: inconsistent
    assert abs(_row(total, "labels")["predicted_local"] - 2) < 0.1 and _row(total, "labels")["consistent"] == "no"
    assert _row(total, "labels")["n_censored"] == 1
    assert S.consistent(2.0, 1.9, 2.1) == "yes" and S.consistent(0.0, 1.9, 2.1) == "no"
    assert S.consistent(float("nan"), 1.9, 2.1) == "n/a"
    # one-sided: a lower bound holds when the measured slope may lie above it, an upper bound when below
    assert S.consistent(1.0, 1.9, 2.1, "lower") == "yes" and S.consistent(3.0, 1.9, 2.1, "lower") == "no"
    assert S.consistent(3.0, 1.9, 2.1, "upper") == "yes" and S.consistent(1.0, 1.9, 2.1, "upper") == "no"
    assert [S.bound_side(q, s) for q, s in (("B1", "oneshot"), ("total", "labels"), ("B1", "labels"),
                                           ("total", "progressive"))] == ["lower", "upper", "both", "both"]


def test_advantage_table(scaling_dir):
    adv = advantage_table(S.b1_points(S.read_searches(scaling_dir))).set_index(["d", "teacher_width"])
    # progressive 3 d^2 (m = 256) vs labels 3 d^3: below from d = 8 on; vs one-shot 5 d: never below
    assert (adv.xs(256, level="teacher_width")["beats_labels"] == "yes").all()
    assert (adv["beats_oneshot"] == "no").all()


def test_built_report(scaling_dir, tmp_path):
    out = tmp_path / "report"
    sections = build_report(scaling_dir, out, n_boot=100, gap_ks=(2,), gap_ds=[5, 9])
    names = {s.name: s for s in sections}
    for stem in ("scaling_two_stage_b1", "scaling_two_stage_total", "scaling_teacher_width", "scaling_online"):
        assert names[stem].figure == f"{stem}.png" and names[stem].note is None
        assert (out / f"{stem}.png").stat().st_size > 10_000 and (out / f"{stem}.pdf").stat().st_size > 1_000
        assert all((out / c).is_file() for c in names[stem].csvs) and f"{stem}.csv" in names[stem].csvs
    fits = pd.read_csv(out / "scaling_two_stage_b1_fits.csv")
    assert set(fits["supervision"]) == {"labels", "progressive", "oneshot"} and len(fits) == 4
    md = (out / "report.md").read_text()
    assert "## Measured vs predicted scaling: stage-1 batch B1* of Algorithm 1" in md
    assert ("| measured exponent [95% CI] | predicted exponent (d -> inf) | predicted slope over these d | predicted by "
            "| bound | consistent? |") in md
    rows = [line for line in md.splitlines() if line.startswith("| 4 | progressive | 64 | 1024 |")]
    assert len(rows) == 2 and rows[0].endswith("| no | 0 |") and rows[1].split(" | ")[-3] == "yes"
    assert "d = 100, k = 6, teacher width 50000" in md and "tier smoke" in md
    online = pd.read_csv(out / "scaling_online_fits.csv").set_index(["measure", "strategy"])
    assert online.loc[("95% accuracy", "ce"), "consistent"] == "yes"  # planted 3 = k-1
    one = online.loc[("loss eps", "oneshot")]
    assert abs(one["predicted_exponent"] - 1.0) < 0.1 and one["consistent"] == "yes"  # min(2c, k-1), c ~ 0.5
    assert "Strategies (Figure 1, left)" in md  # the MLP sections read OUT/online


def test_missing_parts_are_notes(tmp_path):
    root = make_scaling_dir(tmp_path / "s", online=False, teachers=False)
    secs = {s.name: s for s in scaling_sections(tmp_path / "o", root, n_boot=50, rng=np.random.default_rng(0))}
    assert "online" in secs["scaling_online"].note and secs["scaling_online"].figure is None
    assert "left out" in secs["scaling_two_stage_b1"].text  # no teacher loss exponent
    b1 = pd.read_csv(tmp_path / "o" / "scaling_two_stage_b1_fits.csv", keep_default_na=False)
    assert (b1.loc[b1["supervision"] == "oneshot", "consistent"] == "n/a").all()
    empty = tmp_path / "e"
    (empty / "searches").mkdir(parents=True)
    secs = scaling_sections(tmp_path / "o2", empty, n_boot=10, rng=np.random.default_rng(0))
    assert all(s.figure is None and "left out" in s.note for s in secs)
