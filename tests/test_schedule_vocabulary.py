"""One vocabulary of distillation in both engines: renamed config fields that old run directories still
load, one first-checkpoint chooser, one schedule builder (the schedules each engine built before it,
written out literally), one strategy row, and the renamed Transformer summary keys."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from distill.config import (ParityTransformerStudentConfig, PcfgCompareConfig, PcfgStudentConfig,
                            PcfgTeacherConfig)
from distill.runs import run_summary, strategy_row as transformer_row
from distill.runs import student_schedule as transformer_schedule
from distill.text_config import TextStudentConfig
from infra import schedule as S
from infra.compare import strategy_row
from infra.config import apply_overrides, config_from_dict, config_to_dict
from infra.first_checkpoint import choose_first_checkpoint
from infra.store import load_results
from simulate.compare import strategy_row as mlp_row
from simulate.config import CompareConfig, StudentConfig, TeacherConfig
from simulate.student import student_schedule as mlp_schedule
from theory._checks import ParameterError

OLD_NAMES = {"first_checkpoint": "intermediate", "first_rule": "intermediate_rule"}
NEW_FIELDS = ("first_skip", "first_smooth", "split")  # not in a config.json written before the rename


def old_student_dict(cfg: StudentConfig) -> dict:
    """``config.json`` of an MLP student as the code before the rename wrote it."""
    return {OLD_NAMES.get(k, k): v for k, v in config_to_dict(cfg).items() if k not in NEW_FIELDS}


# ------------------------------------------------------------------ config fields and aliases

def test_old_student_config_json_loads_as_the_new_names(tmp_path):
    new = StudentConfig(first_checkpoint="12000", first_rule="correlation_gap", seeds=(0, 1))
    old = old_student_dict(new)
    assert "intermediate" in old and "intermediate_rule" in old and "first_checkpoint" not in old
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))  # a stored run directory of before the rename
    assert config_from_dict(StudentConfig, json.loads(path.read_text())) == new
    assert config_from_dict(StudentConfig, config_to_dict(new)) == new


def test_result_store_shows_old_configs_under_the_new_names(tmp_path):
    old = dict(old_student_dict(StudentConfig(first_checkpoint="12000")), teacher="t")
    _run_dir(tmp_path / "old", old, {"kind": "student", "strategy": "two-shot",
                                     "runs": [{"run": 0, "seed": 0, "final_accuracy": 1.0, "samples_to_95": 5}]})
    df = load_results(tmp_path)
    assert df["first_checkpoint"].tolist() == ["12000"] and df["first_rule"].tolist() == ["accuracy"]
    assert not {"intermediate", "intermediate_rule"} & set(df.columns)


def test_old_compare_config_json_loads_its_student_section():
    new = CompareConfig(student=StudentConfig(first_rule="auto"), strategies=("ce", "two-shot"))
    old = dict(config_to_dict(new), student=old_student_dict(new.student))
    assert config_from_dict(CompareConfig, json.loads(json.dumps(old))) == new


def test_unknown_and_doubled_config_keys_are_still_refused():
    old = old_student_dict(StudentConfig())
    with pytest.raises(ParameterError, match="unknown config key"):
        config_from_dict(StudentConfig, dict(old, intermediate_step="5"))
    with pytest.raises(ParameterError, match="intermediate_rule"):
        config_from_dict(StudentConfig, dict(old, first_rule="accuracy"))
    with pytest.raises(ParameterError, match="unknown config key"):  # aliases are per config class
        config_from_dict(PcfgStudentConfig, dict(config_to_dict(PcfgStudentConfig()), intermediate="auto"))


def test_every_student_config_has_the_first_checkpoint_fields_with_its_engine_defaults():
    assert (StudentConfig().first_skip, StudentConfig().first_smooth, StudentConfig().split) == (0.0, 5, "teacher")
    for cls in (PcfgStudentConfig, ParityTransformerStudentConfig, TextStudentConfig):
        assert (cls().first_smooth, cls().first_skip, cls().split) == (3, 0.1, "teacher"), cls


@pytest.mark.parametrize("cls, word, pattern", [
    (StudentConfig, "first_skip=1", r"first_skip must lie in \[0, 1\)"),
    (StudentConfig, "first_skip=-0.1", "first_skip"),
    (StudentConfig, "first_smooth=0", r"first_smooth must be an integer in \[1, inf\)"),
    (StudentConfig, "split=both", "split must be one of teacher, student"),
    (StudentConfig, "first_rule=m_robust", "first_rule must be one of auto, accuracy, correlation_gap"),
    (StudentConfig, "first_checkpoint=soon", "first_checkpoint must be 'auto' or a teacher step"),
    (PcfgStudentConfig, "first_smooth=0", "first_smooth"),
    (PcfgStudentConfig, "first_rule=correlation_gap", "first_rule must be one of accuracy, m_robust"),
    (TextStudentConfig, "first_smooth=-1", "first_smooth"),
    (ParityTransformerStudentConfig, "first_smooth=0", "first_smooth"),
])
def test_new_fields_are_checked_naming_the_field_and_range(cls, word, pattern):
    with pytest.raises(ParameterError, match=pattern) as err:
        apply_overrides(cls(), [word])
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ the one chooser

def planted_log(T0: int = 40_000, every: int = 1000, mid: int = 12_000, width: float = 1500, runs=(0,)) -> pd.DataFrame:
    """A teacher log: a sigmoid accuracy rise centred at ``mid``; the correlation gap peaks at 0.8 mid,
    M_robust(3) at 0.7 mid and M_robust(5) at 0.5 mid."""
    s = np.arange(0, T0 + 1, every)
    acc = 0.5 + 0.5 / (1 + np.exp(-(s - mid) / width))
    frames = []
    for r in runs:
        frames.append(pd.DataFrame({
            "run": r, "step": s, "samples": s, "test_accuracy": acc, "test_loss": 1 - acc,
            "corr1_in_mean": np.exp(-((s - 0.8 * mid) / (2 * width)) ** 2), "corr1_off_max": 0.1,
            "m_robust_3": np.exp(-((s - 0.7 * mid) / (2 * width)) ** 2),
            "m_robust_5": np.exp(-((s - 0.5 * mid) / (2 * width)) ** 2)}))
    return pd.concat(frames, ignore_index=True)


AVAILABLE = list(range(0, 40_001, 2000))


def choose(log, **kw):
    return choose_first_checkpoint(log, teacher_steps=40_000, available=AVAILABLE, **kw)


def test_chooser_rules_on_a_planted_log():
    log = planted_log(runs=(0, 1))
    step, note = choose(log, rule="accuracy", run=1)
    assert step == 12_000 and note["rule"] == "accuracy" and note["criterion"] > 0
    assert set(note) == {"rule", "step", "criterion"}
    assert choose(log, rule="correlation_gap", run=0)[0] == 10_000  # 0.8 * 12000 = 9600 -> checkpoint 10000
    assert choose(log, rule="auto", run=0)[1]["rule"] == "correlation_gap"
    no_corr = log.drop(columns=["corr1_in_mean", "corr1_off_max"])
    assert choose(no_corr, rule="auto", run=0)[1]["rule"] == "accuracy"
    step, note = choose(log, rule="m_robust", run=0)
    assert (step, note["rule"], note["column"]) == (8000, "m_robust", "m_robust_3")  # 0.7 * 12000 = 8400
    assert note["criterion"] == pytest.approx(np.exp(-((8000 - 8400) / 3000) ** 2))
    with pytest.raises(ParameterError, match="run"):
        choose(log, rule="accuracy")  # two runs: which one


def test_chooser_given_step_skip_and_errors():
    assert choose(None, first_checkpoint="5000") == (4000, {"rule": "given", "step": 4000})  # tie: the earlier
    assert choose(None, first_checkpoint=37_500)[0] == 38_000
    with pytest.raises(ParameterError, match="outside the available checkpoints"):
        choose(None, first_checkpoint="40000")  # only intermediate checkpoints are candidates
    log = planted_log()
    # skip: the first skip * T0 teacher steps are left out; the m_robust peak moves to the first step kept
    assert choose(log, rule="m_robust", skip=0.25)[0] == 10_000
    assert choose(log, rule="accuracy", skip=0.5)[0] >= 20_000  # the rise at 12000 is left out
    with pytest.raises(ParameterError, match="first_skip"):
        choose(log[log["step"] < 30_000], rule="accuracy", skip=0.9)
    with pytest.raises(ParameterError, match="M_robust"):
        choose(log.drop(columns=["m_robust_3", "m_robust_5"]), rule="m_robust")
    with pytest.raises(ParameterError, match="intermediate teacher checkpoint"):
        choose_first_checkpoint(log, teacher_steps=40_000, available=[0, 40_000])


def test_chooser_smoothing_window():
    log = planted_log(T0=600, every=50, mid=250, width=40)
    kw = dict(teacher_steps=600, available=list(range(0, 601, 50)), rule="accuracy", skip=0.1)
    assert choose_first_checkpoint(log, smooth=3, **kw)[0] == 250
    smooth5, smooth3 = (choose_first_checkpoint(log, smooth=n, **kw)[1]["criterion"] for n in (5, 3))
    assert smooth5 < smooth3  # a wider window flattens the steepest rise


# ------------------------------------------------------------------ the one builder

class FakeTeacher:
    def __init__(self, df):
        self.df = df

    def metrics(self):
        return self.df


def mlp(strategy, tcfg=TeacherConfig(), log=None, **student):
    log = planted_log(tcfg.steps, tcfg.eval_every) if log is None else log
    cfg = StudentConfig(strategy=strategy, **student)
    sched, note = mlp_schedule(cfg, FakeTeacher(log), tcfg, list(range(0, tcfg.steps + 1, tcfg.checkpoint_every)))
    return sched.to_list(), note


def test_mlp_defaults_give_the_schedules_of_before():
    sched, note = mlp("progressive")
    assert sched == [(s, 4000) for s in range(2000, 40_000, 2000)] + [("final", 74_000)]
    assert note == {"n_checkpoints": 20, "stage_steps": 4000}
    sched, note = mlp("two-shot")
    assert sched == [(12_000, 4000), ("final", 146_000)]
    assert (note["rule"], note["step"], note["stage_steps"]) == ("accuracy", 12_000, 4000)
    sched, note = mlp("equal-split")
    assert sched == [(12_000, 6666), (24_000, 6667), (36_000, 6667), ("final", 130_000)]
    assert (note["n_checkpoints"], note["kappa"], note["split"]) == (3, 0.5, "teacher")
    assert mlp("ce")[0] == [("labels", 150_000)] and mlp("oneshot")[0] == [("final", 150_000)]
    assert mlp("extraction") == ([("extract:1", 5000), ("final", 145_000)], {
        "extract_layers": [1], "extract_steps": 5000, "projection_scale": 1.0, "projection_seed": 0})


def test_mlp_other_configs_give_the_schedules_of_before():
    small = TeacherConfig(d=10, k=2, width=256, steps=4000, eval_every=250, checkpoint_every=500)
    log = planted_log(4000, 250, mid=1300, width=150)
    kw = dict(steps=8000, eval_every=500, stage_steps=500)
    assert mlp("progressive", small, log, **kw)[0] == [(s, 500) for s in range(500, 4000, 500)] + [("final", 4500)]
    assert mlp("two-shot", small, log, **kw)[0] == [(1500, 500), ("final", 7500)]
    assert mlp("equal-split", small, log, **kw)[0] == [(1500, 1000), (3000, 1000), ("final", 6000)]
    assert mlp("equal-split", first_checkpoint="5000", kappa=1.0)[0] == (
        [(s, 4000) for s in range(4000, 40_000, 4000)] + [("final", 114_000)])
    assert mlp("two-shot", first_rule="auto")[0] == [(10_000, 4000), ("final", 146_000)]  # correlation gap
    assert mlp("equal-split", first_rule="correlation_gap")[0] == [
        (10_000, 5000), (20_000, 5000), (30_000, 5000), ("final", 135_000)]
    tiny = TeacherConfig(d=6, k=2, width=64, steps=3000, eval_every=250, checkpoint_every=500)
    kw = dict(steps=2000, eval_every=250, probe_every=0, stage_steps=500, n_checkpoints=3, first_checkpoint="1000")
    assert mlp("progressive", tiny, **kw)[0] == [(1000, 500), (2000, 500), ("final", 1000)]
    assert mlp("equal-split", tiny, **kw)[0] == [(1000, 500), (2000, 500), ("final", 1000)]
    assert mlp("progressive", n_checkpoints=4, stage_steps=0)[0] == [
        (10_000, 2000), (20_000, 2000), (30_000, 2000), ("final", 144_000)]
    assert mlp("equal-split", split="student", first_checkpoint="10000")[0] == [
        (10_000, 37_500), (20_000, 37_500), (30_000, 37_500), ("final", 37_500)]


PCFG_T = PcfgTeacherConfig()  # 600 steps, checkpoints every 50


def transformer(strategy, tcfg=PCFG_T, log=None, cls=PcfgStudentConfig, **student):
    log = planted_log(tcfg.steps, tcfg.eval_every, mid=250, width=40) if log is None else log
    cfg = cls(strategy=strategy, **student)
    sched, note = transformer_schedule(cfg, FakeTeacher(log), tcfg,
                                       list(range(0, tcfg.steps + 1, tcfg.checkpoint_every)))
    return sched.to_list(), note


def test_transformer_configs_give_the_schedules_of_before():
    assert transformer("two-shot")[0] == [(250, 150), ("final", 450)]
    sched, note = transformer("equal-split")
    assert sched == [(250, 150), (500, 150), ("final", 300)]
    assert (note["rule"], note["step"], note["n_checkpoints"], note["split"]) == ("accuracy", 250, 2, "teacher")
    assert transformer("equal-split", split="student", n_checkpoints=3)[0] == [(250, 300), (500, 300)]
    sched, note = transformer("equal-split", first_rule="m_robust")
    assert sched == [(150, 75), (300, 75), (450, 75), ("final", 375)] and note["column"] == "m_robust_3"
    assert transformer("two-shot", first_checkpoint="130", stage_steps=100)[0] == [(150, 100), ("final", 500)]
    tiny = dataclasses.replace(PCFG_T, steps=60, eval_every=20, checkpoint_every=20, measure_every=20,
                               probe_every=60, warmup=5)
    kw = dict(steps=40, eval_every=10, first_checkpoint="20", stage_steps=10, warmup=0, measure_every=0,
              probe_every=0)
    for strategy in ("progressive", "equal-split"):
        assert transformer(strategy, tiny, **kw)[0] == [(20, 10), (40, 10), ("final", 20)]
    assert transformer("two-shot", tiny, **kw)[0] == [(20, 10), ("final", 30)]


def test_progressive_means_the_same_schedule_in_both_engines():
    """Definition 2.2 over the teacher's saved checkpoints: the Transformer's progressive is the MLP's."""
    got, note = transformer("progressive", stage_steps=0)
    assert got == [(s, 50) for s in range(50, 600, 50)] + [("final", 50)]
    assert note == {"n_checkpoints": 12, "stage_steps": 50}
    direct = S.build_schedule("progressive", steps=600, teacher_steps=600, spacing=50, available=range(0, 601, 50))
    assert direct[0].to_list() == got
    assert transformer("progressive", n_checkpoints=3)[0] == [(200, 50), (400, 50), ("final", 500)]
    with pytest.raises(ParameterError, match="progressive needs steps >= n_checkpoints \\* stage_steps = 12 \\* 100"):
        transformer("progressive", stage_steps=100)


