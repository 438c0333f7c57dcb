"""Teacher and student runs end to end on CPU: they learn, resume, and reject bad configs."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from cli_helpers import run_icurr
from infra.checkpoints import NoCheckpointsError
from infra.config import apply_overrides
from infra.rundir import RunDir
from simulate.checkpoints import CheckpointDir, save_checkpoint
from simulate.config import StudentConfig, TeacherConfig
from simulate.model import init_default
from simulate.student import train_student
from simulate.teacher import train_teacher
from theory import ParameterError

TINY_TEACHER = TeacherConfig(d=10, k=2, width=128, steps=3000, lr=0.05, seeds=(0,), eval_every=250,
                             checkpoint_every=500, probe_every=500, device="cpu")


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    train_teacher(TINY_TEACHER, out, progress=False)
    return out


def test_teacher_learns_and_writes_its_files(teacher_dir):
    rd = RunDir(teacher_dir)
    for name in ("config.json", "env.json", "metrics.parquet", "summary.json"):
        assert (teacher_dir / name).exists(), name
    assert CheckpointDir(rd.ckpt).steps() == list(range(0, 3001, 500))
    summary = rd.read_json("summary.json")
    assert summary["runs"][0]["final_accuracy"] >= 0.99  # exact evaluation over all 1024 inputs
    df = rd.metrics()
    assert {"corr1_in_mean", "corr1_off_max", "test_accuracy", "samples"} <= set(df.columns)
    assert summary["support"] == [0, 1]


def test_teacher_resumes_after_a_kill_with_the_same_iterates(tmp_path, teacher_dir, monkeypatch):
    out = tmp_path / "t"
    original = RunDir.append_metrics

    def dying(self, rows):
        rows = list(rows)
        original(self, rows)
        if rows and rows[0]["step"] == 1500:
            raise KeyboardInterrupt  # killed after the checkpoint at 1500 was due, before the end

    monkeypatch.setattr(RunDir, "append_metrics", dying)
    with pytest.raises(KeyboardInterrupt):
        train_teacher(TINY_TEACHER, out, progress=False)
    monkeypatch.setattr(RunDir, "append_metrics", original)
    assert not RunDir(out).finished
    train_teacher(TINY_TEACHER, out, progress=False)
    a = CheckpointDir(RunDir(out).ckpt).load(3000).params
    b = CheckpointDir(RunDir(teacher_dir).ckpt).load(3000).params
    for name in ("W", "b", "a"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-6)
    steps = RunDir(out).metrics()["step"].tolist()
    assert steps == sorted(steps) and len(steps) == len(set(steps)) == 13


@pytest.mark.parametrize("strategy", ["ce", "oneshot", "progressive", "two-shot", "equal-split"])
def test_each_strategy_learns(tmp_path, teacher_dir, strategy):
    cfg = StudentConfig(teacher=str(teacher_dir), strategy=strategy, width=64, steps=6000, lr=0.05,
                        seeds=(0, 1), eval_every=500, stage_steps=500, device="cpu")
    rd = train_student(cfg, tmp_path / strategy, progress=False)
    summary = rd.read_json("summary.json")
    accs = [r["final_accuracy"] for r in summary["runs"]]
    assert min(accs) >= 0.9, accs
    if strategy in ("two-shot", "equal-split"):
        assert summary["checkpoint_choice"]["rule"] in ("correlation_gap", "accuracy")


@pytest.mark.parametrize(
    "words, field",
    [(["k=11"], "k must"), (["width=0"], "width must"), (["batch=0"], "batch must"),
     (["lr=-1"], "lr must"), (["seeds="], "seeds must"), (["checkpoint_every=300"], "checkpoint_every")],
)
def test_invalid_teacher_configs(words, field):
    with pytest.raises(ParameterError, match=field):
        apply_overrides(TINY_TEACHER, words)


def test_invalid_student_configs(tmp_path, teacher_dir):
    with pytest.raises(ParameterError, match="temperature must"):
        StudentConfig(temperature=-1)
    empty = tmp_path / "empty"
    RunDir(empty).write_json("config.json", json.loads((teacher_dir / "config.json").read_text()))
    with pytest.raises(NoCheckpointsError):
        train_student(StudentConfig(teacher=str(empty), strategy="oneshot", device="cpu"), tmp_path / "s1")
    # a checkpoint of another shape in a teacher directory
    other = tmp_path / "other"
    RunDir(other).write_json("config.json", json.loads((teacher_dir / "config.json").read_text()))
    g = torch.Generator().manual_seed(0)
    save_checkpoint(other / "ckpt" / "step_000003000.safetensors", init_default(1, 64, 10, 2, generator=g),
                    step=3000, samples=3000)
    with pytest.raises(ValueError, match="width 64 != expected 128"):
        train_student(StudentConfig(teacher=str(other), strategy="oneshot", steps=1000, device="cpu"),
                      tmp_path / "s2", progress=False)


def test_compare_cli_json(tmp_path):
    out = run_icurr(
        "parity", "compare", "--out", str(tmp_path), "--format", "json",
        "--no-progress", "--device", "cpu", "teacher.d=10", "teacher.k=2", "teacher.width=128",
        "teacher.steps=3000", "teacher.eval_every=250", "teacher.checkpoint_every=500",
        "teacher.probe_every=500", "student.width=64", "student.steps=4000", "student.eval_every=250", "student.stage_steps=500",
        "student.seeds=0,1,2", "strategies=ce,oneshot,progressive",
    )
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["strategy"] for r in rows] == ["ce", "oneshot", "progressive"]
    for r in rows:
        assert {"samples_to_95", "samples_to_99", "seeds", "final_accuracy"} <= set(r)
        assert r["seeds"] == 3


def test_compare_rejects_a_schedule_longer_than_the_student_before_training(tmp_path):
    out = run_icurr("parity", "compare", "--out", str(tmp_path), "student.steps=4000", "strategies=progressive")
    assert out.returncode == 2 and "student.steps must be >= n_checkpoints * stage_steps" in out.stderr
    assert not any(tmp_path.iterdir())  # nothing was trained


def test_cli_rejects_unknown_keys():
    out = run_icurr("parity", "teacher", "widht=3")
    assert out.returncode == 2 and "unknown config key 'widht'" in out.stderr


@pytest.mark.parametrize("command", ["teacher", "compare"])
def test_presets_resolve_to_valid_configs(command):
    from experiments.registry import presets

    PRESETS = presets("parity")
    for preset in PRESETS:
        out = run_icurr("parity", command, "--preset", preset, "--show-config")
        assert out.returncode == 0, out.stderr
        cfg = json.loads(out.stdout)
        teacher = cfg["teacher"] if command == "compare" else cfg
        assert teacher["width"] == int(PRESETS[preset]["teacher"]["width"])


def test_hierarchical_teacher_learns_and_a_student_follows(tmp_path):
    """Appendix C.3: depth-2 tree of 2-parities on d = 8 (4 classes), exact evaluation on 256 points."""
    cfg = apply_overrides(TINY_TEACHER, ["task=hierarchical", "d=8", "k=2", "depth=2", "steps=6000", "lr=0.1"])
    rd = train_teacher(cfg, tmp_path / "t", progress=False)
    summary = rd.read_json("summary.json")
    assert summary["task"] == "hierarchical" and summary["supports"] == [[0, 1], [2, 3], [4, 5]]
    assert summary["runs"][0]["final_accuracy"] >= 0.95
    assert CheckpointDir(rd.ckpt).load("latest").params.classes == 4
    student = StudentConfig(teacher=str(rd.path), strategy="oneshot", width=64, steps=6000, lr=0.1, seeds=(0,),
                            eval_every=500, probe_every=500, device="cpu")
    srd = train_student(student, tmp_path / "s", progress=False)
    assert srd.read_json("summary.json")["runs"][0]["final_accuracy"] >= 0.9


def test_hierarchical_needs_enough_coordinates():
    with pytest.raises(ParameterError, match=r"d must be >= \(2\^depth - 1\) \* k = 21"):
        TeacherConfig(task="hierarchical", d=20, k=3, depth=3)


def test_per_run_learning_rates_and_temperatures_equal_separate_runs(tmp_path):
    """One program with run_lrs / run_temperatures (a seed may repeat) gives each run's separate iterates."""
    base = dataclasses.replace(TINY_TEACHER, steps=1000, checkpoint_every=500, probe_every=0)
    batched = train_teacher(dataclasses.replace(base, seeds=(0, 0), run_lrs=(0.05, 0.1)), tmp_path / "b", progress=False)
    for r, lr in enumerate((0.05, 0.1)):
        single = train_teacher(dataclasses.replace(base, lr=lr), tmp_path / f"s{r}", progress=False)
        a = CheckpointDir(batched.ckpt).load(1000).params.select(r)
        b = CheckpointDir(single.ckpt).load(1000).params
        for name in ("W", "b", "a"):
            torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-5, atol=1e-6)
    scfg = StudentConfig(teacher=str(tmp_path / "s0"), strategy="oneshot", width=32, steps=600, eval_every=200,
                         probe_every=0, device="cpu")
    both = train_student(dataclasses.replace(scfg, seeds=(0, 0), run_temperatures=(1.0, 0.0)), tmp_path / "t",
                         progress=False).metrics()
    for r, tau in enumerate((1.0, 0.0)):
        one = train_student(dataclasses.replace(scfg, seeds=(0,), temperature=tau), tmp_path / f"t{r}",
                            progress=False).metrics()
        np.testing.assert_allclose(both[both["run"] == r]["test_loss"].to_numpy(), one["test_loss"].to_numpy(),
                                   rtol=1e-4, atol=1e-6)
    assert not np.allclose(both[both["run"] == 0]["test_loss"], both[both["run"] == 1]["test_loss"])


