"""``icurr results``: a single run directory, ``--by/--agg`` summaries, ``run_dir``, the compare schema (one
strategy column, each shared teacher's metrics once) and ``--diff``; on planted run directories (the files a
sweep of compares writes: ``config.json``, ``summary.json``, ``metrics.parquet``)."""
from __future__ import annotations

import dataclasses
import json
import os

import pandas as pd
import pytest
from cli_helpers import run_icurr

from infra import store
from infra.config import config_hash, config_to_dict
from simulate.config import CompareConfig

#: samples to 95% per strategy, one entry per student seed 0, 1, 2 (None: never reached)
PLANTED = {"ce": [1000, 2000, 6000], "oneshot": [4000, 4000, 4000], "two-shot": [500, 1000, None]}


def plant_compare(root, seed: int, samples: dict, *, teacher_steps=(0, 100, 200)):
    """A finished compare run of student seed ``seed`` below ``root`` (the layout of a sweep's split
    compare): its config, a summary with ``samples[strategy][seed]`` as each student's samples to 95%,
    and metrics rows of the shared teacher (``teacher_steps``) and of every student. Returns its path."""
    cfg = CompareConfig()
    cfg = dataclasses.replace(cfg, strategies=tuple(samples), student=dataclasses.replace(cfg.student, seeds=(seed,)))
    path = root / config_hash(cfg)
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config_to_dict(cfg)))
    students = {s: {"run": 0, "seed": seed, "samples_to_95": v[seed], "samples_to_99": v[seed],
                    "steps_to_95": v[seed], "final_accuracy": 1.0 if v[seed] else 0.5, "diverged_at": None}
                for s, v in samples.items()}
    teacher = {"run": 0, "seed": 0, "samples_to_95": 15000, "final_accuracy": 1.0}
    rows = [{"step": t, "test_accuracy": 0.5 + t / 1000, "seed": 0, "role": "teacher"} for t in teacher_steps]
    rows += [{"step": 0, "test_accuracy": 0.5, "seed": seed, "role": s} for s in samples]
    pd.DataFrame(rows).to_parquet(path / "metrics.parquet", index=False)
    (path / "summary.json").write_text(json.dumps({"kind": "compare", "strategies": list(samples),
                                                   "teacher": teacher, "students": students}))
    return path


@pytest.fixture
def planted(tmp_path):
    root = tmp_path / "sweep"
    paths = [plant_compare(root, seed, PLANTED) for seed in range(3)]
    return root, paths