def test_builder_calls_the_chooser_only_when_needed_and_checks_the_plan():
    def never():
        raise AssertionError("first checkpoint asked for")

    for strategy in ("ce", "oneshot", "progressive", "extraction"):
        S.build_schedule(strategy, steps=4000, teacher_steps=4000, spacing=500, available=range(0, 4001, 500),
                         first=never, stage_steps=500, extract_steps=100)
    with pytest.raises(ParameterError, match="needs its first teacher checkpoint"):
        S.build_schedule("two-shot", steps=100, teacher_steps=100, spacing=10, available=range(0, 101, 10))
    with pytest.raises(ParameterError, match="two-shot needs steps >= 2 \\* stage_steps = 120; got steps = 100"):
        S.build_schedule("two-shot", steps=100, teacher_steps=100, spacing=10, available=range(0, 101, 10),
                         first=never, stage_steps=60)
    assert S.stage_plan("progressive", steps=100, teacher_steps=100, spacing=10) == (10, 10)
    assert S.stage_plan("two-shot", steps=100, teacher_steps=100, spacing=10) == (2, 25)
    assert S.stage_plan("equal-split", steps=1, teacher_steps=100, spacing=10) is None


def test_compare_configs_check_the_plan_with_the_builder_rule():
    with pytest.raises(ParameterError, match="student.steps must be >= n_checkpoints \\* stage_steps = 20 \\* 4000"):
        CompareConfig(student=StudentConfig(steps=50_000), strategies=("progressive",))
    with pytest.raises(ParameterError, match="student.steps must be >= 2 \\* stage_steps = 8000 for two-shot"):
        CompareConfig(student=StudentConfig(steps=7000), strategies=("two-shot",))
    with pytest.raises(ParameterError, match="student.steps must be >= n_checkpoints \\* stage_steps = 12 \\* 100"):
        PcfgCompareConfig(student=PcfgStudentConfig(stage_steps=100), strategies=("progressive",))
    PcfgCompareConfig(strategies=("progressive",))  # 12 * 50 = the student's 600 steps


