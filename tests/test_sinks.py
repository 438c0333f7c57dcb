"""The W&B and MLflow metrics sinks (``ICURR_LOG=wandb|mlflow``, :mod:`infra.sinks`), against the real
packages (W&B offline, MLflow's local file store) and, for what an offline W&B run cannot show, a
stand-in with W&B's semantics: one run per run directory with a stable id, every metrics row sent
once, runs of one program open side by side, a resumed program continuing its own run.
"""
from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

from infra import sinks
from infra.rundir import RunDir
from simulate.config import TeacherConfig
from simulate.teacher import train_teacher

#: A tiny MLP teacher, two runs (0.3 s); rows at steps 0, 100, ..., 1000.
CFG = TeacherConfig(d=8, k=2, width=32, steps=1000, eval_every=100, checkpoint_every=200, probe_every=0, seeds=(0, 1))


def _wanted(rd: RunDir) -> dict[str, list[tuple[int, float]]]:
    """What a sink must hold of ``rd``: ``<column>/run<r>`` -> [(step, value)] from its metrics rows."""
    out: dict[str, list[tuple[int, float]]] = {}
    for row in RunDir(rd.path).metrics().to_dict("records"):
        for k, v in sinks._scalars(row).items():
            out.setdefault(f"{k}/run{int(row['run'])}", []).append((int(row["step"]), v))
    return out


# ---------------------------------------------------------------- W&B: a stand-in with its semantics

class _FakeWandb(types.ModuleType):
    """``wandb.init`` as W&B 0.19.10+ does it: without ``reinit="create_new"`` a second init finishes the
    run before it; logging to a finished run, or at a step below the run's counter, is an error; values
    logged at one step are merged; a resumed run's counter starts after its last step."""

    def __init__(self):
        super().__init__("wandb")
        self.runs: list[_FakeRun] = []

    def Settings(self, **kw):  # noqa: N802 - W&B's name
        return kw

    def login(self, **kw):
        return True

    def init(self, **kw):
        if kw.get("reinit") != "create_new":
            for r in self.runs:
                r.finished = True
        run = next((r for r in self.runs if r.kw["id"] == kw["id"] and kw.get("resume") == "allow"), None)
        if run is None:
            run = _FakeRun(kw)
            self.runs.append(run)
        else:
            run.step = max(run.history) + 1
        run.finished = False
        return run


class _FakeRun:
    def __init__(self, kw):
        self.kw, self.history, self.finished, self.step = kw, {}, False, 0
        self.sent = 0  # rows sent

    def log(self, values, step):
        assert not self.finished, "logged to a finished run"
        assert step >= self.step, f"step {step} below the run's counter {self.step}"
        self.history.setdefault(step, {}).update(values)
        self.step, self.sent = step, self.sent + 1

    def finish(self):
        self.finished = True


@pytest.fixture
def fake_wandb(monkeypatch):
    fake = _FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setenv("ICURR_LOG", "wandb")
    monkeypatch.delenv("ICURR_LOG_DIR", raising=False)
    return fake


def _series(run: _FakeRun) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for step, values in sorted(run.history.items()):
        for k, v in values.items():
            out.setdefault(k, []).append((step, v))
    return out


def test_wandb_sink_one_run_per_directory_every_row_once(tmp_path, fake_wandb):
    a = train_teacher(CFG, tmp_path / "a", progress=False)
    b = train_teacher(CFG, tmp_path / "b", progress=False)
    ra, rb = fake_wandb.runs
    assert [ra.kw["name"], rb.kw["name"]] == ["a", "b"]  # the run directory's name, not its log folder's
    assert ra.kw["id"] != rb.kw["id"] and ra.kw["id"] == sinks._run_key(tmp_path / "a" / "tb")
    assert ra.kw["dir"] == str(tmp_path / "a" / "tb") and ra.kw["config"]["width"] == 32
    assert _series(ra) == _wanted(a) and _series(rb) == _wanted(b)
    assert ra.finished and rb.finished
    assert {k for k in _series(ra)} == {f"{c}/run{r}" for c in ("samples", "test_accuracy", "test_loss")
                                        for r in (0, 1)}


def test_wandb_sink_keeps_the_runs_of_one_program_open_side_by_side(tmp_path, fake_wandb):
    dirs = [tmp_path / "s0", tmp_path / "s1", tmp_path / "s2"]
    opened = sinks.open_sinks(["wandb"], dirs, [{"strategy": s} for s in ("ce", "oneshot", "progressive")])
    for step in (0, 10):
        for j in range(3):  # interleaved, as RunLoop.log writes them
            opened.write(j, [{"step": step, "run": 0, "seed": 0, "test_loss": float(j + step)}])
    opened.close()
    assert [r.kw["name"] for r in fake_wandb.runs] == ["s0", "s1", "s2"]
    assert [r.history for r in fake_wandb.runs] == [{s: {"test_loss/run0": float(j + s)} for s in (0, 10)}
                                                    for j in range(3)]


def test_wandb_sink_continues_a_resumed_run_without_sending_a_row_twice(tmp_path, fake_wandb, monkeypatch):
    out = tmp_path / "t"
    _kill_after_sink_write(monkeypatch, out, at=700)  # rows of 700 sent; resumes from checkpoint 600
    rd = train_teacher(CFG, out, progress=False)
    (run,) = fake_wandb.runs  # the same W&B run, continued
    assert _series(run) == _wanted(rd) and run.sent == 11  # rows of steps 0, 100, ..., 1000, each sent once


# ---------------------------------------------------------------- the real packages

