"""Sweeps and the results store: expansion, hashing, batched groups split into per-run directories,
skipping finished runs, resuming after SIGKILL, atomic writes, ``sweep status``, ``results``, Ray."""
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import typing
from pathlib import Path

import pandas as pd
import pytest
import torch

from infra.config import config_hash
from infra import claims, store
from simulate.checkpoints import CheckpointDir
from simulate.config import CompareConfig, StudentConfig, TeacherConfig
from infra.rundir import RunDir
from experiments.sweep import expand, group_runs, load_sweep, parse_sweep, run_sweep
from simulate.teacher import train_teacher
from cli_helpers import run_icurr
from theory import ParameterError

ROOT = Path(__file__).resolve().parent.parent
TINY = {"d": 10, "k": 2, "width": 64, "steps": 2000, "eval_every": 250, "checkpoint_every": 500, "device": "cpu"}
TEACHER_SWEEP = {"kind": "teacher", "base": TINY, "grid": {"lr": [0.05, 0.1], "seeds": [0, 1]}}


def cli(capsys, *args):
    """``icurr ARGS`` in this process: (exit code, stdout, stderr)."""
    from icurr.cli import main

    try:
        code = main(list(args))
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def files_with_mtimes(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if p.is_file()}


def strays(root: Path) -> list[str]:
    """Temporary files, locks, error files and work directories: nothing that should outlive a sweep."""
    bad = [p for p in root.rglob("*") if p.name.endswith(".tmp") or p.name in (store.LOCK, store.ERROR)]
    return [str(p) for p in bad] + ([str(root / store.WORK)] if (root / store.WORK).exists() else [])


@pytest.fixture(scope="module")
def teacher_sweep(tmp_path_factory):
    """A finished teacher sweep: 2 learning rates x 2 seeds = 4 runs in one batched program (per-run lr)."""
    out = tmp_path_factory.mktemp("teachers")
    outcome = run_sweep(parse_sweep(TEACHER_SWEEP), out, progress=False)
    assert len(outcome.done) == 4 and not outcome.failed and outcome.groups == 1
    return out


# ---------------------------------------------------------------- expansion and hashing

def test_grid_times_zip_expands_to_the_product_with_one_seed_per_run():
    sweep = parse_sweep({"kind": "teacher", "base": TINY, "grid": {"lr": [0.05, 0.1], "seeds": [0, 1, 2]},
                         "zip": {"width": [64, 128], "batch": [1, 2]}})
    runs = expand(sweep)
    assert len(runs) == 2 * 3 * 2
    combos = {(r.config.lr, r.config.seeds, r.config.width, r.config.batch) for r in runs}
    assert combos == {(lr, (s,), w, b) for lr in (0.05, 0.1) for s in (0, 1, 2) for w, b in ((64, 1), (128, 2))}
    assert all(r.config.d == 10 and r.config.steps == 2000 for r in runs)  # base applied everywhere
    assert len({r.hash for r in runs}) == 12 and all(r.hash == config_hash(r.config) for r in runs)
    groups = group_runs(runs)  # runs differing only in seed and lr share a program (per-run rates)
    assert len(groups) == 2 and all(g.config.seeds == (0, 1, 2) * 2 and len(g.runs) == 6 for g in groups)
    assert all(g.config.run_lrs == (0.05,) * 3 + (0.1,) * 3 for g in groups)
    assert all(tuple(r.config.lr for r in g.runs) == g.config.run_lrs for g in groups)
    assert [r.config.width for r in runs[:6]] == [64] * 6  # zip outer, then the grid, seeds innermost


def test_seeds_in_base_split_into_runs_and_duplicates_are_dropped():
    runs = expand(parse_sweep({"kind": "teacher", "base": dict(TINY, seeds=[3, 4]), "grid": {"lr": [0.1, 0.1]}}))
    assert [r.config.seeds for r in runs] == [(3,), (4,)]


def test_compare_sweep_splits_teacher_and_student_seeds_and_nested_keys_work():
    sweep = parse_sweep({"kind": "compare", "base": {"teacher": {"width": 32}, "student.width": 16},
                         "grid": {"teacher.seeds": [0, 1], "student.seeds": [[5, 6]]}})
    runs = expand(sweep)
    assert {(r.config.teacher.seeds, r.config.student.seeds) for r in runs} == {
        ((t,), (s,)) for t in (0, 1) for s in (5, 6)}
    assert all(r.config.teacher.width == 32 and r.config.student.width == 16 for r in runs)
    (group,) = group_runs(runs)
    assert group.config.teacher.seeds == (0, 1) and group.config.student.seeds == (5, 6)