# ------------------------------------------------------------------ summaries and rows

def test_transformer_summary_keys_say_what_they_measure():
    df = pd.DataFrame({"run": 0, "step": [0, 10, 20, 30], "samples": [0, 100, 200, 300],
                       "test_accuracy": [0.2, 0.5, 0.7, 0.8], "test_loss": [2.0, 1.5, 1.2, 1.0]})
    student = run_summary(df, 0, parity=False, reference=1.0)  # 80/90/95% of the teacher's 1.0
    assert {k: student[k] for k in student if k.startswith("samples_to")} == {
        "samples_to_80pct_of_teacher": 300, "samples_to_90pct_of_teacher": None, "samples_to_95pct_of_teacher": None}
    teacher = run_summary(df, 0, parity=False)  # 80/90/95% of its own final 0.8: 0.64, 0.72, 0.76
    assert {k: teacher[k] for k in teacher if k.startswith("samples_to")} == {
        "samples_to_80pct_of_own_final": 200, "samples_to_90pct_of_own_final": 300,
        "samples_to_95pct_of_own_final": 300}
    parity = run_summary(df, 0, parity=True)  # absolute: 60% test accuracy
    assert parity["samples_to_60"] == 200 and parity["samples_to_95"] is None


def _run_dir(path, config: dict, summary: dict):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    (path / "summary.json").write_text(json.dumps(summary))
    return path


