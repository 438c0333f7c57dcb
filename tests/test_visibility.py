"""Long jobs are visible (#14): plain progress lines when stderr is not a terminal, their throttling,
the runs bar of a sweep, what env.json records, and the optional TensorBoard sink (ICURR_LOG)."""
import json
import logging
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import torch

import infra.runloop as runloop
from experiments.sweep import parse_sweep, run_sweep
from infra import sinks
from infra.rundir import RunDir, git_state
from infra.runloop import Progress
from simulate.config import TeacherConfig
from simulate.teacher import train_teacher
from theory._checks import ParameterError

ROOT = Path(__file__).resolve().parent.parent
TINY = dict(d=10, k=2, width=32, steps=2000, eval_every=250, checkpoint_every=500, probe_every=500, seeds=(0, 1))
#: ``[teacher] step 500/2000 acc 0.713 loss 0.52 1.2k steps/s eta 31 s``
LINE = re.compile(r"^\[teacher\] step (\d+)/2000 acc (0\.\d{3}|1\.000) loss (\S+) (\S+) steps/s eta (\d+) s$")


@pytest.fixture
def no_sinks(monkeypatch):
    monkeypatch.delenv("ICURR_LOG", raising=False)
    monkeypatch.delenv("ICURR_LOG_DIR", raising=False)


def test_plain_lines_at_every_evaluation_on_stderr_only(tmp_path, capsys, monkeypatch, no_sinks):
    monkeypatch.setattr(runloop, "PLAIN_EVERY_S", 0.0)  # no throttling: one line per evaluation
    rd = train_teacher(TeacherConfig(**TINY), tmp_path / "t", progress=True)
    out = capsys.readouterr()
    assert out.out == ""  # tables go to stdout, progress never
    lines = out.err.strip().splitlines()
    assert lines[0] == "[teacher] step 0/2000 acc {:.3f} loss {:.3f}".format(
        *_best(rd, 0))  # the first line: no rate yet
    matched = [LINE.match(line) for line in lines[1:]]
    assert all(matched), lines
    assert [int(m.group(1)) for m in matched] == list(range(250, 2001, 250))
    acc, loss = _best(rd, 2000)
    last = matched[-1]
    assert last.group(2) == f"{acc:.3f}" and float(last.group(3)) == pytest.approx(loss, rel=0.02)
    assert int(last.group(5)) == 0  # nothing left at the last step
    rate = last.group(4)
    assert float(rate.rstrip("kM")) > 0


def _best(rd: RunDir, step: int) -> tuple[float, float]:
    df = rd.metrics()
    at = df[df["step"] == step]
    return float(at["test_accuracy"].max()), float(at["test_loss"].min())


def test_plain_lines_are_throttled_to_one_per_interval_plus_first_and_last(capsys, monkeypatch):
    clock = iter([0.0] + [0.5 * i for i in range(1, 30)] + [99.0] * 5)
    monkeypatch.setattr(runloop, "_monotonic", lambda: next(clock))
    bar = Progress(20, desc="job", unit="step", every_s=2.0)  # t0 = 0
    for n in range(1, 21):  # update n at t = 0.5 n
        bar.update_to(n, loss=1.0 / n)
    bar.close()
    lines = capsys.readouterr().err.strip().splitlines()
    shown = [int(re.match(r"\[job\] step (\d+)/20", line).group(1)) for line in lines]
    assert shown == [1, 5, 9, 13, 17, 20]  # the first, then >= 2 s apart, and the last
    assert lines[1] == "[job] step 5/20 loss 0.200 2 steps/s eta 8 s"


def test_throttled_last_line_is_printed_at_close(capsys, monkeypatch):
    clock = iter([0.0, 1.0, 1.5, 1.6, 1.7])
    monkeypatch.setattr(runloop, "_monotonic", lambda: next(clock))
    bar = Progress(10, desc="job", every_s=5.0)
    bar.update_to(2)
    bar.update_to(4)  # throttled, and the job stops here (e.g. every run diverged)
    bar.close()
    assert [line.split()[2] for line in capsys.readouterr().err.splitlines()] == ["2/10", "4/10"]


def test_no_progress_prints_nothing(tmp_path, capsys, no_sinks):
    train_teacher(TeacherConfig(**dict(TINY, steps=500)), tmp_path / "t", progress=False)
    assert capsys.readouterr().err == ""


