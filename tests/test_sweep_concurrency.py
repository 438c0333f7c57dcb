"""Concurrent sweeps on one results directory, kills at random moments, and sweep files refused
before any work: each run trains exactly once, whatever the number of workers and kills, and its
files equal those of one undisturbed worker (the claim protocol of :mod:`infra.claims` and
:mod:`experiments.sweep_exec`)."""
import json
import os
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from cli_helpers import run_icurr
from experiments.sweep import expand, group_runs, parse_sweep, run_sweep
from infra import claims, store

ROOT = Path(__file__).resolve().parent.parent
#: One thread per worker: the numbers of a run do not depend on how many workers share the cores.
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
MLP = {"d": 8, "k": 2, "width": 32, "lr": 0.05, "steps": 1000, "eval_every": 250, "checkpoint_every": 250,
       "device": "cpu"}
#: 5 groups (one per width) of 2 seeds: 10 runs.
MLP_SWEEP = {"kind": "teacher", "base": dict(MLP, steps=100_000, eval_every=5000, probe_every=5000,
                                             checkpoint_every=10_000),
             "grid": {"seeds": [0, 1]}, "zip": {"width": [24, 28, 32, 36, 40]}}
PCFG_SWEEP = {"kind": "pcfg-teacher",
              "base": {"layers": 1, "heads": 2, "head_dim": 8, "steps": 20, "batch": 32, "lr": 0.003, "warmup": 5,
                       "eval_every": 10, "eval_size": 64, "checkpoint_every": 10, "measure_every": 0,
                       "probe_every": 0, "device": "cpu", "seeds": [0]},
              "grid": {"grammar": ["random:levels=4,seed=1", "random:levels=4,seed=2", "random:levels=3,seed=1"]}}


def write_sweep(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))  # JSON is YAML
    return path


def worker(sweep_file: Path, out: Path, *extra: str) -> subprocess.Popen:
    """``icurr sweep run SWEEP --out OUT`` as a separate process (JSON outcome on stdout)."""
    return subprocess.Popen([sys.executable, "-m", "icurr", "sweep", "run", str(sweep_file), "--out", str(out),
                             "--no-progress", "--format", "json", *extra], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 300) -> dict:
    stdout, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, stderr[-3000:]
    return json.loads(stdout)


def _drop_volatile(obj):
    """A summary without wall-clock or process fields (none today; kept out should any appear)."""
    if isinstance(obj, dict):
        return {k: _drop_volatile(v) for k, v in obj.items()
                if not any(w in k for w in ("time", "seconds", "pid", "host"))}
    if isinstance(obj, list):
        return [_drop_volatile(v) for v in obj]
    return obj


def results(out: Path) -> dict[str, tuple[dict, pd.DataFrame]]:
    """``{run hash: (summary, metrics)}`` of every finished run."""
    return {d.name: (_drop_volatile(json.loads((d / store.SUMMARY).read_text())), pd.read_parquet(d / "metrics.parquet"))
            for d in store.finished_runs(out)}


def assert_same_results(out: Path, reference: Path) -> None:
    """Every run of ``reference`` is in ``out`` with the same summary and bit-identical metrics."""
    got, want = results(out), results(reference)
    assert sorted(got) == sorted(want)
    for h, (summary, metrics) in want.items():
        assert got[h][0] == summary, h
        pd.testing.assert_frame_equal(got[h][1], metrics, check_exact=True)


def assert_trained_once(out: Path, pids) -> None:
    """Each run: one metrics row per evaluation step and run, in order; finished by one of ``pids``
    in one session (no second training, no takeover)."""
    for d in store.finished_runs(out):
        m = pd.read_parquet(d / "metrics.parquet")
        keys = [c for c in ("role", "run", "step") if c in m.columns]
        assert not m.duplicated(keys).any(), d.name
        for _, part in m.groupby([c for c in keys if c != "step"]):
            assert part["step"].is_monotonic_increasing, d.name
        timing = json.loads((d / store.TIMING).read_text())
        assert timing["pid"] in pids and timing["sessions"] == 1, (d.name, timing)