OLD_RUNS = [{"run": r, "seed": r, "final_accuracy": a, "samples_to_80pct": s80, "samples_to_90pct": s90,
             "samples_to_95pct": None, "final_m_robust_3": m}
            for r, (a, s80, s90, m) in enumerate([(0.8, 100, 300, 0.2), (0.9, 200, None, 0.4), (0.7, 400, 500, 0.3)])]


def test_old_summaries_load_with_the_new_keys(tmp_path):
    root = tmp_path / "results"
    _run_dir(root / "s", {"kind": "PcfgStudentConfig", "steps": 600},
             {"kind": "transformer-student", "strategy": "equal-split", "teacher_final_accuracy": 0.9,
              "checkpoint_choice": {"rule": "accuracy", "step": 250}, "runs": OLD_RUNS})
    _run_dir(root / "t", {"kind": "PcfgTeacherConfig", "steps": 600},
             {"kind": "transformer-teacher", "runs": [{"run": 0, "seed": 0, "final_accuracy": 0.9,
                                                       "samples_to_80pct": 3200}]})
    df = load_results(root)
    s, t = df[df["kind"] == "pcfg-student"], df[df["kind"] == "pcfg-teacher"]
    assert s["samples_to_80pct_of_teacher"].tolist() == [100, 200, 400]
    assert t["samples_to_80pct_of_own_final"].tolist() == [3200]
    assert not any(c.endswith("pct") for c in df.columns)
    row = transformer_row("equal-split", root / "s", parity=False)
    assert row == {"strategy": "equal-split",
                   "samples_to_80pct_of_teacher": 200.0, "samples_to_80pct_of_teacher_min": 100,
                   "samples_to_80pct_of_teacher_max": 400,
                   "samples_to_90pct_of_teacher": 500.0, "samples_to_90pct_of_teacher_min": 300,
                   "samples_to_90pct_of_teacher_max": None,
                   "samples_to_95pct_of_teacher": None, "samples_to_95pct_of_teacher_min": None,
                   "samples_to_95pct_of_teacher_max": None,
                   "seeds": 3, "final_accuracy": 0.8, "m_robust_3": pytest.approx(0.3), "checkpoint": "250 (accuracy)"}