def _json(*args):
    out = run_icurr("results", *args, "--format", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_compare_rows_have_one_strategy_column_with_each_rows_strategy(planted):
    root, paths = planted
    df = store.load_results(root)
    # the template's student.strategy ("progressive", the StudentConfig default) trained no row
    assert not [c for c in df.columns if c.endswith(".strategy")] and "student.strategy" not in df.columns
    assert sorted(df["strategy"]) == sorted(list(PLANTED) * 3)
    got = df.set_index(["strategy", "student.seed"])["samples_to_95"]
    assert got["ce", 2] == 6000 and got["oneshot", 0] == 4000 and pd.isna(got["two-shot", 2])
    assert (df["teacher_samples_to_95"] == 15000).all()
    assert df.groupby("run_dir")["strategy"].apply(sorted).to_dict() == {os.path.abspath(p): sorted(PLANTED)
                                                                          for p in paths}


def test_supervision_compares_leave_out_their_template_field():
    cfg = {"kind": "ParityTwoStageCompareConfig", "supervisions": ["labels", "progressive"],
           "student": {"supervision": "labels", "width": 8}, "teacher": {"d": 8}}
    assert store.compared_fields(cfg) == ["student.supervision"]
    assert store.compared_fields({"kind": "TeacherConfig", "seeds": [0, 1], "width": 8}) == []


def test_a_shared_teachers_metrics_appear_once(planted):
    root, paths = planted
    m = store.load_metrics(root, shared_teachers="once")
    teacher = m[m["role"] == "teacher"]
    assert sorted(teacher["step"]) == [0, 100, 200]  # three run directories hold copies of these rows
    assert set(teacher["run_dir"]) == {os.path.abspath(sorted(paths)[0])}
    assert len(m[m["role"] != "teacher"]) == 3 * len(PLANTED)
    each = store.load_metrics(root)  # the default: every run directory read whole
    assert len(each[each["role"] == "teacher"]) == 9 and len(each) == len(m) + 6
    rows = _json(str(root), "--metrics")
    assert sorted(r["step"] for r in rows if r["role"] == "teacher") == [0, 100, 200]
    with pytest.raises(store.ParameterError, match="shared_teachers must be"):
        store.load_metrics(root, shared_teachers="twice")


def test_a_single_run_directory_is_a_results_directory(planted):
    root, paths = planted
    rows = _json(str(paths[1]))
    assert [r["strategy"] for r in rows] == list(PLANTED)
    assert {r["run_dir"] for r in rows} == {os.path.abspath(paths[1])}
    assert [r["samples_to_95"] for r in rows] == [2000, 4000, 1000]
    out = run_icurr("results", str(paths[1]), "--format", "csv")
    header = out.stdout.splitlines()[0].split(",")
    assert "run_dir" in header and header.count("strategy") == 1 and "student.strategy" not in header
    table = run_icurr("results", str(paths[1]))
    assert table.returncode == 0 and "two-shot" in table.stdout
    assert "run_dir" not in table.stdout.splitlines()[1].split()  # the header row: json / csv only


@pytest.mark.parametrize("agg, ce, two_shot", [("median", 2000, 1000), ("mean", 3000, None), ("min", 1000, 500),
                                               ("max", 6000, None)])
def test_by_strategy_aggregates_samples_to_target(planted, agg, ce, two_shot):
    root, _ = planted
    rows = {r["strategy"]: r for r in _json(str(root), "--by", "strategy", "--agg", agg)}
    assert set(rows) == set(PLANTED) and all(r["n"] == 3 for r in rows.values())
    # None in JSON: the aggregate never reached 95% (a run that never got there counts as infinite)
    assert rows["ce"]["samples_to_95"] == ce and rows["two-shot"]["samples_to_95"] == two_shot
    assert rows["oneshot"]["samples_to_99"] == 4000
    assert set(rows["ce"]) == {"strategy", "n", "samples_to_95", "samples_to_99"}


def test_by_table_says_never_and_checks_its_columns(planted):
    root, _ = planted
    out = run_icurr("results", str(root), "--by", "strategy", "--agg", "max")
    line = next(x for x in out.stdout.splitlines() if x.split()[:1] == ["two-shot"])
    assert line.split() == ["two-shot", "3", "never", "never"]
    df = store.summarize(store.load_results(root), ["strategy", "student.seed"], "min")
    assert len(df) == 9 and (df["n"] == 1).all()
    bad = run_icurr("results", str(root), "--by", "strategy,widht")
    assert bad.returncode == 2 and "by must name columns" in bad.stderr and "'widht'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    with pytest.raises(store.ParameterError, match="agg must be one of"):
        store.summarize(store.load_results(root), ["strategy"], "mode")


def test_diff_shows_differing_config_keys_and_summaries_side_by_side(planted):
    _, paths = planted
    a, b = paths[0], paths[2]
    got = _json("--diff", str(a), str(b))
    assert got["config"] == [{"key": "student.seed", "a": 0, "b": 2}]
    summary = {r["key"]: (r["a"], r["b"]) for r in got["summary"]}
    assert summary["ce.samples_to_95"] == (1000, 6000) and summary["two-shot.samples_to_95"] == (500, None)
    assert summary["teacher.samples_to_95"] == (15000, 15000)
    assert not [k for k in summary if "steps_to_" in k]
    table = run_icurr("results", "--diff", str(a), str(b))
    assert table.returncode == 0 and f"# a: {a}" in table.stdout
    line = next(x for x in table.stdout.splitlines() if "student.seed" in x)
    assert line.split() == ["config", "student.seed", "0", "2"]


def test_diff_refuses_a_directory_that_is_not_a_run(planted):
    root, paths = planted
    out = run_icurr("results", "--diff", str(paths[0]), str(root))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert f"diff: {str(root)!r} is not a run directory" in out.stderr
    both = run_icurr("results", str(root), "--diff", str(paths[0]), str(paths[1]))
    assert both.returncode == 2 and "--diff A B takes no DIR" in both.stderr
    neither = run_icurr("results")
    assert neither.returncode == 2 and "results needs DIR" in neither.stderr