def strays(root: Path) -> list[str]:
    """Temporary files, status and error files, claims and work directories left behind."""
    bad = [p for p in root.rglob("*") if p.name.endswith(".tmp") or p.name in (store.LOCK, store.ERROR)]
    return [str(p) for p in bad] + [str(root / d) for d in (store.WORK, claims.CLAIMS) if (root / d).exists()]


@pytest.fixture(scope="module")
def mlp_reference(tmp_path_factory):
    """The MLP sweep run by one undisturbed worker."""
    base = tmp_path_factory.mktemp("reference")
    out = base / "out"
    outcome = finish(worker(write_sweep(base / "sweep.yaml", MLP_SWEEP), out))
    assert outcome["done_now"] == 10 and outcome["groups_run"] == 5
    return out


# ---------------------------------------------------------------- the claim primitive

def _holder(root: Path, keys) -> subprocess.Popen:
    """A process that claims ``keys`` of ``root`` (writing running.json as a worker does) and sleeps."""
    code = textwrap.dedent(f"""
        import json, os, socket, sys, time
        from pathlib import Path
        from infra import claims
        root, keys = Path({str(root)!r}), {list(keys)!r}
        claim = claims.try_claim(root, keys)
        if claim is None:
            sys.exit(3)
        for k in keys:
            if (root / k).is_dir():
                (root / k / "running.json").write_text(json.dumps({{"pid": os.getpid(), "host": socket.gethostname(),
                                                                    "heartbeat": time.time()}}))
        print("held", flush=True)
        time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.stdout:
        proc.stdout.close()


def test_a_claim_is_all_or_nothing_and_leaves_nothing_behind(tmp_path):
    a = claims.try_claim(tmp_path, ["b", "a"])
    assert a is not None and a.keys == ("a", "b") and claims.is_claimed(tmp_path, "a")
    assert claims.try_claim(tmp_path, ["c", "b"], patience=0) is None  # b is held: c is not kept either
    assert not claims.is_claimed(tmp_path, "c") and not claim_file(tmp_path, "c").exists()
    c = claims.try_claim(tmp_path, ["c"], patience=0)
    assert c is not None
    c.release()
    a.release()
    a.release()  # idempotent
    assert not claims.is_claimed(tmp_path, "a") and not (tmp_path / claims.CLAIMS).exists()
    with claims.hold(tmp_path, "m") as held:  # the blocking form (the manifest's merge)
        assert held.keys == ("m",) and claims.try_claim(tmp_path, ["m"], patience=0.01) is None


def test_listing_and_cleaning_survive_the_claims_folder_vanishing(tmp_path, monkeypatch):
    """The last holder removes ``.claims`` on release, and another worker's cleaner removes ``.work``:
    a lister that looked before the removal and reads after it sees none (a CI run once died of
    this race, a FileNotFoundError from a glob of the vanished folder)."""
    held = claims.try_claim(tmp_path, ["group-b", "group-a"])
    assert claims.lock_keys(tmp_path) == ["group-a", "group-b"]
    held.release()
    assert claims.lock_keys(tmp_path) == [] and claims.remove_stale(tmp_path) == []
    (tmp_path / store.WORK).mkdir()
    real = Path.iterdir

    def vanishing(self):  # the folder goes between the look and the read
        if self.name == store.WORK:
            self.rmdir()
        return real(self)

    monkeypatch.setattr(Path, "iterdir", vanishing)
    assert store.clean_work(tmp_path) == []


def claim_file(root: Path, key: str) -> Path:
    return claims.claim_path(root, key)


def test_a_dead_holders_claim_is_free_and_a_live_ones_is_not(tmp_path):
    holder = _holder(tmp_path, ["run1", "group-g"])
    try:
        assert claims.is_claimed(tmp_path, "run1") and claims.try_claim(tmp_path, ["run1"], patience=0) is None
    finally:
        _kill(holder)
    assert not claims.is_claimed(tmp_path, "run1")  # the kernel dropped the dead process's lock
    taken = claims.try_claim(tmp_path, ["group-g", "run1"], patience=0)
    assert taken is not None
    taken.release()
    holder = _holder(tmp_path, ["run1", "run2"])
    live = _holder(tmp_path, ["run3"])
    try:
        _kill(holder)
        assert claim_file(tmp_path, "run1").exists()  # a dead worker's lock files stay, unlocked
        assert claims.remove_stale(tmp_path) == ["run1", "run2"] and claims.is_claimed(tmp_path, "run3")
    finally:
        _kill(live)
    assert claims.remove_stale(tmp_path) == ["run3"] and not (tmp_path / claims.CLAIMS).exists()


def test_clean_work_never_removes_the_work_directory_of_a_live_claim(tmp_path):
    work = tmp_path / store.WORK / "g1"
    work.mkdir(parents=True)
    (work / "group.json").write_text(json.dumps({"runs": ["r1"]}))
    (tmp_path / "r1").mkdir()
    (tmp_path / "r1" / store.SUMMARY).write_text("{}")
    held = claims.try_claim(tmp_path, [store.group_key("g1")])  # flock: per open file, so this process counts
    assert store.clean_work(tmp_path) == [] and work.is_dir()
    held.release()
    assert store.clean_work(tmp_path) == ["g1"] and not (tmp_path / store.WORK).exists()


# ---------------------------------------------------------------- stale and live claims in a sweep

def test_a_live_claim_is_left_busy_and_a_dead_workers_claim_is_taken_over(tmp_path):
    sweep = parse_sweep({"kind": "teacher", "base": MLP, "grid": {"seeds": [0, 1]}, "zip": {"width": [16, 32]}})
    first, second = group_runs(expand(sweep))
    out = tmp_path / "out"
    out.mkdir()
    for spec in first.runs:
        (out / spec.hash).mkdir()
    holder = _holder(out, [s.hash for s in first.runs] + [store.group_key(first.id)])
    try:
        states = {s.hash: store.run_state(out / s.hash) for s in first.runs}
        assert set(states.values()) == {"running"}
        outcome = run_sweep(sweep, out, progress=False)
        assert set(outcome.busy) == {s.hash for s in first.runs} and set(outcome.done) == {
            s.hash for s in second.runs}
        for spec in first.runs:  # left alone: the holder's status file stays, nothing else is written
            assert sorted(p.name for p in (out / spec.hash).iterdir()) == [store.LOCK]
        res = run_icurr("sweep", "status", out, "--format", "json")
        assert json.loads(res.stdout)["counts"] == {"done": 2, "running": 2, "failed": 0, "pending": 0, "total": 4}
    finally:
        _kill(holder)  # SIGKILL: its running.json stays behind, its claim does not
    assert {store.run_state(out / s.hash) for s in first.runs} == {"pending"}
    outcome = run_sweep(sweep, out, progress=False)
    assert set(outcome.done) == {s.hash for s in first.runs} and not outcome.busy
    assert len(store.finished_runs(out)) == 4 and strays(out) == []
    rows = {r["run_hash"]: r for r in json.loads(run_icurr("sweep", "status", out, "--format", "json").stdout)["runs"]}
    assert all(r["state"] == "done" and r["seconds"] > 0 for r in rows.values())
    table = run_icurr("sweep", "status", out).stdout
    assert " seconds " in table.splitlines()[1]


# ---------------------------------------------------------------- many workers, kills

def _until_training(proc: subprocess.Popen, out: Path) -> None:
    """Wait until the worker ``proc`` holds a group (or has ended)."""
    deadline = time.time() + 60
    while proc.poll() is None and not _claimed_group(out) and time.time() < deadline:
        time.sleep(0.005)


def _claimed_group(out: Path) -> bool:
    """Whether a live worker holds a group (lock files of killed workers stay behind, unlocked)."""
    return any(claims.is_claimed(out, k) for k in claims.lock_keys(out) if k.startswith("group-"))


@pytest.mark.slow
def test_three_workers_on_one_directory_train_each_run_once(tmp_path, mlp_reference):
    """Three ``icurr sweep run`` processes started together on one MLP sweep (5 groups) and on one
    Transformer sweep (3 runs): each run is trained by one worker, in one session, and its files
    equal a single worker's."""
    out = tmp_path / "mlp"
    sweep_file = write_sweep(tmp_path / "mlp.yaml", MLP_SWEEP)
    procs = [worker(sweep_file, out) for _ in range(3)]
    outcomes = [finish(p) for p in procs]
    assert sum(o["done_now"] for o in outcomes) == 10 and not any(o["failed"] for o in outcomes)
    assert all(o["done_now"] + o["already_done"] + o["busy"] == 10 for o in outcomes)
    assert_trained_once(out, {p.pid for p in procs})
    assert_same_results(out, mlp_reference)
    assert strays(out) == []

    pcfg_file = write_sweep(tmp_path / "pcfg.yaml", PCFG_SWEEP)
    reference = tmp_path / "pcfg-reference"
    finish(worker(pcfg_file, reference))
    out = tmp_path / "pcfg"
    procs = [worker(pcfg_file, out) for _ in range(3)]
    outcomes = [finish(p) for p in procs]
    assert sum(o["done_now"] for o in outcomes) == 3
    assert_trained_once(out, {p.pid for p in procs})
    assert_same_results(out, reference)
    assert strays(out) == []


@pytest.mark.slow
def test_a_second_worker_leaves_a_group_that_the_first_trains(tmp_path):
    """A real worker trains one long group; a second one started meanwhile reports its runs busy
    and trains nothing: the first finishes them, in one session."""
    sweep_file = write_sweep(tmp_path / "long.yaml", {"kind": "teacher", "base": dict(
        MLP, steps=2_000_000, eval_every=100_000, probe_every=100_000, checkpoint_every=500_000),
        "grid": {"seeds": [0, 1]}})
    out = tmp_path / "out"
    first = worker(sweep_file, out)
    _until_training(first, out)
    res = run_icurr("sweep", "run", sweep_file, "--out", out, "--no-progress", "--format", "json")
    assert res.returncode == 0, res.stderr
    second = json.loads(res.stdout)
    outcome = finish(first)
    assert (second["done_now"], second["busy"] + second["already_done"]) == (0, 2)
    assert second["busy"] == 2, "the first worker finished before the second looked: make its sweep longer"
    assert outcome["done_now"] == 2
    assert_trained_once(out, {first.pid})


@pytest.mark.slow
def test_sigkill_at_random_moments_then_rerun_gives_the_unkilled_results(tmp_path, mlp_reference):
    """Ten SIGKILLs, each a random delay (fixed seed) after the worker started training, within a
    eighth of the sweep's training time (5 groups), each followed by a rerun that takes the dead worker's groups
    over; then a last run to the end: every summary and metrics table equals that of the unkilled
    sweep, bit for bit."""
    rng = random.Random(20240611)
    sweep_file = write_sweep(tmp_path / "sweep.yaml", MLP_SWEEP)
    out = tmp_path / "out"
    timed = worker(sweep_file, tmp_path / "timed")  # the training time of the whole sweep, measured here
    _until_training(timed, tmp_path / "timed")
    start = time.time()
    finish(timed)
    whole = time.time() - start
    kills, mid_group = 0, 0
    while kills < 10:
        proc = worker(sweep_file, out)
        _until_training(proc, out)
        time.sleep(rng.uniform(0, whole / 8))  # within most of a group's training: ten kills before the end
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.communicate()
        if len(store.finished_runs(out)) == 10:
            break
        work = out / store.WORK
        mid_group += len(store.finished_runs(out)) < 10 and work.is_dir() and any(work.glob("*/ckpt/*.safetensors"))
        for d in store.finished_runs(out):  # a finished run is whole, whenever the kill came
            pd.read_parquet(d / "metrics.parquet")
            json.loads((d / store.SUMMARY).read_text())
    outcome = finish(worker(sweep_file, out))
    assert outcome["failed"] == 0 and len(store.finished_runs(out)) == 10
    assert kills >= 10 and mid_group >= 3, (kills, mid_group)
    assert_same_results(out, mlp_reference)
    sessions = [json.loads((d / store.TIMING).read_text())["sessions"] for d in store.finished_runs(out)]
    assert max(sessions) >= 2  # a killed group was resumed from its checkpoints by a later worker
    assert strays(out) == []


# ---------------------------------------------------------------- sweep files refused before any work

@pytest.mark.parametrize("text, message", [
    ("kind: teacher\nbase: {d: 8, k: 2}\ngrid:\n  lr: [0.1]\n  lr: [0.2]\n", "duplicate key 'lr' at line 5"),
    ("kind: teacher\nbase: {d: 8, d: 9}\n", "duplicate key 'd' at line 2"),
    ("kind: teacher\nkind: student\n", "duplicate key 'kind' at line 2"),
    ("kind: teacher\nbase:\n  d: [1, 2\n  k: 3\n", "is not valid YAML: .* at line 4, column 4"),
    ("kind: teacher\n base: 1\n  - x\n", "is not valid YAML: mapping values are not allowed here at line 2"),
    ("kind: teacher\ngrid: {lr: [0.1}\n", "is not valid YAML: .* at line 2"),
])
def test_bad_yaml_is_one_line_exit_2_and_nothing_written(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    res = run_icurr("sweep", "run", path, "--out", tmp_path / "out")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert re.search(message, res.stderr), res.stderr
    assert not (tmp_path / "out").exists()


def test_yaml_merge_keys_may_be_overridden(tmp_path):
    path = tmp_path / "merge.yaml"
    path.write_text("kind: teacher\nshared: &b {d: [8], k: [2]}\ngrid: {<<: *b, d: [9, 10]}\n"
                    .replace("shared", "description"))
    res = run_icurr("sweep", "run", path, "--out", tmp_path / "out", "--dry-run", "--format", "json")
    assert res.returncode == 0, res.stderr
    assert sorted(r["d"] for r in json.loads(res.stdout)) == [9, 10]


@pytest.mark.parametrize("bad, message", [
    ("missing.json", "grammar file .*missing.json.* does not exist"),
    ("broken.json", "not valid JSON"),
    ("nogrammar", "grammar 'nogrammar' not found"),
])
def test_a_transformer_sweep_with_a_bad_grammar_at_its_third_point_fails_before_the_first_trains(
        tmp_path, monkeypatch, bad, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.json").write_text('{"name": "x", "rules": [')
    data = json.loads(json.dumps(PCFG_SWEEP))
    data["grid"]["grammar"][2] = bad
    path = write_sweep(tmp_path / "pcfg.yaml", data)
    res = run_icurr("sweep", "run", path, "--out", tmp_path / "out", "--no-progress")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert re.search(message, res.stderr), res.stderr
    assert f"field grammar of point grammar={bad!r}" in res.stderr
    assert not (tmp_path / "out").exists()


def test_a_compare_sweeps_grammar_is_checked_in_its_teacher_section(tmp_path):
    res = run_icurr("sweep", "run", write_sweep(tmp_path / "c.yaml", {
        "kind": "pcfg-compare", "grid": {"teacher.grammar": ["random:levels=3,seed=1", "nope.json"]}}),
        "--out", tmp_path / "out")
    assert res.returncode == 2 and "field teacher.grammar of point teacher.grammar='nope.json'" in res.stderr
    assert not (tmp_path / "out").exists()


def test_a_text_sweeps_corpus_must_exist_and_be_text(tmp_path):
    (tmp_path / "ok.txt").write_text("Some words of text.\n" * 10)
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "empty_dir").mkdir()
    for corpus, message in [(tmp_path / "blob.bin", "is not UTF-8 text"), (tmp_path / "nothere", "does not exist"),
                            (tmp_path / "empty_dir", "holds no files matching")]:
        path = write_sweep(tmp_path / "t.yaml", {"kind": "text-teacher",
                                                 "grid": {"corpus": ["python-docs", str(tmp_path / "ok.txt"),
                                                                     str(corpus)]}})
        res = run_icurr("sweep", "run", path, "--out", tmp_path / "out")
        assert res.returncode == 2 and message in res.stderr and "field corpus of point" in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
    res = run_icurr("sweep", "run", path, "--out", tmp_path / "out", "--dry-run")
    assert res.returncode == 2
    ok = write_sweep(tmp_path / "ok.yaml", {"kind": "text-teacher", "grid": {"corpus": ["python-docs",
                                                                                       str(tmp_path / "ok.txt")]}})
    assert run_icurr("sweep", "run", ok, "--out", tmp_path / "out", "--dry-run").returncode == 0
