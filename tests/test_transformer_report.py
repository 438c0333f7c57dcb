"""Transformer sections of the report (reports.transformer*), on tiny real PCFG and parity
Transformer compare sweeps (CPU, seconds) and on hand-made frames with closed-form answers."""
from __future__ import annotations

import json
import shutil
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
import torch

from icurr.cli import main
from reports import transformer_data as TD
from reports.build import build_report
from infra.store import load_metrics
from experiments.sweep import parse_sweep, run_sweep

PCFG = {"kind": "pcfg-compare", "base": {
    "strategies": ["ce", "oneshot", "equal-split"],
    "teacher": {"grammar": "random:levels=3,seed=1", "steps": 40, "warmup": 5, "batch": 16, "eval_every": 10,
                "checkpoint_every": 10, "measure_every": 20, "measure_positions": 32, "probe_every": 20,
                "probe_train": 32, "probe_test": 16, "probe_steps": 3, "eval_size": 32, "heads": 2, "layers": 1,
                "device": "cpu"},
    "student": {"steps": 20, "warmup": 2, "batch": 8, "eval_every": 10, "measure_every": 10, "measure_positions": 32,
                "probe_every": 20, "probe_steps": 3, "probe_train": 32, "probe_test": 16, "eval_size": 32,
                "first_checkpoint": "10", "seeds": [0, 1, 2], "heads": 1, "layers": 1, "device": "cpu"}}}
PARITY = {"kind": "parity-transformer-compare", "base": {
    "strategies": ["ce", "two-shot"],
    "teacher": {"d": 6, "k": 2, "heads": 4, "layers": 1, "steps": 100, "batch": 32, "eval_every": 25,
                "eval_size": 128, "checkpoint_every": 25, "probe_every": 25, "probe_samples": 256, "device": "cpu"},
    "student": {"steps": 50, "batch": 32, "eval_every": 25, "eval_size": 128, "seeds": [0, 1], "heads": 2,
                "layers": 1, "device": "cpu"}}}
MLP = {"kind": "teacher", "base": {"d": 6, "k": 2, "width": 16, "steps": 200, "eval_every": 100,
                                   "checkpoint_every": 100, "probe_every": 0, "device": "cpu"}}
PCFG_FIGURES = ("pcfg_teacher", "pcfg_students", "pcfg_features")