def test_toml_sweep_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('kind = "compare"\n[base]\nteacher.width = 32\nstrategies = ["ce", "oneshot"]\n'
                    '[grid]\n"student.lr" = [0.01, 0.02]\n')
    runs = expand(load_sweep(path))
    from simulate.config import StudentConfig

    # one run per student seed of the default config, for each of the 2 grid points
    assert len(runs) == 2 * len(StudentConfig().seeds) and {r.config.student.lr for r in runs} == {0.01, 0.02}
    assert all(r.config.strategies == ("ce", "oneshot") and r.config.teacher.width == 32 for r in runs)


@pytest.mark.parametrize("data, message", [
    ({"kind": "teacher", "base": {"widht": 3}}, "unknown config key 'widht'"),
    ({"kind": "teacher", "grid": {"lrr": [0.1]}}, "unknown config key 'lrr'"),
    ({"kind": "compare", "base": {"teacher.nope": 1}}, "unknown config key 'nope'"),
    ({"kind": "teacher", "grid": {"width": [64, 0]}}, "width must"),
    ({"kind": "teacher", "zip": {"width": [64, 128], "lr": [0.1]}}, "zip lists must have equal lengths"),
    ({"kind": "teacher", "grid": {"lr": 0.1}}, "grid.lr must be a non-empty list"),
    ({"kind": "teacher", "grid": {"lr": [0.1]}, "zip": {"lr": [0.2]}}, "both grid and zip"),
    ({"kind": "teachers"}, "kind must be one of"),
    ({"kind": "teacher", "grids": {}}, "unknown top-level key"),
    ({"kind": "student", "base": {"teacher": "/nonexistent/dir"}}, "not a teacher run directory"),
])
def test_bad_sweeps_raise_naming_the_key(data, message):
    with pytest.raises(ParameterError, match=message):
        parse_sweep(data)


