"""Results that cannot be silently wrong: every hostile try of the reliability issue, as a test.

``--out`` naming a run of another config (refused, untouched; ``--overwrite`` replaces it), a finished
run (not retrained), a resume (said), step 0 after a resume from step 0 (logged once), a kill inside
``truncate_metrics`` (the old log intact), a corrupt latest checkpoint (the previous one, bit-identical
to an unkilled run), ``lr=1e308`` (diverged, in the summary), file modes under umask 022, ``errata
--write`` (only where told) and a resume under another thread count (refused unless allowed).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cli_helpers import run_icurr
from infra.config import apply_overrides, config_from_dict, config_hash, config_to_dict
from infra.rundir import FILE_MODE, RunConflictError, RunDir, config_difference
from simulate.checkpoints import CheckpointDir
from simulate.config import CompareConfig, StudentConfig, TeacherConfig
from simulate.teacher import train_teacher

ROOT = Path(__file__).resolve().parents[1]
#: A tiny MLP teacher (0.3 s): the same words on the command line and in the library.
WORDS = ["d=8", "k=2", "width=32", "steps=1000", "eval_every=100", "checkpoint_every=200", "probe_every=0"]
CFG = apply_overrides(TeacherConfig(), [*WORDS, "device=cpu"])


def cli(*args) -> list[str]:
    return ["parity", "teacher", *WORDS, "--device", "cpu", "--no-progress", *map(str, args)]


def mtimes(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*") if p.is_file()}


def killed(out: Path, monkeypatch, *, at: int, before_rows: bool = False, cfg=CFG) -> None:
    """Train ``cfg`` into ``out`` and 'kill' it when the rows of step ``at`` are appended (after them,
    or before them with ``before_rows``)."""
    original = RunDir.append_metrics

    def dying(self, rows):
        rows = list(rows)
        if before_rows and rows and rows[0]["step"] == at:
            raise KeyboardInterrupt
        original(self, rows)
        if rows and rows[0]["step"] == at:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunDir, "append_metrics", dying)
    with pytest.raises(KeyboardInterrupt):
        train_teacher(cfg, out, progress=False)
    monkeypatch.setattr(RunDir, "append_metrics", original)
    assert not RunDir(out).finished


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny teacher, trained straight through."""
    out = tmp_path_factory.mktemp("integrity") / "teacher"
    train_teacher(CFG, out, progress=False)
    return out


def final_params(out: Path):
    return CheckpointDir(RunDir(out).ckpt).load(CFG.steps).params


def assert_same_run(a: Path, b: Path) -> None:
    """Bit-identical final parameters and metrics (and no step logged twice)."""
    pa, pb = final_params(a), final_params(b)
    assert all(torch.equal(getattr(pa, k), getattr(pb, k)) for k in ("W", "b", "a"))
    ma, mb = RunDir(a).metrics(), RunDir(b).metrics()
    assert ma["step"].tolist() == mb["step"].tolist() == sorted(set(ma["step"]))
    assert ma["test_loss"].tolist() == mb["test_loss"].tolist()


# ---------------------------------------------------------------- --out of another config, finished, resumed

def test_out_of_another_config_is_refused_untouched_and_overwrite_replaces_it(finished, tmp_path):
    out = tmp_path / "x"
    shutil.copytree(finished, out)
    before = mtimes(out)
    r = run_icurr(*cli("width=64", "--out", out))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == (f"icurr: error: --out {out} holds a run of another config: width 32 != 64 "
                                "(use --overwrite to replace it)")
    assert mtimes(out) == before
    r = run_icurr(*cli("width=64", "--out", out, "--overwrite"))
    assert r.returncode == 0, r.stderr
    assert RunDir(out).read_json("config.json")["width"] == 64 and RunDir(out).finished
    assert CheckpointDir(RunDir(out).ckpt).load("final").params.width == 64
    assert len(RunDir(out).metrics()) == 11  # the old run's rows are gone


def test_a_finished_run_of_the_same_config_is_not_retrained(finished, tmp_path):
    out = tmp_path / "x"
    shutil.copytree(finished, out)
    before = mtimes(out)
    r = run_icurr(*cli("--out", out))
    assert r.returncode == 0 and r.stderr.strip() == f"finished (not retrained): {out}"
    assert "final_accuracy" in r.stdout and "diverged_at" not in r.stdout
    assert mtimes(out) == before