def test_wandb_offline_run_per_directory(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb", minversion="0.19.10")
    wandb.teardown()
    for var, sub in (("WANDB_DIR", "wdir"), ("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config"),
                     ("WANDB_DATA_DIR", "data")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("ICURR_LOG_DIR", raising=False)
    monkeypatch.setenv("ICURR_LOG", "")
    plain = train_teacher(CFG, tmp_path / "plain", progress=False)
    monkeypatch.setenv("ICURR_LOG", "wandb")
    logged = train_teacher(CFG, tmp_path / "logged", progress=False)
    for name in ("metrics.jsonl", "summary.json", "config.json", "metrics.parquet"):
        assert (plain.path / name).read_bytes() == (logged.path / name).read_bytes(), name
    key = sinks._run_key(logged.path / "tb")
    (run,) = (logged.path / "tb" / "wandb").glob(f"offline-run-*-{key}")
    (records,) = run.glob(f"run-{key}.wandb")
    assert records.stat().st_size > 1000
    # three runs of one program, open side by side: each its own offline run
    dirs = [tmp_path / f"s{j}" for j in range(3)]
    opened = sinks.open_sinks(["wandb"], dirs, [{"j": j} for j in range(3)])
    for step in (0, 10):
        for j in range(3):
            opened.write(j, [{"step": step, "run": 0, "test_loss": 1.0 / (1 + j + step)}])
    opened.close()
    for d in dirs:
        assert len(list((d / "tb" / "wandb").glob(f"offline-run-*-{sinks._run_key(d / 'tb')}"))) == 1
    wandb.teardown()  # its process-wide settings (offline) must not outlive the test


def test_wandb_without_a_login_is_one_line_before_any_file(tmp_path, monkeypatch):
    """Online W&B with no stored key, no WANDB_API_KEY and no terminal to prompt on: ``--log wandb`` fails in
    one line naming what to do, and the run directory is not created."""
    wandb = pytest.importorskip("wandb", minversion="0.19.10")
    from cli_helpers import run_icurr

    wandb.teardown()  # W&B keeps its settings (WANDB_MODE of an earlier test) in a process-wide singleton

    for var in ("WANDB_MODE", "WANDB_API_KEY", "ICURR_LOG", "ICURR_LOG_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setattr(sinks, "_LOGGED_IN", [])
    monkeypatch.setattr(sys, "stdin", open(os.devnull))
    out = run_icurr("--log", "wandb", "parity", "teacher", "--out", tmp_path / "t", "--no-progress", "steps=10")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith("icurr: error: --log=wandb needs a W&B login (") and "WANDB_MODE=offline" in out.stderr
    assert not (tmp_path / "t").exists()


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the local file store, enough for a test
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "icurr-test")
    monkeypatch.setenv("ICURR_LOG", "mlflow")
    monkeypatch.delenv("ICURR_LOG_DIR", raising=False)
    return mlflow.tracking.MlflowClient()


def test_mlflow_store_it_cannot_open_is_one_line_before_any_file(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from cli_helpers import run_icurr

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://x")
    monkeypatch.delenv("ICURR_LOG", raising=False)
    out = run_icurr("--log", "mlflow", "parity", "teacher", "--out", tmp_path / "t", "--no-progress", "steps=10")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert out.stderr.startswith("icurr: error: --log=mlflow cannot open MLflow's tracking store (")
    assert "nosuchscheme://x" in out.stderr and "MLFLOW_TRACKING_URI" in out.stderr
    assert not (tmp_path / "t").exists()


def _mlflow_runs(client):
    exp = client.get_experiment_by_name("icurr-test")
    return client.search_runs([exp.experiment_id])


def _history(client, run) -> dict[str, list[tuple[int, float]]]:
    return {k: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, k))
            for k in run.data.metrics}


def test_mlflow_sink_one_run_per_directory_every_row_once(tmp_path, mlflow_store):
    a = train_teacher(CFG, tmp_path / "a", progress=False)
    b = train_teacher(CFG, tmp_path / "b", progress=False)
    runs = {r.info.run_name: r for r in _mlflow_runs(mlflow_store)}
    assert set(runs) == {"a", "b"}
    for rd, run in ((a, runs["a"]), (b, runs["b"])):
        assert run.info.status == "FINISHED"
        assert _history(mlflow_store, run) == _wanted(rd)
        assert run.data.params["width"] == "32" and run.data.params["seeds"] == "[0, 1]"
        assert run.data.tags["icurr.last_step"] == "1000"


def test_mlflow_sink_continues_a_resumed_run_without_sending_a_row_twice(tmp_path, mlflow_store, monkeypatch):
    out = tmp_path / "t"
    _kill_after_sink_write(monkeypatch, out, at=700)  # rows of 700 sent; resumes from checkpoint 600
    (run,) = _mlflow_runs(mlflow_store)
    assert run.data.tags["icurr.last_step"] == "700"
    rd = train_teacher(CFG, out, progress=False)
    (run,) = _mlflow_runs(mlflow_store)  # the same MLflow run, continued
    assert _history(mlflow_store, run) == _wanted(rd)  # each step once
    assert run.info.status == "FINISHED"


def _kill_after_sink_write(monkeypatch, out: Path, *, at: int) -> None:
    """Train ``CFG`` into ``out`` and 'kill' it right after the sinks got the rows of step ``at``."""
    original = sinks.MetricsSinks.write

    def dying(self, j, rows):
        original(self, j, rows)
        if rows and rows[0]["step"] == at:
            raise KeyboardInterrupt

    monkeypatch.setattr(sinks.MetricsSinks, "write", dying)
    with pytest.raises(KeyboardInterrupt):
        train_teacher(CFG, out, progress=False)
    monkeypatch.setattr(sinks.MetricsSinks, "write", original)
    assert not RunDir(out).finished  # its latest checkpoint is that of step 600
