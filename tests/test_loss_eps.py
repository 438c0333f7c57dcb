"""Samples to a test-loss target and the final test loss (issue #15, part 3: the theorems speak of loss):
:func:`infra.logs.summary_from_log`'s ``loss_eps`` keys on planted logs, a compare's rows
(:func:`infra.compare.strategy_row`, :func:`infra.compare.run_compare`) and the results store's columns
on tiny real runs, each checked against the run's own metrics."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from infra import store
from infra.compare import strategy_row
from infra.logs import LOSS_EPS, summary_from_log
from theory import ParameterError

NEW_KEYS = ["steps_to_loss_eps", "samples_to_loss_eps", "final_loss"]
# the loss first gets to <= 0.1 at step 300 (inclusive), rises again, then ends at 0.01
LOSS = [0.7, 0.6, 0.3, 0.1, 0.05, 0.2, 0.01]
ACC = [0.5, 0.55, 0.9, 0.96, 0.99, 0.97, 1.0]


def _log(loss, acc=ACC, every=100, batch=2, **extra):
    return [{"step": i * every, "samples": i * every * batch, "test_loss": v, "test_accuracy": a, **extra}
            for i, (v, a) in enumerate(zip(loss, acc))]


def test_loss_crosses_eps_at_the_planted_step():
    assert LOSS_EPS == 0.1
    s = summary_from_log(_log(LOSS))
    assert (s["steps_to_loss_eps"], s["samples_to_loss_eps"], s["final_loss"]) == (300, 600, 0.01)
    s = summary_from_log(_log(LOSS), loss_eps=0.05)
    assert (s["steps_to_loss_eps"], s["samples_to_loss_eps"]) == (400, 800)
    s = summary_from_log(_log(LOSS), loss_eps=0.011)  # only the last row
    assert (s["steps_to_loss_eps"], s["samples_to_loss_eps"]) == (600, 1200)
    s = summary_from_log(_log(LOSS), batch_size=8)  # samples = steps x batch, as for the accuracy keys
    assert (s["samples_to_loss_eps"], s["samples_to_95"]) == (2400, 2400)
    rows = _log(LOSS)
    shuffled = rows[::-1] + [dict(rows[3], test_loss=0.9)]  # order does not matter; a repeated step: the last row
    s = summary_from_log(shuffled + [rows[3]])
    assert (s["steps_to_loss_eps"], s["final_loss"]) == (300, 0.01)


def test_loss_that_never_crosses_and_logs_without_loss_or_samples():
    s = summary_from_log(_log([0.7, 0.5, 0.3, 0.2]))
    assert (s["steps_to_loss_eps"], s["samples_to_loss_eps"], s["final_loss"]) == (None, None, 0.2)
    no_loss = [{k: v for k, v in r.items() if k != "test_loss"} for r in _log(LOSS)]
    s = summary_from_log(no_loss)
    assert (s["steps_to_loss_eps"], s["samples_to_loss_eps"], s["final_loss"]) == (None, None, None)
    no_samples = [{k: v for k, v in r.items() if k != "samples"} for r in _log(LOSS)]
    s = summary_from_log(no_samples)
    assert (s["steps_to_loss_eps"], s["samples_to_loss_eps"], s["final_loss"]) == (300, None, 0.01)
    s = summary_from_log(_log([0.7, float("nan"), float("nan")]))  # a diverged run: NaN never counts
    assert s["steps_to_loss_eps"] is None and math.isnan(s["final_loss"])


def test_one_run_of_a_multi_run_log():
    log = _log(LOSS, run=0) + _log([0.7, 0.08, 0.02, 0.02, 0.02, 0.02, 0.03], run=1)
    assert summary_from_log(log, run=0)["steps_to_loss_eps"] == 300
    assert [summary_from_log(log, run=1)[k] for k in NEW_KEYS] == [100, 200, 0.03]


def test_the_accuracy_keys_are_unchanged_and_the_loss_keys_come_last():
    s = summary_from_log(_log(LOSS))
    assert list(s)[-3:] == NEW_KEYS
    assert {k: v for k, v in s.items() if k not in NEW_KEYS} == {
        "steps_to_60": 200, "samples_to_60": 400, "steps_to_95": 300, "samples_to_95": 600,
        "steps_to_99": 400, "samples_to_99": 800, "final_step": 600, "final_accuracy": 1.0,
        "corr1_gap_peak": None, "corr1_gap_peak_step": None}
    # the loss target does not move any accuracy key
    other = summary_from_log(_log(LOSS), loss_eps=0.5)
    assert {k: v for k, v in other.items() if k not in NEW_KEYS} == {k: v for k, v in s.items() if k not in NEW_KEYS}


@pytest.mark.parametrize("eps", [0, -0.1, float("nan"), float("inf"), "x"])
def test_bad_loss_eps_names_the_argument(eps):
    with pytest.raises(ParameterError, match="loss_eps"):
        summary_from_log(_log(LOSS), loss_eps=eps)


def _run_dir(path, runs):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"kind": "StudentConfig"}))
    (path / "summary.json").write_text(json.dumps({"kind": "student", "strategy": "oneshot", "runs": runs}))
    return path


def test_strategy_row_medians_of_the_loss_keys(tmp_path):
    runs = [{"run": r, "seed": r, "samples_to_95": s95, "samples_to_99": None, "final_accuracy": 1.0,
             "samples_to_loss_eps": se, "final_loss": fl}
            for r, (s95, se, fl) in enumerate([(100, 200, 0.01), (300, None, 0.3), (200, 400, 0.02)])]
    row = strategy_row("oneshot", _run_dir(tmp_path / "new", runs))
    assert row["samples_to_loss_eps"] == 400.0  # median of 200, 400 and never (+infinity)
    assert row["final_loss"] == pytest.approx(0.02)
    assert list(row) == ["strategy", "samples_to_95", "samples_to_95_min", "samples_to_95_max", "samples_to_99",
                         "samples_to_99_min", "samples_to_99_max", "samples_to_loss_eps", "seeds",
                         "final_accuracy", "final_loss"]
    never = [dict(r, samples_to_loss_eps=None) for r in runs]
    assert strategy_row("oneshot", _run_dir(tmp_path / "never", never))["samples_to_loss_eps"] is None
    with_min_max = strategy_row("oneshot", tmp_path / "new", speed_keys=("samples_to_loss_eps",))
    assert (with_min_max["samples_to_loss_eps_min"], with_min_max["samples_to_loss_eps_max"]) == (200, None)
    old = [{k: v for k, v in r.items() if k not in NEW_KEYS} for r in runs]  # written before: no loss columns
    assert not set(strategy_row("oneshot", _run_dir(tmp_path / "old", old))) & {"samples_to_loss_eps", "final_loss"}


# ---------------------------------------------------------------- tiny real runs

TEACHER = {"d": 10, "k": 2, "width": 64, "steps": 2000, "eval_every": 250, "checkpoint_every": 500, "device": "cpu"}
STUDENT = {"width": 32, "steps": 2000, "eval_every": 250, "stage_steps": 500, "device": "cpu"}


def _first_loss_step(metrics: pd.DataFrame, eps: float = LOSS_EPS):
    """The first logged samples with test loss <= eps, recomputed from a run's metrics (None: never)."""
    m = metrics.sort_values("step")
    hit = np.flatnonzero(m["test_loss"].to_numpy() <= eps)
    return int(m["samples"].iloc[hit[0]]) if len(hit) else None