def test_bad_sweep_file_fails_on_the_command_line_before_any_work(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("kind: teacher\nbase: {d: 10}\ngrid:\n  widht: [64, 128]\n")
    res = run_icurr("sweep", "run", str(path), "--out", str(tmp_path / "out"))
    assert res.returncode == 2 and "widht" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def _alternatives(value, tp):
    """Other values of a field's type, to try until one passes validation."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if value is None:  # an optional number left unset (e.g. alpha_end)
        return [0.5, 1.0, 2.0]
    if origin is typing.Literal:
        return [a for a in args if a != value]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value * 2, value + 1, value + 2000]
    if isinstance(value, float):
        return [value * 2, value / 2, value + 0.5]
    if isinstance(value, tuple) and args and args[0] is float:  # per-run values: one per seed
        return [tuple(0.01 * (i + 1) for i in range(n)) for n in (1, 5)]
    if isinstance(value, tuple) and not value and args and args[0] is int:  # an empty list of ints
        return [(1000,)]
    if isinstance(value, tuple):
        return [value + (max(value) + 1,)] if value and isinstance(value[0], int) else [value[:1], value + ("ce",)]
    if isinstance(value, str):
        return ["1000", "other", "random"]  # random: the teacher's support
    raise AssertionError(f"no alternatives for {value!r}")


@pytest.mark.parametrize("cls", [TeacherConfig, StudentConfig, CompareConfig])
def test_equal_configs_hash_equal_and_every_field_changes_the_hash(cls):
    base = cls()
    assert config_hash(cls()) == config_hash(base)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        value = getattr(base, f.name)
        if dataclasses.is_dataclass(value):  # a compare section: change one of its fields
            changed = dataclasses.replace(base, **{f.name: dataclasses.replace(value, width=value.width + 1)})
        else:
            for alt in (a for a in _alternatives(value, hints[f.name]) if a != value):
                try:
                    changed = dataclasses.replace(base, **{f.name: alt})
                    break
                except ParameterError:
                    continue
            else:
                pytest.fail(f"no valid alternative value for {cls.__name__}.{f.name}")
        assert config_hash(changed) != config_hash(base), f.name


# ---------------------------------------------------------------- running

def test_each_run_gets_its_own_directory_equal_to_a_single_seed_run(teacher_sweep, tmp_path):
    runs = expand(parse_sweep(TEACHER_SWEEP))
    assert sorted(p.name for p in store.finished_runs(teacher_sweep)) == sorted(r.hash for r in runs)
    assert strays(teacher_sweep) == []
    spec = runs[1]  # lr 0.05, seed 1: run index 1 of its batched group
    d = teacher_sweep / spec.hash
    for name in ("config.json", "env.json", "metrics.parquet", "summary.json"):
        assert (d / name).is_file(), name
    assert RunDir(d).read_json("config.json")["seeds"] == [1]
    df = pd.read_parquet(d / "metrics.parquet")
    assert df["step"].tolist() == list(range(0, 2001, 250)) and set(df["run"]) == {0} and set(df["seed"]) == {1}
    assert {"test_loss", "test_accuracy", "samples"} <= set(df.columns)
    summary = RunDir(d).read_json("summary.json")
    assert [(r["run"], r["seed"]) for r in summary["runs"]] == [(0, 1)]
    # the same directory as an unbatched one-seed teacher (same iterates, same files)
    single = train_teacher(spec.config, tmp_path / "single", progress=False)
    assert CheckpointDir(d / "ckpt").steps() == CheckpointDir(single.ckpt).steps() == list(range(0, 2001, 500))
    a, b = CheckpointDir(d / "ckpt").load(2000), CheckpointDir(single.ckpt).load(2000)
    assert a.metadata["gen_0"] == b.metadata["gen_0"] and a.config == b.config
    for name in ("W", "b", "a"):
        torch.testing.assert_close(getattr(a.params, name), getattr(b.params, name), rtol=1e-5, atol=1e-6)
    pd.testing.assert_frame_equal(df, single.metrics(), rtol=1e-4, atol=1e-5)
    assert train_teacher(spec.config, d, progress=False).path == d  # a finished, valid teacher directory


def test_a_second_run_skips_finished_runs_without_training(teacher_sweep, monkeypatch):
    before = files_with_mtimes(teacher_sweep)

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr("simulate.teacher.train_teacher", no_training)
    outcome = run_sweep(parse_sweep(TEACHER_SWEEP), teacher_sweep, progress=False)
    assert len(outcome.skipped) == 4 and outcome.done == () and outcome.groups == 0
    after = files_with_mtimes(teacher_sweep)
    assert {k: v for k, v in after.items() if k != store.MANIFEST} == {
        k: v for k, v in before.items() if k != store.MANIFEST}


def test_student_sweep_names_a_teacher_run_directory(teacher_sweep, tmp_path, monkeypatch):
    teacher = next(r for r in expand(parse_sweep(TEACHER_SWEEP)) if r.config.seeds == (0,))
    monkeypatch.chdir(teacher_sweep)
    sweep = parse_sweep({"kind": "student", "base": {"teacher": teacher.hash, "width": 32, "steps": 2000,
                                                     "eval_every": 500, "stage_steps": 500, "device": "cpu"},
                         "grid": {"strategy": ["ce", "progressive"], "seeds": [0, 1]}})
    runs = expand(sweep)
    assert {r.config.teacher for r in runs} == {str(teacher_sweep / teacher.hash)}  # resolved, absolute
    outcome = run_sweep(sweep, tmp_path / "students", progress=False)
    # both strategies' students share one program (train_strategies); it was one program per strategy
    assert len(outcome.done) == 4 and len(group_runs(runs)) == 1 and group_runs(runs)[0].strategies == ("ce", "progressive")
    df = store.load_results(tmp_path / "students")
    assert sorted(zip(df["strategy"], df["seed"])) == [("ce", 0), ("ce", 1), ("progressive", 0), ("progressive", 1)]
    assert (df["final_accuracy"] > 0.5).all()
    m = store.load_metrics(tmp_path / "students")
    assert {"source", "run_hash", "strategy", "width"} <= set(m.columns) and set(m["run"]) == {0}


def test_compare_sweep_one_row_per_run_and_strategy(tmp_path):
    sweep = parse_sweep({"kind": "compare",
                         "base": {"teacher": TINY, "student": {"width": 32, "steps": 2000, "eval_every": 500,
                                                               "stage_steps": 500, "device": "cpu"},
                                  "strategies": ["ce", "progressive"]},
                         "grid": {"teacher.seeds": [0, 1], "student.seeds": [0]}})
    outcome = run_sweep(sweep, tmp_path, progress=False)
    assert len(outcome.done) == 2 and strays(tmp_path) == []
    df = store.load_results(tmp_path)
    assert len(df) == 4 and set(df["strategy"]) == {"ce", "progressive"}
    assert {"teacher.seed", "student.seed", "teacher.width", "teacher_final_accuracy", "samples_to_95"} <= set(df.columns)
    m = store.load_metrics(tmp_path)
    assert set(m["role"]) == {"teacher", "ce", "progressive"}


# ---------------------------------------------------------------- kills, atomic writes, status

def _complete(run_dir: Path) -> None:
    """Every file of a finished run reads back as what its name says."""
    json.loads((run_dir / "config.json").read_text())
    json.loads((run_dir / "env.json").read_text())
    json.loads((run_dir / "summary.json").read_text())
    assert len(pd.read_parquet(run_dir / "metrics.parquet"))
    ck = CheckpointDir(run_dir / "ckpt")
    for step in ck.steps():
        ck.load(step)


def _late_checkpoint(out: Path) -> bool:
    """Whether the long group has saved a checkpoint past the end of the short ones (step >= 1500)."""
    return any(int(p.name[5:14]) >= 1500 for p in (out / store.WORK).glob("*/ckpt/step_*.safetensors"))


@pytest.mark.slow
def test_sigkill_mid_sweep_then_rerun_finishes_everything(tmp_path):
    sweep_file = tmp_path / "sweep.yaml"
    # two short groups, then a long one: the kill lands after the first runs finished, in the middle
    # of the long group's training (so that its rerun resumes from a checkpoint)
    sweep_file.write_text(json.dumps({"kind": "teacher", "base": TINY, "grid": {"seeds": [0, 1]},
                                      "zip": {"lr": [0.05, 0.1, 0.2], "steps": [1000, 1000, 8000]}}))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "icurr", "sweep", "run", str(sweep_file), "--out", str(out),
                             "--no-progress"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if out.is_dir() and store.finished_runs(out) and _late_checkpoint(out):
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"the sweep ended before the kill: {proc.stderr.read().decode()[-2000:]}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    finished = store.finished_runs(out)
    assert 1 <= len(finished) < 6
    for d in finished:
        _complete(d)
    assert len(store.load_results(out)) == len(finished)  # unfinished runs are never read as results
    rows, counts = store.sweep_status(out)
    assert counts["done"] == len(finished) and counts["running"] == 0 and counts["pending"] == 6 - len(finished)
    before = {d.name: files_with_mtimes(d) for d in finished}

    outcome = run_sweep(load_sweep(sweep_file), out, progress=False)
    assert len(outcome.skipped) == len(finished) and len(outcome.done) == 6 - len(finished) and not outcome.failed
    assert len(store.finished_runs(out)) == 6 and strays(out) == []
    for d in store.finished_runs(out):
        _complete(d)
        steps = pd.read_parquet(d / "metrics.parquet")["step"].tolist()
        assert steps == sorted(set(steps))
    assert {name: files_with_mtimes(out / name) for name in before} == before  # finished runs untouched


def test_no_file_without_its_final_name_is_read_as_a_result(teacher_sweep, tmp_path, monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(teacher_sweep, out)
    victim = out / expand(parse_sweep(TEACHER_SWEEP))[0].hash
    (victim / "summary.json").unlink()  # as if killed while writing its summary
    (victim / ".summary.json.x1.tmp").write_text('{"kind": "teacher", "runs": [')
    (victim / ".metrics.parquet.x2.tmp").write_bytes(b"PAR1")
    assert victim.name not in set(store.load_results(out)["run_hash"])
    assert store.run_state(victim) == "pending"

    runs = expand(parse_sweep(TEACHER_SWEEP))
    real_replace = os.replace

    def crash_on_summary(src, dst):  # the summary of runs[2] dies at os.replace (e.g. a full disk)
        if str(dst).endswith(f"{runs[2].hash}/summary.json"):
            raise OSError("disk full")
        real_replace(src, dst)

    shutil.rmtree(out / runs[2].hash)  # a whole group of 2 runs to redo
    shutil.rmtree(out / runs[3].hash)
    monkeypatch.setattr(os, "replace", crash_on_summary)
    outcome = run_sweep(parse_sweep(TEACHER_SWEEP), out, progress=False)
    monkeypatch.setattr(os, "replace", real_replace)
    assert outcome.done == (victim.name,) and set(outcome.failed) == {runs[2].hash, runs[3].hash}
    for h in outcome.failed:
        assert not (out / h / "summary.json").exists() and (out / h / store.ERROR).is_file()
        assert store.run_state(out / h) == "failed"
    assert not [p for p in out.rglob("*.tmp")]
    assert set(store.load_results(out)["run_hash"]) == {p.name for p in store.finished_runs(out)}
    outcome = run_sweep(parse_sweep(TEACHER_SWEEP), out, progress=False)
    assert not outcome.failed and len(store.finished_runs(out)) == 4 and strays(out) == []


def test_sweep_status_lists_done_running_failed_pending(teacher_sweep, tmp_path, capsys, request):
    out = tmp_path / "out"
    shutil.copytree(teacher_sweep, out)
    runs = expand(parse_sweep(TEACHER_SWEEP))
    running, failed, pending = (out / r.hash for r in runs[1:])
    for d in (running, failed, pending):
        shutil.rmtree(d)
        d.mkdir()
    held = claims.try_claim(out, [running.name])  # a live worker's claim (this process holds it)
    assert held is not None
    request.addfinalizer(held.release)
    (running / store.LOCK).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                  "heartbeat": time.time()}))
    (failed / store.ERROR).write_text(json.dumps({"error": "RuntimeError", "message": "boom"}))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (pending / store.LOCK).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    code, stdout, stderr = cli(capsys, "sweep", "status", str(out), "--format", "json")
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["counts"] == {"done": 1, "running": 1, "failed": 1, "pending": 1, "total": 4}
    states = {r["run_hash"]: r for r in data["runs"]}
    assert states[runs[0].hash]["state"] == "done" and states[running.name]["state"] == "running"
    assert "boom" in states[failed.name]["detail"] and states[pending.name]["state"] == "pending"
    assert "seeds=1" in states[running.name]["point"]
    assert "done: 1  running: 1  failed: 1  pending: 1" in cli(capsys, "sweep", "status", str(out))[1]
    outcome = run_sweep(parse_sweep(TEACHER_SWEEP), out, progress=False)  # a live lock is left alone
    assert outcome.busy == (running.name,) and set(outcome.done) == {failed.name, pending.name}
    assert not (running / "summary.json").exists() and (running / store.LOCK).exists()


def test_a_run_that_raises_is_marked_failed_and_the_sweep_goes_on(teacher_sweep, tmp_path, capsys):
    teacher = str(store.finished_runs(teacher_sweep)[0])
    sweep_file = tmp_path / "students.yaml"
    sweep_file.write_text(json.dumps({
        "kind": "student", "base": {"teacher": teacher, "width": 16, "steps": 1000, "eval_every": 500,
                                    "device": "cpu", "seeds": [0]},
        "grid": {"strategy": ["progressive", "ce"], "stage_steps": [1000]}}))  # 4 stages x 1000 > 1000 steps
    code, _, stderr = cli(capsys, "sweep", "run", str(sweep_file), "--out", str(tmp_path / "out"), "--no-progress")
    assert code == 1 and "error.json" in stderr
    data = json.loads(cli(capsys, "sweep", "status", str(tmp_path / "out"), "--format", "json")[1])
    assert data["counts"]["failed"] == 1 and data["counts"]["done"] == 1
    (row,) = [r for r in data["runs"] if r["state"] == "failed"]
    assert "progressive needs steps" in row["detail"]


def test_results_command_collects_columns_and_exports(teacher_sweep, tmp_path, capsys):
    csv, pq = tmp_path / "r.csv", tmp_path / "r.parquet"
    code, stdout, stderr = cli(capsys, "results", str(teacher_sweep), "--csv", str(csv), "--parquet", str(pq))
    assert code == 0 and "4 rows" in stdout, stderr
    df = pd.read_parquet(pq)
    assert len(df) == 4 and len(pd.read_csv(csv)) == 4
    assert {"run_hash", "kind", "seed", "lr", "width", "d", "k", "final_accuracy", "samples_to_95",
            "corr1_gap_peak"} <= set(df.columns)
    assert sorted(zip(df["lr"], df["seed"])) == [(0.05, 0), (0.05, 1), (0.1, 0), (0.1, 1)]
    rows = json.loads(cli(capsys, "results", str(teacher_sweep), "--format", "json")[1])
    assert len(rows) == 4 and set(rows[0]) == set(df.columns)
    table = cli(capsys, "results", str(teacher_sweep))[1]
    assert "run_hash" in table and " lr " in table and "eval_size" not in table  # constant columns hidden
    m = store.load_metrics(teacher_sweep)
    assert len(m) == 4 * 9 and {"run_hash", "lr", "test_accuracy", "step"} <= set(m.columns)


# ---------------------------------------------------------------- Ray

def test_ray_missing_names_the_extra(monkeypatch):
    from experiments.sweep_ray import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ParameterError, match=r"pip install -e '\.\[ray\]' from a checkout"):
        import_ray()


def test_gpu_fraction_is_zero_for_cpu_groups():
    from experiments.sweep_ray import group_gpus

    (group,) = group_runs(expand(parse_sweep({"kind": "teacher", "base": TINY, "grid": {"seeds": [0, 1]}})))
    assert group_gpus(group, gpu_fraction=0.25, cluster_gpus=4) == 0
    cuda = dataclasses.replace(group, config=dataclasses.replace(group.config, device="cuda"))
    auto = dataclasses.replace(group, config=dataclasses.replace(group.config, device="auto"))
    assert group_gpus(cuda, gpu_fraction=0.25, cluster_gpus=4) == 0.25
    assert group_gpus(auto, gpu_fraction=0.25, cluster_gpus=0) == 0 and group_gpus(auto, gpu_fraction=0.5,
                                                                                    cluster_gpus=1) == 0.5


@pytest.mark.slow
def test_ray_backend_on_a_local_ray_gives_the_same_directories(teacher_sweep, tmp_path):
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'implicit-curriculum[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        outcome = run_sweep(parse_sweep(TEACHER_SWEEP), tmp_path, backend="ray", progress=False)
    finally:
        ray.shutdown()
    assert len(outcome.done) == 4 and not outcome.failed and strays(tmp_path) == []
    for d in store.finished_runs(teacher_sweep):  # same runs; numbers equal up to thread-count rounding
        other = tmp_path / d.name
        _complete(other)
        a, b = RunDir(other).read_json("summary.json")["runs"][0], RunDir(d).read_json("summary.json")["runs"][0]
        assert a["seed"] == b["seed"] and a["final_accuracy"] == pytest.approx(b["final_accuracy"], abs=1e-3)
        assert CheckpointDir(other / "ckpt").steps() == CheckpointDir(d / "ckpt").steps()


def test_student_strategies_share_one_program_only_when_their_runs_match(teacher_sweep, tmp_path, monkeypatch):
    from simulate.student import train_strategies

    teacher = str(store.finished_runs(teacher_sweep)[0])
    base = {"teacher": teacher, "width": 16, "steps": 1000, "eval_every": 250, "stage_steps": 250, "device": "cpu"}
    full = parse_sweep({"kind": "student", "base": base,
                        "grid": {"strategy": ["ce", "oneshot", "two-shot"], "seeds": [0, 1]}})
    (group,) = group_runs(expand(full))
    assert group.strategies == ("ce", "oneshot", "two-shot") and group.config.seeds == (0, 1)
    assert [(s.config.strategy, s.config.seeds[0]) for s in group.runs] == \
        [(st, s) for st in ("ce", "oneshot", "two-shot") for s in (0, 1)]  # run j * n + r, as train_strategies
    run_sweep(full, tmp_path / "sweep", progress=False)
    direct = train_strategies(group.config, ["ce", "oneshot", "two-shot"],
                              [tmp_path / "direct" / s for s in ("ce", "oneshot", "two-shot")], progress=False)
    for spec in group.runs:
        j = ("ce", "oneshot", "two-shot").index(spec.config.strategy)
        want = direct[j].metrics()
        want = want[want["run"] == spec.config.seeds[0]].drop(columns="run").reset_index(drop=True)
        got = pd.read_parquet(tmp_path / "sweep" / spec.hash / "metrics.parquet").drop(columns="run")
        pd.testing.assert_frame_equal(got[want.columns], want)  # the split runs are the program's, bit for bit
    ragged = parse_sweep({"kind": "student", "base": base,
                          "zip": {"strategy": ["ce", "ce", "oneshot"], "seeds": [0, 1, 0]}})
    assert sorted(g.strategies for g in group_runs(expand(ragged))) == [("ce",), ("oneshot",)]