def test_nested_fields_and_old_field_names(tmp_path):
    cmp = CompareConfig(teacher=CFG)
    other = dataclasses.replace(cmp, teacher=dataclasses.replace(CFG, width=64))
    assert config_difference(config_to_dict(cmp), other) == "teacher.width 32 != 64"
    assert config_difference(config_to_dict(cmp), cmp) is None
    assert config_difference(config_to_dict(CFG), StudentConfig()).startswith('kind "TeacherConfig" != "StudentConfig"')
    # a run written before the renames (intermediate -> first_checkpoint, fields added since) is the same config
    old = tmp_path / "old"
    shutil.copytree(ROOT / "tests" / "data" / "pre_renovation" / "student", old)
    stored = RunDir(old).read_json("config.json")
    assert "intermediate" in stored and "first_skip" not in stored
    cfg = config_from_dict(StudentConfig, stored)
    before = mtimes(old)
    from simulate.student import train_student

    assert train_student(cfg, old, progress=False).finished and mtimes(old) == before
    with pytest.raises(RunConflictError, match=r"holds a run of another config: first_checkpoint .* != \"3000\""):
        train_student(dataclasses.replace(cfg, first_checkpoint="3000"), old, progress=False)
    assert mtimes(old) == before


def test_a_compare_checks_its_teacher_and_students_before_training(tmp_path):
    cfg = CompareConfig(teacher=CFG, student=dataclasses.replace(StudentConfig(), width=16, steps=400, eval_every=100,
                                                                 stage_steps=200, device="cpu"),
                        strategies=("ce", "oneshot"))
    from simulate.compare import run_compare

    out = tmp_path / "cmp"
    tdir = out / config_hash(cfg.teacher)
    RunDir(tdir).write_json("config.json", config_to_dict(dataclasses.replace(CFG, width=64)))
    with pytest.raises(RunConflictError, match=f"--out {tdir} holds a run of another config: width 64 != 32"):
        run_compare(cfg, out, progress=False)
    assert [p.name for p in out.iterdir()] == [tdir.name] and [p.name for p in tdir.iterdir()] == ["config.json"]
    other = dataclasses.replace(cfg, teacher=dataclasses.replace(CFG, lr=0.1))
    (out / "compare.json").write_text(json.dumps({"config": config_to_dict(other), "index": {}, "rows": []}))
    with pytest.raises(RunConflictError, match="holds a comparison of another config: teacher.lr 0.1 != 0.05"):
        run_compare(cfg, out, progress=False)
    run = tmp_path / "run"
    RunDir(run).write_json("config.json", config_to_dict(CFG))
    with pytest.raises(RunConflictError, match="holds a run, not a comparison"):
        run_compare(cfg, run, progress=False)


# ---------------------------------------------------------------- resume gaps

def test_resume_says_from_which_step_and_gives_the_unkilled_run(finished, tmp_path, monkeypatch):
    out = tmp_path / "t"
    killed(out, monkeypatch, at=700)  # checkpoints 0..600; the rows of 700 logged
    r = run_icurr(*cli("--out", out))
    assert r.returncode == 0 and r.stderr.strip() == f"resuming from step 600: {out}"
    assert_same_run(out, finished)
    assert [e["step"] for e in RunDir(out).read_json("env.json")["resumes"]] == [600]


def test_a_resume_from_step_0_logs_step_0_once(finished, tmp_path, monkeypatch, caplog):
    out = tmp_path / "t"
    killed(out, monkeypatch, at=100, before_rows=True)  # only the checkpoint of step 0
    assert CheckpointDir(RunDir(out).ckpt).steps() == [0]
    with caplog.at_level(logging.INFO, logger="infra"):
        train_teacher(CFG, out, progress=False)
    assert f"resuming from step 0: {out}" in caplog.messages
    assert_same_run(out, finished)