def test_per_run_values_need_one_per_seed_and_distinct_runs():
    with pytest.raises(ParameterError, match="run_lrs must hold one value per seed"):
        TeacherConfig(seeds=(0, 1), run_lrs=(0.1,))
    with pytest.raises(ParameterError, match="must be distinct"):
        TeacherConfig(seeds=(0, 0), run_lrs=(0.1, 0.1))
    with pytest.raises(ParameterError, match="seeds must be distinct"):
        TeacherConfig(seeds=(0, 0))


def test_strategies_in_one_program_equal_separate_programs(teacher_dir, tmp_path):
    """train_strategies (one program, each run with its own schedule: labels, final, intermediate
    checkpoints) gives every strategy the iterates of its own program."""
    from simulate.student import train_strategies

    scfg = StudentConfig(teacher=str(teacher_dir), width=32, steps=2000, eval_every=250, probe_every=0,
                         stage_steps=500, n_checkpoints=3, first_checkpoint="1000", seeds=(0, 1), device="cpu")
    strategies = ["ce", "oneshot", "two-shot", "equal-split", "progressive"]
    together = train_strategies(scfg, strategies, [tmp_path / f"b-{s}" for s in strategies], progress=False)
    for s, rd in zip(strategies, together):
        alone = train_student(dataclasses.replace(scfg, strategy=s), tmp_path / f"s-{s}", progress=False)
        a, b = rd.metrics(), alone.metrics()
        assert list(a["source"]) == list(b["source"]) and list(a["run"]) == list(b["run"])
        np.testing.assert_allclose(a["test_loss"].to_numpy(), b["test_loss"].to_numpy(), rtol=1e-4, atol=1e-6)
        assert rd.read_json("summary.json")["schedule"] == alone.read_json("summary.json")["schedule"]
    sources = {s: set(rd.metrics()["source"]) for s, rd in zip(strategies, together)}
    assert sources["ce"] == {"labels"} and sources["oneshot"] == {"final"} and "1000" in sources["two-shot"]
