"""Algorithm 1 as an experiment kind (simulate.two_stage*, experiments.batch_search, experiments.scaling):
the stage-1 step against autograd, the B1* bisection against planted thresholds, the measures after
stage 1 against brute force, the runs (resume, refusals) and an end-to-end scaling check at k = 2."""
from __future__ import annotations

import dataclasses
import json
import math
import shutil

import pytest
import torch

from experiments.batch_search import geometric_grid, search_threshold
from simulate.data import full_cube
from simulate.model import MLPParams, forward, init_symmetric
from simulate.sgd import reference_step
from simulate.two_stage import (
    auto_eta1, first_stage_correlations, majority, stage_one, stage_one_gradient, support_recovery,
)
from simulate.two_stage_config import ParityTwoStageStudentConfig, ParityTwoStageTeacherConfig
from theory._checks import ParameterError

# ------------------------------------------------------------------ the B1* search


@pytest.mark.parametrize("threshold", [1, 5, 37, 100, 1000, 4096, 4097, 50_000])
def test_search_finds_a_planted_threshold_within_one_grid_step(threshold):
    grid = geometric_grid(4, 65536, 2**0.5)
    calls = []

    def rate(b):  # a monotone step: 1 at or above the threshold, else 0.2
        calls.append(b)
        return 1.0 if b >= threshold else 0.2

    res = search_threshold(rate, grid, 0.8)
    assert len(calls) == len(set(calls)) == res.n_evaluations  # nothing evaluated twice
    assert res.n_evaluations <= 2 + math.ceil(math.log2(len(grid) - 1))  # O(log n), not the grid
    if threshold > grid[-1]:
        assert (res.b_star, res.censored) == (None, "above") and res.n_evaluations == 1
    elif threshold <= grid[0]:
        assert (res.b_star, res.censored) == (grid[0], "below") and res.n_evaluations == 2
    else:
        assert res.censored is None
        assert res.b_star >= threshold and res.b_star / 2**0.5 < threshold + 1  # within one grid step
        lo, hi = res.bracket
        assert grid.index(hi) == grid.index(lo) + 1 and lo < threshold <= hi


def test_search_uses_the_rate_not_the_first_success():
    """A graded rate (fraction of 5 seeds) crosses the target between grid points: B1* is where it does."""
    grid = geometric_grid(16, 16384, 2)
    res = search_threshold(lambda b: min(1.0, b / 1000 * 0.4), grid, 0.8)  # rate 0.8 at b = 2000
    assert res.b_star == 2048 and res.bracket == (1024, 2048)


def test_geometric_grid():
    g = geometric_grid(10, 1000, 3)
    assert g == [10, 30, 90, 270, 810, 2430]
    assert geometric_grid(1, 8, 1.1)[:3] == [1, 2, 3]  # rounded up, duplicates dropped
    for bad in [dict(lo=0, hi=5, factor=2), dict(lo=5, hi=4, factor=2), dict(lo=1, hi=5, factor=1)]:
        with pytest.raises(ParameterError):
            geometric_grid(**bad)


# ------------------------------------------------------------------ stage 1


def _batch(d, k, n, seed, runs):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2, (runs, n, d), generator=g).double() * 2 - 1
    return x, x[..., :k].prod(-1)