@contextmanager
def _one_thread():
    """Tiny models train several times faster on one intra-op thread when the 2 cores are shared."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _sweep(spec, out):
    with _one_thread():
        run_sweep(parse_sweep(spec), out, progress=False)
    (run,) = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return out, run  # the sweep directory and its one compare run (a plain compare dir below parts/)


@pytest.fixture(scope="module")
def pcfg(tmp_path_factory):
    sweep, run = _sweep(PCFG, tmp_path_factory.mktemp("pcfg") / "runs")
    plain = run / "parts"
    report = tmp_path_factory.mktemp("pcfg_report")
    assert main(["report", str(plain), "--out", str(report)]) == 0
    index = json.loads((plain / "compare.json").read_text())
    summaries = {s: json.loads((plain / name / "summary.json").read_text())
                 for s, name in index["index"]["students"].items()}
    return {"sweep": sweep, "plain": plain, "report": report, "index": index, "summaries": summaries}


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    sweep, run = _sweep(PARITY, tmp_path_factory.mktemp("parity") / "runs")
    report = tmp_path_factory.mktemp("parity_report")
    build_report(sweep, report)
    return {"sweep": sweep, "plain": run / "parts", "report": report}


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    out = tmp_path_factory.mktemp("mlp") / "runs"
    run_sweep(parse_sweep(MLP), out, progress=False)
    return out


def _teacher_metrics(plain):
    m = load_metrics(plain, kind="pcfg-teacher")
    return m.sort_values("step").reset_index(drop=True)


# ---------------------------------------------------------------- real runs: CSVs hold the metrics' numbers

def test_pcfg_teacher_csv_is_the_teacher_log(pcfg):
    csv = pd.read_csv(pcfg["report"] / "pcfg_teacher.csv")
    t = _teacher_metrics(pcfg["plain"])
    assert csv["step"].tolist() == t["step"].tolist() == [0, 10, 20, 30, 40]
    assert csv["test_loss"].iloc[-1] == pytest.approx(t["test_loss"].iloc[-1], rel=1e-12)
    for col in ("test_loss", "test_accuracy", "m_robust_3", "m_close_7", "probe_level_1", "probe_level_2"):
        np.testing.assert_allclose(csv[col].to_numpy(float), t[col].to_numpy(float), rtol=1e-12, equal_nan=True)
    assert csv["m_robust_3"].notna().tolist() == [True, False, True, False, True]  # measure_every = 20


def test_pcfg_marks_are_the_students_schedule(pcfg):
    marks = pd.read_csv(pcfg["report"] / "pcfg_teacher_marks.csv")
    sched = pcfg["summaries"]["equal-split"]["schedule"]
    steps = sorted({s for s, _ in sched if isinstance(s, int)})
    assert steps == [10, 20, 30] and marks["step"].tolist() == steps  # C_1 = 10, multiples below T0 = 40 ("final")
    first = marks[marks["first"]]
    assert first["step"].tolist() == [10] and first["rule"].tolist() == ["given"]
    t = _teacher_metrics(pcfg["plain"]).set_index("step")
    np.testing.assert_allclose(marks["test_loss"], t.loc[steps, "test_loss"], rtol=1e-12)  # evaluated steps
    assert set(marks["strategies"]) == {"equal-split"}  # ce and oneshot use no intermediate checkpoint


def test_pcfg_student_curves_are_medians_over_seeds(pcfg):
    csv = pd.read_csv(pcfg["report"] / "pcfg_students.csv")
    m = load_metrics(pcfg["plain"], kind="pcfg-student")
    assert set(csv["strategy"]) == {"ce", "oneshot", "equal-split"}
    for strategy, grp in m.groupby("strategy"):
        direct = grp.groupby("samples")["test_accuracy"]
        got = csv[csv["strategy"] == strategy].set_index("samples")
        np.testing.assert_allclose(got["median"], direct.median(), rtol=1e-12)
        np.testing.assert_allclose(got["min"], direct.min(), rtol=1e-12)
        np.testing.assert_allclose(got["max"], direct.max(), rtol=1e-12)
        assert (got["n"] == 3).all()
    ref = pcfg["summaries"]["ce"]["teacher_final_accuracy"]
    np.testing.assert_allclose(csv["teacher_final_accuracy"], ref, rtol=1e-12)
    assert ref == pytest.approx(_teacher_metrics(pcfg["plain"])["test_accuracy"].iloc[-1], rel=1e-12)


def test_pcfg_features_are_medians_of_the_per_seed_finals(pcfg):
    csv = pd.read_csv(pcfg["report"] / "pcfg_features.csv")
    assert set(csv["measure"]) == {"m_close", "m_robust", "probe_level"}
    assert sorted(csv.loc[csv["measure"] == "probe_level", "n"].unique()) == [1, 2]  # depth-3 grammar
    for strategy, summary in pcfg["summaries"].items():
        for row in csv[csv["strategy"] == strategy].itertuples(index=False):
            finals = [r[f"final_{row.measure}_{row.n}"] for r in summary["runs"]]  # the engine's per-seed finals
            assert row.median == pytest.approx(float(np.median(finals)), rel=1e-12)
            assert (row.min, row.max, row.seeds) == pytest.approx((min(finals), max(finals), 3), rel=1e-12)
    base = csv[csv["strategy"] == TD.SURFACE_BASELINE].set_index("n")  # the probe's surface baseline, per level
    assert sorted(base.index) == [1, 2] and set(base["measure"]) == {"probe_level"}
    for n in (1, 2):  # one value: the same sentences and probe for every student program
        finals = {r[f"final_probe_base_level_{n}"] for s in pcfg["summaries"].values() for r in s["runs"]}
        assert len(finals) == 1 and base.loc[n, "median"] == pytest.approx(finals.pop(), rel=1e-12)


def test_pcfg_speed_table_agrees_with_compare_json(pcfg):
    table = pd.read_csv(pcfg["report"] / "pcfg_students_summary.csv").set_index("strategy")
    for row in pcfg["index"]["rows"]:  # distill.runs.strategy_row: medians from the summaries
        got = table.loc[row["strategy"]]
        for pct in (80, 90, 95):
            want = row[f"samples_to_{pct}pct_of_teacher"]
            have = got[f"samples to {pct}% of teacher"]
            assert (np.isnan(have) if want is None else have == want), (row["strategy"], pct)
        assert got["final accuracy"] == pytest.approx(row["final_accuracy"], rel=1e-12)
        assert got["m_robust_5"] == pytest.approx(row["m_robust_5"], rel=1e-12)


def test_sweep_and_plain_compare_dirs_give_the_same_numbers(pcfg, tmp_path):
    build_report(pcfg["sweep"], tmp_path)
    for name in ("pcfg_teacher", "pcfg_teacher_marks", "pcfg_students", "pcfg_features", "pcfg_students_summary"):
        a = pd.read_csv(pcfg["report"] / f"{name}.csv").drop(columns="experiment")
        b = pd.read_csv(tmp_path / f"{name}.csv").drop(columns="experiment")
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12)
    run = [p.name for p in pcfg["sweep"].iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert pd.read_csv(tmp_path / "pcfg_teacher.csv")["experiment"].unique().tolist() == run  # keyed by the sweep run
    assert pd.read_csv(pcfg["report"] / "pcfg_teacher.csv")["experiment"].unique().tolist() == [
        pcfg["index"]["index"]["teacher"]]  # keyed by the teacher's directory


def test_parity_csvs_are_the_logs(parity):
    out, m = parity["report"], load_metrics(parity["sweep"])
    t = m[m["role"] == "teacher"].sort_values("step")
    csv = pd.read_csv(out / "parity_transformer.csv")
    for col in ("test_accuracy", "corr1_in_mean", "corr1_off_mean", "corr1_off_max", "attn_in_support",
                "attn_off_support"):
        np.testing.assert_allclose(csv[col], t[col], rtol=1e-12)
    curves = pd.read_csv(out / "parity_transformer_students.csv")
    s = m[m["role"] == "two-shot"].groupby("samples")["test_accuracy"].median()
    np.testing.assert_allclose(curves[curves["strategy"] == "two-shot"].set_index("samples")["median"], s, rtol=1e-12)
    plain = parity["plain"]
    index = json.loads((plain / "compare.json").read_text())["index"]
    sched = json.loads((plain / index["students"]["two-shot"] / "summary.json").read_text())
    marks = pd.read_csv(out / "parity_transformer_marks.csv")
    assert marks["step"].tolist() == [s for s, _ in sched["schedule"] if isinstance(s, int)]
    assert marks["first"].tolist() == [True] and marks["step"].iloc[0] == sched["checkpoint_choice"]["step"]
    summary = pd.read_csv(out / "parity_transformer_summary.csv").set_index("strategy")
    finals = m[m["role"] != "teacher"].sort_values("step").groupby(["role", "run"])["test_accuracy"].last()
    for strategy in ("ce", "two-shot"):
        assert summary.loc[strategy, "final accuracy"] == pytest.approx(float(np.median(finals[strategy])), rel=1e-12)


# ---------------------------------------------------------------- report structure

def _png_ok(path) -> None:
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert path.stat().st_size > 10_000 and img.shape[0] > 200 and img.shape[1] > 400
    assert img[..., :3].std() > 0.05  # not blank


def test_report_files_and_sections(pcfg, parity):
    md = (pcfg["report"] / "report.md").read_text()
    for name in PCFG_FIGURES:
        _png_ok(pcfg["report"] / f"{name}.png")
        assert f"]({name}.png)" in md and f"[{name}.csv]({name}.csv)" in md
    assert "Figures 4, 22" in md and "Figure 5" in md and "| equal-split |" in md
    assert "parity_transformer" not in md  # family without runs: no section, no note
    assert "strategies.png" not in md and "Theory alone" not in md and "Missing figures" not in md  # no MLP runs
    html = (pcfg["report"] / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3
    pmd = (parity["report"] / "report.md").read_text()
    _png_ok(parity["report"] / "parity_transformer.png")
    assert "![Parity Transformers (Figures 11-13)](parity_transformer.png)" in pmd and "pcfg_teacher" not in pmd


def test_mlp_only_dir_has_no_transformer_sections(mlp, tmp_path):
    sections = build_report(mlp, tmp_path, n_boot=20)
    assert [s.name for s in sections] == ["strategies", "curriculum", "theory", "scaling", "batch_width"]
    md = (tmp_path / "report.md").read_text()
    assert "PCFG" not in md and "Parity Transformers" not in md
    assert not any((tmp_path / f"{n}.png").exists() for n in (*PCFG_FIGURES, "parity_transformer"))


def test_mixed_dir_has_both_and_students_only_dir_gets_a_note(pcfg, parity, mlp, tmp_path):
    mixed = tmp_path / "mixed"
    for src in (mlp, parity["sweep"], pcfg["plain"]):
        for run in src.iterdir():
            if run.is_dir() and not run.name.startswith("."):
                shutil.copytree(run, mixed / run.name)
    names = [s.name for s in build_report(mixed, tmp_path / "r1", n_boot=20)]
    assert names == ["strategies", "curriculum", "theory", "scaling", "batch_width", *PCFG_FIGURES,
                     "parity_transformer"]
    only = tmp_path / "students"  # the student runs without their teacher
    for strategy, name in pcfg["index"]["index"]["students"].items():
        shutil.copytree(pcfg["plain"] / name, only / name)
    sections = {s.name: s for s in build_report(only, tmp_path / "r2")}
    assert sections["pcfg_teacher"].figure is None and "left out" in sections["pcfg_teacher"].note
    assert sections["pcfg_students"].figure == "pcfg_students.png"
    md = (tmp_path / "r2" / "report.md").read_text()
    assert "PCFG teacher: left out" in md and not (tmp_path / "r2" / "pcfg_teacher.png").exists()


def test_marks_fall_back_to_the_logged_sources(pcfg, tmp_path):
    plain = tmp_path / "plain"
    shutil.copytree(pcfg["plain"], plain)
    for name in pcfg["index"]["index"]["students"].values():
        path = plain / name / "summary.json"
        path.write_text(json.dumps({k: v for k, v in json.loads(path.read_text()).items() if k != "schedule"}))
    marks = TD.transformer_frames(plain).marks
    # equal-split's stages [10, 20, 30, final] x 5 steps, evaluated at steps 0, 10, 20: sources 10, 20, final
    assert marks["step"].tolist() == [10, 20] and marks["first"].tolist() == [True, False]
    assert set(marks["strategy"]) == {"equal-split"} and set(marks["rule"]) == {"from metrics"}


# ---------------------------------------------------------------- pure functions, closed forms

def _students(acc_by_run: dict, samples=(0, 100, 200, 300), strategy="s", experiment="e") -> pd.DataFrame:
    rows = []
    for run, accs in acc_by_run.items():
        for i, (n, a) in enumerate(zip(samples, accs)):
            rows.append({"family": "pcfg", "experiment": experiment, "strategy": strategy, "run": run, "seed": run,
                         "step": i * 10, "samples": n, "test_accuracy": a,
                         "m_close_3": np.nan if i % 2 else 0.1 * (run + 1) + i})
    return pd.DataFrame(rows)


def test_speed_table_closed_form():
    s = _students({0: [0.1, 0.8, 0.9, 0.95], 1: [0.1, 0.2, 0.9, 0.95], 2: [0.1, 0.2, 0.3, 0.5]})
    exps = pd.DataFrame([{"family": "pcfg", "experiment": "e", "label": "e", "teacher_run": 0,
                          "reference_accuracy": 1.0}])
    empty = pd.DataFrame()
    t = TD.speed_table(TD.TransformerFrames(exps, empty, s, empty)).iloc[0]
    # 80% of 1.0: runs reach at 100, 200, never -> median 200; 90%: 200, 200, never -> 200;
    # 95%: 300, 300, never -> 300; finals 0.95, 0.95, 0.5 -> 0.95
    assert (t["samples to 80% of teacher"], t["samples to 90% of teacher"], t["samples to 95% of teacher"]) == (
        200, 200, 300)
    assert t["final accuracy"] == 0.95 and t["runs"] == 3
    # m_close_3 logged at i = 0, 2 only: last logged value 0.1 (run + 1) + 2 -> median over runs 2.2
    assert t["m_close_3"] == pytest.approx(2.2)
    half = TD.speed_table(TD.TransformerFrames(exps.assign(reference_accuracy=2.0), empty, s, empty)).iloc[0]
    assert np.isnan(half["samples to 80% of teacher"])  # 1.6 is never reached: median not reached


def test_run_finals_and_feature_table_take_last_logged_value():
    s = _students({0: [0.1, 0.2, 0.3, 0.4], 1: [0.5, 0.6, 0.7, 0.8]})
    finals = TD.run_finals(s).set_index("run")
    assert finals["test_accuracy"].tolist() == [0.4, 0.8]
    np.testing.assert_allclose(finals["m_close_3"], [2.1, 2.2])  # step 20 (i = 2), not the NaN at i = 3
    ft = TD.feature_table(s).iloc[0]
    assert (ft["measure"], ft["n"], ft["seeds"]) == ("m_close", 3, 2)
    assert ft["median"] == pytest.approx(2.15) and (ft["min"], ft["max"]) == pytest.approx((2.1, 2.2))


def test_mark_points_interpolate_between_evaluations():
    curve = pd.DataFrame({"experiment": "e", "step": [0, 100, 200], "test_loss": [3.0, 2.0, 1.0]})
    marks = pd.DataFrame([{"family": "pcfg", "experiment": "e", "strategy": st, "order": 0, "step": step,
                           "stage_steps": 5, "first": first, "rule": rule}
                          for st, step, first, rule in (("a", 50, True, "accuracy"), ("b", 50, False, ""),
                                                        ("b", 100, False, ""))])
    pts = TD.mark_points(marks, curve)
    assert pts["step"].tolist() == [50, 100] and pts["test_loss"].tolist() == [2.5, 2.0]
    assert pts["first"].tolist() == [True, False] and pts["strategies"].tolist() == ["a,b", "b"]
    assert pts["rule"].tolist() == ["accuracy", ""]


def test_family_of_kinds():
    assert [TD.family_of(k) for k in ("pcfg-teacher", "pcfg-compare", "parity-transformer-student",
                                      "compare", "teacher", None, "pcfg-other")] == [
        "pcfg", "pcfg", "parity", None, None, None, None]
    assert TD.has_mlp_runs(pd.DataFrame({"kind": ["compare"]}))
    assert not TD.has_transformer_runs(pd.DataFrame({"kind": ["compare"]}))
    assert not TD.has_transformer_runs(pd.DataFrame())