def test_mlp_strategy_row_columns_are_unchanged(tmp_path):
    runs = [{"run": r, "seed": r, "samples_to_60": 10, "samples_to_95": s95, "samples_to_99": s99,
             "final_accuracy": a} for r, (s95, s99, a) in enumerate([(3000, None, 0.98), (1000, 2000, 1.0),
                                                                     (2000, 4000, 1.0)])]
    d = _run_dir(tmp_path / "s", {"kind": "StudentConfig"},
                 {"kind": "student", "strategy": "two-shot", "checkpoint_choice": {"rule": "given", "step": 4000},
                  "runs": runs})
    row = mlp_row("two-shot", d)
    assert list(row) == ["strategy", "samples_to_95", "samples_to_95_min", "samples_to_95_max", "samples_to_99",
                         "samples_to_99_min", "samples_to_99_max", "seeds", "final_accuracy", "checkpoint"]
    assert row == {"strategy": "two-shot", "samples_to_95": 2000.0, "samples_to_95_min": 1000,
                   "samples_to_95_max": 3000, "samples_to_99": 4000.0, "samples_to_99_min": 2000,
                   "samples_to_99_max": None, "seeds": 3, "final_accuracy": 1.0, "checkpoint": "4000 (given)"}
    assert strategy_row("two-shot", d) == row  # the engine-agnostic row, MLP speed keys by default