def test_truncate_metrics_is_atomic(tmp_path, monkeypatch):
    rd = RunDir(tmp_path / "r")
    rd.append_metrics([{"step": s, "run": 0, "test_loss": 1.0 / (s + 1)} for s in range(0, 50, 10)])
    with open(rd.path / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 50, "ru')  # a line cut by a kill
    old = (rd.path / "metrics.jsonl").read_bytes()

    def crash(src, dst):
        raise OSError("killed between writing the kept rows and the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="killed between"):
        rd.truncate_metrics(20)
    monkeypatch.undo()
    assert (rd.path / "metrics.jsonl").read_bytes() == old and sorted(p.name for p in rd.path.iterdir()) == [
        "metrics.jsonl"]
    rd.truncate_metrics(20)
    assert (rd.path / "metrics.jsonl").read_bytes() == b"".join(old.splitlines(True)[:3])


def test_a_corrupt_latest_checkpoint_resumes_from_the_previous_one(finished, tmp_path, monkeypatch, caplog):
    out = tmp_path / "t"
    killed(out, monkeypatch, at=700)
    ck = CheckpointDir(RunDir(out).ckpt)
    assert ck.steps()[-1] == 600
    data = ck.path(600).read_bytes()
    ck.path(600).write_bytes(data[: len(data) // 2])  # truncated (a copy cut short, a full disk)
    with caplog.at_level(logging.INFO, logger="infra"):
        train_teacher(CFG, out, progress=False)
    assert any("step_000000600.safetensors is corrupt" in m and "trying step 400" in m for m in caplog.messages)
    assert f"resuming from step 400: {out}" in caplog.messages
    assert (ck.root / "step_000000600.safetensors.corrupt").is_file()
    assert_same_run(out, finished)

    bad = tmp_path / "header"  # a bad header (not JSON) in the latest, through the command line
    killed(bad, monkeypatch, at=700)
    path = CheckpointDir(RunDir(bad).ckpt).path(600)
    raw = bytearray(path.read_bytes())
    raw[8:16] = b"\xff" * 8
    path.write_bytes(bytes(raw))
    r = run_icurr(*cli("--out", bad))
    assert r.returncode == 0 and "is corrupt" in r.stderr and f"resuming from step 400: {bad}" in r.stderr
    assert_same_run(bad, finished)


# ---------------------------------------------------------------- divergence

def test_a_diverged_run_says_so_and_stops(tmp_path):
    out = tmp_path / "t"
    rd = train_teacher(apply_overrides(CFG, ["lr=1e308"]), out, progress=False)
    summary = rd.read_json("summary.json")
    assert summary["diverged"] is True and summary["runs"][0]["diverged_at"] == 100
    assert rd.metrics()["step"].max() == 100  # every run diverged: stopped
    r = run_icurr(*cli("--out", tmp_path / "cli", "lr=1e308"))
    assert r.returncode == 0
    assert r.stderr.count("\n") == 1 and "diverged at step 100: run 0 of" in r.stderr
    assert "every run diverged: training stopped" in r.stderr and "diverged_at" in r.stdout


def test_a_batched_program_records_each_runs_divergence_and_goes_on(tmp_path):
    r = run_icurr(*cli("--out", tmp_path / "t", "seeds=0,1", "run_lrs=0.05,1e308"))
    assert r.returncode == 0 and r.stderr.strip() == f"diverged at step 100: run 1 of {tmp_path / 't'} " \
                                                     "(non-finite test_loss, parameters)"
    rd = RunDir(tmp_path / "t")
    summary = rd.read_json("summary.json")
    assert summary["diverged"] is True
    assert [(e["run"], e["diverged_at"]) for e in summary["runs"]] == [(0, None), (1, 100)]
    assert summary["runs"][0]["final_accuracy"] == 1.0 and rd.metrics()["step"].max() == 1000
    df = rd.metrics()
    assert df[df["run"] == 1]["diverged"].eq(True).tolist() == [False] + [True] * 10  # from step 100 on
    assert df[df["run"] == 0]["diverged"].isna().all()


def test_a_diverged_transformer_says_so(tmp_path):
    from distill.config import ParityTransformerTeacherConfig
    from distill.runs import train_teacher as train_transformer

    cfg = ParityTransformerTeacherConfig(d=6, k=2, layers=1, heads=1, head_dim=4, steps=40, batch=8, lr=1e30,
                                         eval_every=10, eval_size=32, checkpoint_every=20, probe_every=0,
                                         device="cpu")
    summary = train_transformer(cfg, tmp_path / "t", progress=False).read_json("summary.json")
    assert summary["diverged"] is True and summary["runs"][0]["diverged_at"] == 10


# ---------------------------------------------------------------- files

def test_files_get_the_umask_mode(finished, tmp_path):
    assert FILE_MODE == 0o666 & ~_umask()
    for p in RunDir(finished).path.rglob("*"):
        if p.is_file():
            assert p.stat().st_mode & 0o777 == FILE_MODE, p
    script = (
        "import sys, torch; from pathlib import Path; "
        "from infra.rundir import RunDir, atomic_write_text; from infra.checkpoints import write_safetensors; "
        "d = Path(sys.argv[1]); atomic_write_text(d / 'a.txt', 'x'); "
        "write_safetensors(d / 'c.safetensors', {'t': torch.zeros(2)}, {}); "
        "rd = RunDir(d / 'run'); rd.append_metrics([{'step': 0, 'run': 0}]); rd.finish({'runs': []}); "
        "print(sorted((str(p.relative_to(d)), oct(p.stat().st_mode & 0o777)) for p in d.rglob('*') if p.is_file()))"
    )
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                         preexec_fn=lambda: os.umask(0o022), check=True).stdout
    modes = dict(eval(out))
    assert set(modes) == {"a.txt", "c.safetensors", "run/metrics.jsonl", "run/metrics.parquet", "run/summary.json"}
    assert set(modes.values()) == {"0o644"}


def _umask() -> int:
    old = os.umask(0o022)
    os.umask(old)
    return old


def test_errata_write_writes_only_where_told(tmp_path, capsys):
    from theory.errata import ERRATA_PATH, main, render

    before = ERRATA_PATH.stat().st_mtime_ns
    r = run_icurr("theory", "errata")
    assert r.returncode == 0 and r.stdout == render()
    r = run_icurr("theory", "errata", "--write", tmp_path / "E.md")
    assert r.returncode == 0 and (tmp_path / "E.md").read_text() == render()
    main(["--write", str(tmp_path / "F.md")])
    assert (tmp_path / "F.md").read_text() == render()
    assert ERRATA_PATH.stat().st_mtime_ns == before and sorted(p.name for p in tmp_path.iterdir()) == ["E.md", "F.md"]
    assert oct((tmp_path / "E.md").stat().st_mode & 0o777) == oct(FILE_MODE)


# ---------------------------------------------------------------- thread counts

def test_a_resume_under_another_thread_count_is_refused_unless_allowed(finished, tmp_path, monkeypatch):
    n = torch.get_num_threads()
    out = tmp_path / "t"
    try:
        torch.set_num_threads(1)
        killed(out, monkeypatch, at=700)
        assert RunDir(out).read_json("env.json")["cpu_threads"] == 1
        torch.set_num_threads(2)
        before = mtimes(out)
        r = run_icurr(*cli("--out", out))
        assert r.returncode == 2 and r.stderr.count("\n") == 1
        assert f"--out {out} was trained with 1 CPU threads and this process has 2" in r.stderr
        assert "--allow-thread-change" in r.stderr and mtimes(out) == before
        r = run_icurr(*cli("--out", out, "--allow-thread-change"))
        assert r.returncode == 0 and f"resuming from step 600: {out}" in r.stderr
    finally:
        torch.set_num_threads(n)
    env = RunDir(out).read_json("env.json")
    assert env["cpu_threads"] == 1 and [(e["step"], e["cpu_threads"]) for e in env["resumes"]] == [(600, 2)]
    assert {"host", "argv", "started", "ended"} <= set(env)
    assert RunDir(out).finished


def test_sweep_status_says_which_runs_diverged(tmp_path):
    import yaml

    from infra.store import sweep_status

    sweep = tmp_path / "s.yaml"
    base = dict(token.split("=") for token in WORDS)
    sweep.write_text(yaml.safe_dump({"kind": "teacher", "base": {**base, "device": "cpu"},
                                     "grid": {"lr": [0.05, 1e308]}}))
    r = run_icurr("sweep", "run", sweep, "--out", tmp_path / "out", "--no-progress", "--allow-thread-change")
    assert r.returncode == 0, r.stderr
    rows, counts = sweep_status(tmp_path / "out")
    assert counts["done"] == 2
    assert sorted(row["detail"] for row in rows) == ["", "diverged at step 100"]
    table = run_icurr("sweep", "status", tmp_path / "out").stdout
    assert "diverged at step 100" in table