def test_env_json_records_command_git_host_times_and_threads(tmp_path, no_sinks):
    before = datetime.now().astimezone()
    rd = train_teacher(TeacherConfig(**dict(TINY, steps=500)), tmp_path / "t", progress=False)
    env = rd.read_json("env.json")
    assert env["argv"] == sys.argv and env["cpu_threads"] == torch.get_num_threads()
    import socket

    assert env["host"] == socket.gethostname()
    started, ended = datetime.fromisoformat(env["started"]), datetime.fromisoformat(env["ended"])
    assert started.utcoffset() == ended.utcoffset() == timedelta(0)  # UTC
    assert before - timedelta(seconds=1) <= started <= ended <= datetime.now().astimezone() + timedelta(seconds=1)
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        head = ""
    if (ROOT / ".git").exists() and head:
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                    capture_output=True, text=True).stdout.strip())
        assert env["git_sha"] == head and env["git_dirty"] is dirty
    else:
        assert env["git_sha"] is None and env["git_dirty"] is None


def test_git_state_is_none_without_git(monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr("infra.rundir.subprocess.run", no_git)
    assert git_state.__wrapped__() == (None, None)


# ---------------------------------------------------------------- sweeps

SWEEP = {"kind": "teacher", "base": {k: v for k, v in TINY.items() if k != "seeds"}, "grid": {"seeds": [0, 1, 2]}}


def test_sweep_runs_bar_reaches_n_of_n_with_step_lines_below(tmp_path, capsys, caplog, no_sinks):
    outcome = run_sweep(parse_sweep(SWEEP), tmp_path, progress=True)
    assert len(outcome.done) == 3
    err = capsys.readouterr()
    assert err.out == ""
    lines = err.err.strip().splitlines()
    runs = [line for line in lines if line.startswith("[sweep teacher]")]
    # the bar moves as each run's summary is written: the first line, then (throttled) the last
    assert [line.split(" runs/s")[0].rsplit(" ", 1)[0] for line in runs] == ["[sweep teacher] run 1/3",
                                                                            "[sweep teacher] run 3/3"]
    steps = [int(m.group(1)) for m in map(LINE.match, lines) if m]
    assert lines[0].startswith("[teacher] step 0/2000 acc ") and steps[-1] == 2000  # the program's own lines
    assert lines.index(runs[-1]) > max(i for i, line in enumerate(lines) if LINE.match(line))
    # a second sweep finds them finished and says so
    with caplog.at_level(logging.INFO, logger="experiments"):
        again = run_sweep(parse_sweep(SWEEP), tmp_path, progress=True)
    assert len(again.skipped) == 3
    assert f"3 of 3 runs finished (not retrained): {tmp_path.resolve()}" in caplog.messages
    assert "[sweep teacher]" not in capsys.readouterr().err  # nothing to show: no bar moved


def test_sweep_resuming_a_killed_group_says_from_which_step(tmp_path, monkeypatch, caplog, no_sinks):
    log = runloop.RunLoop.log

    def killed_at_1000(self, step, **context):
        if step == 1000:
            raise KeyboardInterrupt
        return log(self, step, **context)

    monkeypatch.setattr(runloop.RunLoop, "log", killed_at_1000)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(parse_sweep(SWEEP), tmp_path, progress=False)
    monkeypatch.setattr(runloop.RunLoop, "log", log)
    with caplog.at_level(logging.INFO, logger="infra"):
        outcome = run_sweep(parse_sweep(SWEEP), tmp_path, progress=False)
    assert len(outcome.done) == 3
    assert any(m.startswith("resuming from step 500: ") for m in caplog.messages), caplog.messages


# ---------------------------------------------------------------- the metrics sink

def _scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_sink_writes_the_metrics_rows_and_changes_no_file(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    cfg = TeacherConfig(**TINY)
    monkeypatch.delenv("ICURR_LOG", raising=False)
    plain = train_teacher(cfg, tmp_path / "plain", progress=False)
    monkeypatch.setenv("ICURR_LOG", "tensorboard")
    monkeypatch.delenv("ICURR_LOG_DIR", raising=False)
    logged = train_teacher(cfg, tmp_path / "logged", progress=False)
    # the run's own files are the same with and without the sink
    for name in ("metrics.jsonl", "summary.json", "config.json"):
        assert (plain.path / name).read_bytes() == (logged.path / name).read_bytes(), name
    assert (plain.path / "metrics.parquet").read_bytes() == (logged.path / "metrics.parquet").read_bytes()
    assert not (plain.path / "tb").exists()
    df = logged.metrics()
    for r in (0, 1):
        got = _scalars(logged.path / "tb" / f"run{r}")
        rows = df[df["run"] == r]
        assert {"test_accuracy", "test_loss", "samples"} <= set(got)
        assert "step" not in got and "run" not in got and "seed" not in got
        for tag, points in got.items():
            want = rows[["step", tag]].dropna()
            assert [s for s, _ in points] == want["step"].tolist(), tag
            assert [v for _, v in points] == pytest.approx(want[tag].tolist(), rel=1e-6, abs=1e-7), tag


def test_log_dir_and_sweep_default(tmp_path, monkeypatch):
    monkeypatch.delenv("ICURR_LOG_DIR", raising=False)
    assert sinks.log_dir_for(tmp_path / "abc") == tmp_path / "abc" / "tb"
    with sinks.default_log_root(tmp_path / "out" / "tb" / "g1"):
        assert sinks.log_dir_for(tmp_path / ".work" / "teacher") == tmp_path / "out" / "tb" / "g1" / "teacher"
        monkeypatch.setenv("ICURR_LOG_DIR", str(tmp_path / "logs"))
        assert sinks.log_dir_for(tmp_path / "abc") == tmp_path / "logs" / "abc"


def test_sink_names_are_checked(monkeypatch):
    assert sinks.requested_sinks({}) == () and sinks.requested_sinks({"ICURR_LOG": "none"}) == ()
    with pytest.raises(ParameterError, match=r"^ICURR_LOG must be a comma list of tensorboard, wandb, mlflow "
                                             r"\(or none\), got 'tensorbored'$"):
        sinks.requested_sinks({"ICURR_LOG": "tensorboard,tensorbored"})
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    with pytest.raises(ParameterError) as err:
        sinks.requested_sinks({"ICURR_LOG": "tensorboard"})
    assert 'pip install -e ".[tensorboard]"' in str(err.value) and "\n" not in str(err.value)


def test_a_missing_sink_package_fails_before_the_run_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("ICURR_LOG", "tensorboard")
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ParameterError, match="tensorboard"):
        train_teacher(TeacherConfig(**dict(TINY, steps=500)), tmp_path / "t", progress=False)
    assert not (tmp_path / "t" / "metrics.jsonl").exists()


def test_pcfg_optimal_shows_its_progress_over_the_sentences(capsys):
    from distill.grammar import load_grammar
    from distill.optimal import grammar_ceiling

    g = load_grammar("random:levels=3,seed=1")
    quiet, _ = grammar_ceiling(g, rate=0.3, samples=64, chunk=16, progress=False)
    assert capsys.readouterr().err == ""
    m, _ = grammar_ceiling(g, rate=0.3, samples=64, chunk=16, progress=True)
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line.split()[2] for line in lines] == ["16/64", "64/64"]  # the first chunk, then (throttled) the last
    assert all(line.startswith("[inside-outside] sentence ") for line in lines)
    assert m.accuracy == quiet.accuracy and m.loss == quiet.loss  # the bar changes no number


def test_the_log_flag_checks_its_names_first_and_feeds_the_sink(tmp_path, monkeypatch, no_sinks):
    """``icurr --log NAMES``: a bad name is one line naming --log, before any file is written; a good one
    sets ICURR_LOG for the run (a tiny teacher writes its TensorBoard events under ``tb/``)."""
    from cli_helpers import run_icurr

    out = run_icurr("--log", "tensorbord", "parity", "teacher", "--out", tmp_path / "bad", "steps=10")
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "icurr: error: --log must be a comma list of tensorboard, wandb, mlflow (or none), got 'tensorbord'"]
    assert not (tmp_path / "bad").exists()
    pytest.importorskip("tensorboard")
    monkeypatch.setenv("ICURR_LOG", "")  # restored after the test (the flag sets it for the process)
    words = [f"{k}={v}" if k != "seeds" else "seeds=0" for k, v in TINY.items()]
    out = run_icurr("--log", "tensorboard", "parity", "teacher", "--out", tmp_path / "good", "--no-progress", *words)
    assert out.returncode == 0, out.stderr
    assert list((tmp_path / "good" / "tb" / "run0").glob("events.out.tfevents.*"))