@pytest.mark.parametrize("supervised", [False, True])
def test_stage_one_step_equals_autograd(monkeypatch, supervised):
    """One stage-1 step (chunked over the batch) equals autograd SGD on the same batch: the hinge loss on
    labels, or a student's max(0, 1 - f_S f_T) against a teacher's stage-1 outputs."""
    import simulate.two_stage as TS

    d, k, m, R, B = 9, 2, 12, 3, 1000
    student = init_symmetric(R, m, d, k, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    student.W.add_(0.3 * torch.randn(student.W.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64))
    x, y = _batch(d, k, B, 2, R)
    if supervised:
        teacher = init_symmetric(R, 20, d, k, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        stage_one(teacher, lambda n: _batch(d, k, n, 4, R), steps=1, batch=5000, k=k)
        target = forward(teacher, x)[..., 0]
    else:
        target = y
    monkeypatch.setattr(TS, "STAGE1_ROWS", 7 * R * m)  # chunks of 7 samples: the sum over chunks is tested
    pos = [0]

    def draw(n):
        out = x[:, pos[0]:pos[0] + n], target[:, pos[0]:pos[0] + n]
        pos[0] += n
        return out

    grad = stage_one_gradient(student, draw, B)
    assert pos[0] == B
    kw = dict(loss="hinge_distill", teacher_logits=target[..., None]) if supervised else \
        dict(loss="hinge", labels=((1 - y) / 2).long())
    new, _ = reference_step(student, x, torch.ones(R, dtype=torch.float64), train="W", **kw)
    torch.testing.assert_close(grad, student.W - new.W, rtol=1e-10, atol=1e-12)
    assert grad.abs().max() > 1e-3  # a real gradient, not two zeros


def test_stage_one_replaces_w_and_auto_rate_normalises():
    d, k, m, R = 10, 2, 16, 2
    p = init_symmetric(R, m, d, k, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    W0 = p.W.clone()
    batch = _batch(d, k, 4000, 1, R)
    grad = stage_one_gradient(p.clone(), lambda n: batch, 4000)
    rates = stage_one(p, lambda n: batch, steps=1, batch=4000, k=k)  # eta1 auto, lambda1 = 1/(2 eta1)
    torch.testing.assert_close(p.W, -rates[:, None, None] * grad)  # w0 removed (ERRATA.md item 7)
    torch.testing.assert_close(p.W.abs().amax(-1).mean(-1), torch.full((R,), 1 / (2 * k), dtype=torch.float64))
    torch.testing.assert_close(rates, auto_eta1(grad, k))
    q = MLPParams(W0.clone(), p.b.clone(), p.a.clone())
    stage_one(q, lambda n: batch, steps=1, batch=4000, k=k, eta1=3.0, lambda1=0.1)  # a fixed rate and decay
    torch.testing.assert_close(q.W, (1 - 2 * 3.0 * 0.1) * W0 - 3.0 * grad)


def test_support_recovery_and_majority_on_planted_weights():
    W = torch.tensor([[[0.5, -0.4, 0.1, 0.3]], [[0.5, -0.2, 0.3, 0.1]]]).expand(2, 1, 4).reshape(2, 1, 4)
    W = torch.cat([W, W * 0.1], 1)  # (2 runs, 2 neurons, d = 4)
    rec = support_recovery(W, [0, 1])
    assert rec["recovered_frac"].tolist() == [1.0, 0.0]  # run 1: |w_1| = 0.2 < 0.3 off support
    assert majority(torch.tensor([[1., 1, -1, -1], [1, 1, 1, -1]])).tolist() == [0.0, 1.0]  # sign(0) = 0
    with pytest.raises(ParameterError, match="k < d"):
        support_recovery(W, [0, 1, 2, 3])


def test_first_stage_correlations_equal_brute_force():
    d, k = 6, 2
    p = init_symmetric(2, 8, d, k, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    p.W.add_(torch.randn(p.W.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    x = full_cube(d, dtype=torch.float64)
    got = first_stage_correlations(p, x, [0, 1], rows=5)
    f = forward(p, x)[..., 0]
    maj = torch.sign(x.sum(-1))
    for r in range(2):
        c1 = torch.stack([(f[r] * x[:, i]).mean() for i in range(d)]).abs()
        cm = torch.stack([(f[r] * maj * x[:, i]).mean() for i in range(d)]).abs()
        assert math.isclose(got["corr1_in_mean"][r], float(c1[:2].mean()), rel_tol=1e-9)
        assert math.isclose(got["corr1_off_max"][r], float(c1[2:].max()), rel_tol=1e-9)
        assert math.isclose(got["corrmaj_in_mean"][r], float(cm[:2].mean()), rel_tol=1e-9)
        assert math.isclose(got["corrmaj_off_max"][r], float(cm[2:].max()), rel_tol=1e-9)


# ------------------------------------------------------------------ runs

TEACHER = dict(d=8, k=2, width=16, B1=4000, T2=1000, eta2=0.05, eps=0.2, seeds=(0, 1), eval_size=256, device="cpu")


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    from simulate.two_stage_runs import train_teacher

    out = tmp_path_factory.mktemp("two_stage") / "teacher"
    train_teacher(ParityTwoStageTeacherConfig(**TEACHER), out, progress=False)
    return out


def test_teacher_learns_and_keeps_both_checkpoints(teacher_dir):
    s = json.loads((teacher_dir / "summary.json").read_text())
    assert s["kind"] == "parity-two-stage-teacher" and s["success_rate"] == 1.0
    for r in s["runs"]:
        assert r["recovered_frac"] == 1.0 and r["final_accuracy"] == 1.0 and r["final_loss"] < 0.2
        assert r["corr1_in_mean"] > 0 and r["corrmaj_in_mean"] < 1e-9  # the stage-1 output is odd: Maj x_i cancels
    assert sorted(p.name for p in (teacher_dir / "ckpt").iterdir()) == \
        ["step_000000001.safetensors", "step_000001001.safetensors"]


def test_student_resumes_from_its_stage_one_checkpoint_bit_for_bit(teacher_dir, tmp_path):
    from simulate.two_stage_runs import train_student

    cfg = ParityTwoStageStudentConfig(teacher=str(teacher_dir), supervision="oneshot", width=8, B1=500, T2=400,
                                      eta2=0.05, eps=0.3, seeds=(0, 1, 2), eval_size=256, device="cpu")
    whole = train_student(cfg, tmp_path / "whole", progress=False)
    killed = tmp_path / "killed"
    shutil.copytree(whole.path, killed)
    (killed / "summary.json").unlink()
    (killed / "metrics.parquet").unlink()
    (killed / "ckpt" / "step_000000401.safetensors").unlink()  # killed during stage 2
    with open(killed / "metrics.jsonl") as fh:
        rows = [line for line in fh if json.loads(line)["step"] <= 1]
    (killed / "metrics.jsonl").write_text("".join(rows))
    train_student(cfg, killed, progress=False)
    a, b = (json.loads((p / "summary.json").read_text()) for p in (whole.path, killed))
    assert a == b and len(a["runs"]) == 3
    assert [r["teacher_run"] for r in a["runs"]] == [0, 1, 0]  # student seed i <- teacher run i mod 2


@pytest.mark.parametrize("seeds", [(0, 1, 2), (3,)])
def test_supervisions_and_rates_in_one_program_equal_one_program_each(teacher_dir, tmp_path, seeds, monkeypatch):
    """Students that differ in supervision and rates train as ONE program (simulate.two_stage_shared) and
    write the bits that one program each writes: metrics, summaries and both checkpoints."""
    from safetensors.torch import load_file

    from simulate.two_stage_runs import train_student, train_students

    base = ParityTwoStageStudentConfig(teacher=str(teacher_dir), width=8, T2=300, eta2=0.05, eps=0.3, seeds=seeds,
                                       eval_size=256, eval_every=50, device="cpu")
    cfgs = [dataclasses.replace(base, supervision="labels", B1=300),
            dataclasses.replace(base, supervision="oneshot", B1=500, eta2=0.08),
            dataclasses.replace(base, supervision="progressive"),  # B1 = 0: Theorem B.1's own batch
            dataclasses.replace(base, supervision="oneshot", B1=500, eta1=0.3, lambda1=1.0)]
    import simulate.two_stage_runs as runs

    with monkeypatch.context() as m:  # the shared program, not one program each
        m.setattr(runs, "train_student", lambda *a, **k: pytest.fail("trained one program per member"))
        shared = train_students(None, None, [tmp_path / f"shared{j}" for j in range(4)], progress=False, configs=cfgs)
    for j, c in enumerate(cfgs):
        alone = train_student(c, tmp_path / f"alone{j}", progress=False)
        assert shared[j].metrics().equals(alone.metrics()), c
        assert shared[j].read_json("summary.json") == alone.read_json("summary.json")
        names = sorted(p.name for p in alone.ckpt.iterdir())
        assert sorted(p.name for p in shared[j].ckpt.iterdir()) == names and len(names) == 2
        for name in names:
            a, b = load_file(alone.ckpt / name), load_file(shared[j].ckpt / name)
            assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    again = train_students(None, None, [tmp_path / f"shared{j}" for j in range(4)], progress=False, configs=cfgs)
    assert [rd.read_json("summary.json") for rd in again] == [rd.read_json("summary.json") for rd in shared]


def test_progressive_needs_the_stage_one_checkpoint(teacher_dir, tmp_path):
    from simulate.two_stage_runs import train_student

    bare = tmp_path / "bare_teacher"
    shutil.copytree(teacher_dir, bare)
    (bare / "ckpt" / "step_000000001.safetensors").unlink()
    cfg = ParityTwoStageStudentConfig(teacher=str(bare), supervision="progressive", width=8, T2=10, device="cpu")
    with pytest.raises(ParameterError, match="no stage-1 checkpoint"):
        train_student(cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()  # refused before any file is written
    with pytest.raises(ParameterError, match="teacher .* is required for supervision=oneshot"):
        train_student(dataclasses.replace(cfg, teacher="", supervision="oneshot"), tmp_path / "out", progress=False)


def test_compare_rows(teacher_dir, tmp_path):
    from simulate.two_stage_config import ParityTwoStageCompareConfig
    from simulate.two_stage_runs import run_compare

    cfg = ParityTwoStageCompareConfig(
        teacher=ParityTwoStageTeacherConfig(**TEACHER),
        student=ParityTwoStageStudentConfig(width=16, B1=2000, T2=1000, eta2=0.05, eps=0.3, seeds=(0, 1),
                                            eval_size=256, device="cpu"))
    rows = run_compare(cfg, tmp_path / "cmp", progress=False)
    assert [r["strategy"] for r in rows] == ["labels", "oneshot", "progressive"]
    by = {r["strategy"]: r for r in rows}
    for s in ("labels", "oneshot"):  # the final teacher is as good as the labels here
        assert by[s]["recovered_frac"] == 1.0 and by[s]["success_rate"] == 1.0, by[s]
        assert by[s]["samples_to_eps"] is not None
    assert run_compare(cfg, tmp_path / "cmp", progress=False) == rows  # a rerun reuses every run


def test_labels_b1_star_grows_with_d(tmp_path):
    """End to end at k = 2 (stage-1 recovery as the success rule): labels' B1* at d = 16 exceeds that at
    d = 8 (Lemma B.2: B1 ~ |zeta_1(d)|^-2 log(m d) ~ d log d)."""
    from experiments.scaling import run_scaling

    spec = tmp_path / "spec.yaml"
    spec.write_text("""
seeds: [0, 1, 2, 3, 4]
target_rate: 0.8
factor: 1.4142135623730951
student: {T2: 2, eval_size: 1024, success: recovery, device: cpu}
settings:
  - {k: 2, d: [8, 16], student_width: [16], supervisions: [labels], B1: [8, 16384]}
""")
    res = run_scaling(str(spec), tmp_path / "out", progress=False)
    star = {r["setting"]["d"]: r["B1_star"] for r in res["results"]}
    assert all(r["censored"] is None for r in res["results"]), res["results"]
    assert star[16] > star[8], star
    again = run_scaling(str(spec), tmp_path / "out", progress=False)  # a rerun reads the finished searches
    assert [r["B1_star"] for r in again["results"]] == [r["B1_star"] for r in res["results"]]


# ------------------------------------------------------------------ the command line


@pytest.mark.slow
def test_scaling_smoke_tier_end_to_end(tmp_path):
    """`icurr scaling run --tier smoke`: teachers, B1* searches, the online smoke sweep and the report."""
    from cli_helpers import run_icurr

    out = tmp_path / "s"
    res = run_icurr("scaling", "run", "--tier", "smoke", "--out", out, "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    meta = json.loads((out / "scaling.json").read_text())
    assert meta["tier"] == "smoke" and meta["finished"] and meta["wall_seconds"] > 0
    searches = [json.loads(p.read_text()) for p in (out / "searches").glob("*/search.json")]
    assert len(searches) == 4 and all(s["n_evaluations"] >= 1 for s in searches)
    labels8 = next(s for s in searches if s["setting"]["supervision"] == "labels" and s["setting"]["d"] == 8)
    assert labels8["B1_star"] is not None and labels8["censored"] is None  # d = 8 learns inside the grid
    assert any((out / "online").glob("*/summary.json"))
    md = (out / "report" / "report.md").read_text()
    assert "## Measured vs predicted scaling: stage-1 batch B1* of Algorithm 1" in md
    assert (out / "report" / "scaling_two_stage_b1.png").is_file()
    again = run_icurr("scaling", "run", "--tier", "smoke", "--out", out, "--no-progress")  # nothing left to train
    assert again.returncode == 0 and json.loads((out / "scaling.json").read_text())["started"] == meta["started"]


def test_scaling_refuses_bad_specs_before_any_work(tmp_path):
    from cli_helpers import run_icurr

    spec = tmp_path / "bad.yaml"
    spec.write_text("settings:\n  - {k: 2, d: [9], supervisions: [labels], B1: [16, 64], student: {width: 3}}\n")
    res = run_icurr("scaling", "run", "--tier", spec, "--out", tmp_path / "o")
    assert res.returncode == 2 and "width must be even" in res.stderr and not (tmp_path / "o").exists()
    spec.write_text("settings:\n  - {k: 2, d: [9], supervisions: [labels], B1: [64, 16], colour: red}\n")
    res = run_icurr("scaling", "run", "--tier", spec, "--out", tmp_path / "o")
    assert res.returncode == 2 and "colour" in res.stderr and not (tmp_path / "o").exists()
    res = run_icurr("scaling", "run", "--tier", "huge", "--out", tmp_path / "o")
    assert res.returncode == 2 and "spec must be one of smoke, cpu, paper" in res.stderr


def test_two_stage_commands(tmp_path):
    from cli_helpers import run_icurr

    t = ["d=8", "k=2", "width=16", "B1=4000", "T2=200", "eta2=0.05", "seeds=0,1", "eval_size=256", "device=cpu"]
    res = run_icurr("parity-two-stage", "teacher", "--out", tmp_path / "t", "--no-progress", *t)
    assert res.returncode == 0, res.stderr
    res = run_icurr("parity-two-stage", "student", "--teacher", tmp_path / "t", "--supervision", "progressive",
                    "--out", tmp_path / "s", "--no-progress", "width=8", "B1=100", "T2=50", "seeds=0,1",
                    "eval_size=256", "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [r["teacher_run"] for r in rows] == [0, 1] and {"recovered_frac", "corr1_in_mean"} <= set(rows[0])
    res = run_icurr("parity-two-stage", "student", "--supervision", "labels", "--out", tmp_path / "l",
                    "--no-progress", "d=8", "k=2", "width=8", "B1=100", "T2=50", "seeds=0", "eval_size=256")
    assert res.returncode == 0, res.stderr  # labels need no teacher


def test_sweep_of_two_stage_compares(tmp_path):
    """A sweep of kind parity-two-stage-compare keeps each point's seed pairs in one run directory and its
    rows (one per supervision) reach the result store."""
    from experiments.sweep import parse_sweep, run_sweep
    from infra.store import load_results

    sweep = parse_sweep({"kind": "parity-two-stage-compare",
                         "base": {"teacher.d": 8, "teacher.k": 2, "teacher.width": 16, "teacher.B1": 4000,
                                  "teacher.T2": 200, "teacher.eval_size": 256, "teacher.seeds": [0, 1],
                                  "teacher.device": "cpu", "student.width": 8, "student.T2": 100,
                                  "student.eval_size": 256, "student.seeds": [0, 1], "student.device": "cpu",
                                  "supervisions": ["labels", "progressive"]},
                         "grid": {"student.B1": [100, 1000]}})
    run_sweep(sweep, tmp_path / "sw", progress=False)
    r = load_results(tmp_path / "sw")
    assert len(r) == 4 and set(r["strategy"]) == {"labels", "progressive"}
    assert set(r["kind"]) == {"parity-two-stage-compare"} and (r["seeds"] == 2).all()
    assert sorted(r["student.B1"].unique()) == [100, 1000]


def test_sweep_of_two_stage_students_shares_one_program(teacher_dir, tmp_path):
    """A sweep of parity-two-stage-student points that differ in supervision, B1 and eta2 is one group
    (one program) and its run directories hold what one program per point writes."""
    from experiments.sweep import expand, group_runs, parse_sweep, run_sweep
    from infra.store import load_results
    from simulate.two_stage_runs import train_student

    sweep = parse_sweep({"kind": "parity-two-stage-student",
                         "base": {"teacher": str(teacher_dir), "width": 8, "T2": 200, "eval_size": 256,
                                  "seeds": [0, 1], "device": "cpu"},
                         "grid": {"supervision": ["labels", "oneshot", "progressive"], "eta2": [0.03, 0.06],
                                  "B1": [200, 600]}})
    runs = expand(sweep)
    assert len(runs) == 12 and len(group_runs(runs)) == 1
    outcome = run_sweep(sweep, tmp_path / "sw", progress=False)
    assert len(outcome.done) == 12 and not outcome.failed
    r = load_results(tmp_path / "sw")
    assert len(r) == 24 and set(r["supervision"]) == {"labels", "oneshot", "progressive"}  # a row per seed
    for spec in runs[::5]:  # a few points trained alone: the same bits
        alone = train_student(spec.config, tmp_path / "alone" / spec.hash, progress=False)
        shared = tmp_path / "sw" / spec.hash
        assert json.loads((shared / "summary.json").read_text()) == alone.read_json("summary.json")
    timing = json.loads((tmp_path / "sw" / runs[0].hash / "timing.json").read_text())
    assert timing["group_runs"] == 12 and timing["seconds"] > 0  # the program's time, per run


def test_sweep_of_two_stage_teachers_shares_one_program(tmp_path):
    """Algorithm 1 teachers that differ in eta2 and B1 train as one program, with the bits of one each."""
    from experiments.sweep import expand, group_runs, parse_sweep, run_sweep
    from simulate.two_stage_runs import train_teacher

    sweep = parse_sweep({"kind": "parity-two-stage-teacher",
                         "base": {**{k: v for k, v in TEACHER.items() if k not in ("eta2", "B1")}, "T2": 300,
                                  "seeds": [0, 1]},
                         "grid": {"eta2": [0.03, 0.05], "B1": [1000, 4000]}})
    runs = expand(sweep)
    assert len(runs) == 4 and len(group_runs(runs)) == 1
    assert not run_sweep(sweep, tmp_path / "sw", progress=False).failed
    for spec in runs:
        alone = train_teacher(spec.config, tmp_path / "alone" / spec.hash, progress=False)
        shared = tmp_path / "sw" / spec.hash
        assert json.loads((shared / "summary.json").read_text()) == alone.read_json("summary.json")
        assert sorted(p.name for p in (shared / "ckpt").iterdir()) == sorted(p.name for p in alone.ckpt.iterdir())


def test_killed_shared_program_resumes_member_by_member_bit_for_bit(teacher_dir, tmp_path, monkeypatch):
    """A shared program killed during stage 2 leaves each member its stage-1 checkpoint; the rerun resumes
    every member as its own program from there and ends with the bits of the uninterrupted program."""
    import simulate.two_stage_runs as runs

    base = ParityTwoStageStudentConfig(teacher=str(teacher_dir), width=8, B1=400, T2=300, eta2=0.05, eps=0.3,
                                       seeds=(0, 1), eval_size=256, eval_every=50, device="cpu")
    cfgs = [dataclasses.replace(base, supervision=s) for s in ("labels", "oneshot", "progressive")]
    whole = runs.train_students(None, None, [tmp_path / f"whole{j}" for j in range(3)], progress=False, configs=cfgs)
    killed = [tmp_path / f"killed{j}" for j in range(3)]
    for rd, k in zip(whole, killed):
        shutil.copytree(rd.path, k)
        (k / "summary.json").unlink()
        (k / "metrics.parquet").unlink()
        (k / "ckpt" / "step_000000301.safetensors").unlink()
        with open(k / "metrics.jsonl") as fh:
            rows = [line for line in fh if json.loads(line)["step"] <= 100]
        (k / "metrics.jsonl").write_text("".join(rows))
    calls = []
    real = runs.train_student
    monkeypatch.setattr(runs, "train_student", lambda c, d, **kw: calls.append(d) or real(c, d, **kw))
    again = runs.train_students(None, None, killed, progress=False, configs=cfgs)
    assert len(calls) == 3  # member by member, each from its checkpoint
    for a, b in zip(whole, again):
        assert a.read_json("summary.json") == b.read_json("summary.json")
        assert a.metrics().equals(b.metrics())