def test_a_compare_row_carries_the_students_and_the_teachers_loss(tmp_path, one_thread):
    from simulate.compare import run_compare
    from simulate.config import CompareConfig, StudentConfig, TeacherConfig

    cfg = CompareConfig(teacher=TeacherConfig(**TEACHER), student=StudentConfig(**STUDENT, seeds=(0, 1)),
                        strategies=("ce", "oneshot"))
    rows = run_compare(cfg, tmp_path, progress=False)
    index = json.loads((tmp_path / "compare.json").read_text())["index"]
    tdir = tmp_path / index["teacher"]
    tmetrics = pd.read_parquet(tdir / "metrics.parquet")
    t_eps, t_final = _first_loss_step(tmetrics), float(tmetrics.sort_values("step")["test_loss"].iloc[-1])
    assert t_eps is not None  # the tiny teacher gets there, so the check below is not None == None
    for row in rows:
        assert row["teacher_samples_to_loss_eps"] == t_eps and row["teacher_final_loss"] == pytest.approx(t_final)
        sm = pd.read_parquet(tmp_path / index["students"][row["strategy"]] / "metrics.parquet")
        per_seed = [_first_loss_step(g) for _, g in sm.groupby("run")]
        finals = [float(g.sort_values("step")["test_loss"].iloc[-1]) for _, g in sm.groupby("run")]
        assert row["samples_to_loss_eps"] == np.median([math.inf if v is None else v for v in per_seed])
        assert row["final_loss"] == pytest.approx(float(np.median(finals)))
    # the ce row reaches 95% accuracy before the loss target: the two keys are measured apart
    ce = next(r for r in rows if r["strategy"] == "ce")
    assert ce["samples_to_95"] < ce["samples_to_loss_eps"]
    # the store: teacher and student rows carry the keys
    df = store.load_results(tmp_path)
    assert set(df["kind"]) == {"teacher", "student"}
    teacher = df[df["kind"] == "teacher"].iloc[0]
    assert teacher["samples_to_loss_eps"] == t_eps and teacher["final_loss"] == pytest.approx(t_final)
    assert df[["samples_to_loss_eps", "steps_to_loss_eps", "final_loss"]].notna().all().all()