def test_an_old_field_name_on_the_command_line_names_its_new_name():
    from cli_helpers import run_icurr

    with pytest.raises(ParameterError, match="'intermediate' was renamed 'first_checkpoint'"):
        apply_overrides(StudentConfig(), ["intermediate=2000"])
    with pytest.raises(ParameterError, match="'intermediate_rule' was renamed 'first_rule'"):
        apply_overrides(CompareConfig(), ["student.intermediate_rule=accuracy"])
    out = run_icurr("parity", "student", "--teacher", "t", "intermediate=5")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "renamed 'first_checkpoint'" in out.stderr


def test_run_directories_written_before_the_renovation_load_under_the_new_names():
    """``tests/data/pre_renovation``: the config.json / summary.json / metrics of an MLP two-shot student,
    a PCFG teacher and a PCFG student written by the code before the field and key renames (c68d96f)."""
    from pathlib import Path

    from distill.config import PcfgStudentConfig as PS

    root = Path(__file__).parent / "data" / "pre_renovation"
    stored = json.loads((root / "student" / "config.json").read_text())
    assert stored["intermediate"] == "500" and "first_checkpoint" not in stored  # really the old format
    cfg = config_from_dict(StudentConfig, stored)
    assert (cfg.first_checkpoint, cfg.first_rule, cfg.strategy, cfg.width) == ("500", "accuracy", "two-shot", 16)
    pcfg = config_from_dict(PS, json.loads((root / "pcfg_student" / "config.json").read_text()))
    assert pcfg.strategy == "oneshot"
    df = load_results(root).set_index("kind")
    assert df.loc["student", "first_checkpoint"] == "500"
    assert df.loc["pcfg-student", "samples_to_95pct_of_teacher"] == 160
    assert df.loc["pcfg-teacher", "samples_to_95pct_of_own_final"] == 160
    assert not any(c.endswith("pct") for c in df.columns)  # no old key survives beside its new name