def test_compare_sweep_results_have_the_loss_columns(tmp_path, one_thread):
    from experiments.sweep import parse_sweep, run_sweep

    sweep = parse_sweep({"kind": "compare", "base": {"teacher": TEACHER, "student": STUDENT,
                                                     "strategies": ["ce", "oneshot"]},
                         "grid": {"teacher.seeds": [0], "student.seeds": [0, 1]}})
    outcome = run_sweep(sweep, tmp_path, progress=False)
    assert len(outcome.done) == 2 and not outcome.failed
    df = store.load_results(tmp_path)
    assert len(df) == 4 and set(df["kind"]) == {"compare"}
    assert {"samples_to_loss_eps", "final_loss", "teacher_final_loss", "teacher_samples_to_loss_eps"} <= set(df.columns)
    metrics = store.load_metrics(tmp_path)
    for row in df.itertuples(index=False):
        mine = metrics[metrics["run_hash"] == row.run_hash]
        teacher, student = mine[mine["role"] == "teacher"], mine[mine["role"] == row.strategy]
        assert row.samples_to_loss_eps == _first_loss_step(student)
        assert row.teacher_samples_to_loss_eps == _first_loss_step(teacher) is not None
        assert row.final_loss == pytest.approx(float(student.sort_values("step")["test_loss"].iloc[-1]))
        assert row.teacher_final_loss == pytest.approx(float(teacher.sort_values("step")["test_loss"].iloc[-1]))


def test_the_scaling_sweep_files_parse_with_five_d_values(tmp_path):
    """``scaling_online.yaml`` (5 values of d over 4x, 3 teacher x 5 student seeds, the four strategies) and its
    smoke version expand before any work; no training here."""
    from experiments.sweep import SWEEPS_DIR, expand, load_sweep

    full = expand(load_sweep(SWEEPS_DIR / "scaling_online.yaml"))
    ds = sorted({s.config.teacher.d for s in full})
    assert len(ds) >= 5 and ds[-1] >= 4 * ds[0] and {s.config.teacher.k for s in full} == {4}
    assert len(full) == len(ds) * 3 * 5
    assert {tuple(s.config.strategies) for s in full} == {("ce", "oneshot", "two-shot", "equal-split")}
    smoke = expand(load_sweep(SWEEPS_DIR / "scaling_online_smoke.yaml"))
    assert len({s.config.teacher.d for s in smoke}) == 2 and len(smoke) == 2 * 1 * 2
    def point(cfg):  # a run's config without its seeds
        return dataclasses.replace(cfg, teacher=dataclasses.replace(cfg.teacher, seeds=(0,)),
                                   student=dataclasses.replace(cfg.student, seeds=(0,)))

    by_d = {s.config.teacher.d: point(s.config) for s in full}
    for s in smoke:  # the smoke points are points of the full sweep
        assert point(s.config) == by_d[s.config.teacher.d]
