"""``icurr verify --jobs N``: the groups of claims that share run directories, the guard that records a claim
touching a directory it does not declare, and parallel verdicts equal to sequential ones."""
from __future__ import annotations

import json

import pytest

from experiments.claims import load_claims
from experiments.claims.ledger import Claim, Outcome, Rule, Source, register
from experiments.claims.verify import groups, run_claim, verify
from theory._checks import ParameterError


def _claim(cid: str, run, run_dirs=()) -> Claim:
    """An unregistered claim of kind mlp whose ``run`` is given."""
    return Claim(cid, "a test claim", "mlp", Source("progressive", "nowhere", "x.txt", 1, "q"),
                 Rule("s", "d", "2026-11-30"), run, run_dirs=run_dirs)


def test_groups_join_claims_through_shared_directories():
    noop = lambda tier, out, progress=False: None  # noqa: E731
    a, b = _claim("a", noop, ("x",)), _claim("b", noop, ("x", "y"))
    c, d, e = _claim("c", noop, ("y",)), _claim("d", noop), _claim("e", noop, ("d",))
    f = _claim("f", noop)
    assert [[k.id for k in g] for g in groups([a, f, b, c, d, e])] == [["a", "b", "c"], ["f"], ["d", "e"]]


def test_the_ledgers_groups_share_no_directory():
    claims = load_claims()
    parts = groups(list(claims.values()))
    assert sorted(c.id for g in parts for c in g) == sorted(claims)
    dirs = [{d for c in g for d in c.dirs} for g in parts]
    assert all(not (dirs[i] & dirs[j]) for i in range(len(dirs)) for j in range(i))
    by = {c.id: {k.id for k in g} for g in parts for c in g}
    assert by["pcfg-f4-three-phases"] == {"pcfg-f4-three-phases", "pcfg-r4-inflection-best", "pcfg-r5-ngram-measures",
                                          "pcfg-r5-nonterminal-probe", "ex-f4ab-pcfg-beats-oneshot",
                                          "ex-f4c-more-layers-better"}
    assert by["tf-r6-more-heads-faster"] == {"tf-f13-two-shot-faster", "tf-f11-attention-tracks-accuracy",
                                             "tf-r6-more-heads-faster", "ex-f3b-transformer-beats-oneshot"}
    assert by["t-even-degree"] == {"t-even-degree"} and by["f1-left-online"] == {"f1-left-online"}


def _touches(name: str):
    def run(tier, out, progress=False):
        (out.parent / name).mkdir(parents=True, exist_ok=True)
        (out.parent / name / "summary.json").write_text("{}")
        return Outcome("PASS", "wrote a file")
    return run


def test_a_claim_touching_an_undeclared_run_directory_is_an_error(tmp_path):
    rec = run_claim(_claim("writer", _touches("someone-elses")), "smoke", tmp_path, tmp_path)
    assert rec["status"] == "error" and rec["verdict"] is None
    assert "used runs/someone-elses, which it does not declare (run_dirs: writer)" in rec["reason"]

    def reads(tier, out, progress=False):  # reading a finished run counts too
        json.loads((out.parent / "someone-elses" / "summary.json").read_text())
        return Outcome("PASS", "read a file")
    assert run_claim(_claim("reader", reads), "smoke", tmp_path, tmp_path)["status"] == "error"
    for claim in (_claim("writer", _touches("someone-elses"), ("someone-elses",)), _claim("own", _touches("own"))):
        rec = run_claim(claim, "smoke", tmp_path, tmp_path)
        assert rec["status"] == "done" and rec["verdict"] == "PASS", rec["reason"]


def test_register_refuses_bad_run_dirs():
    with pytest.raises(ParameterError, match="run_dirs must be a tuple of names"):
        register(_claim("bad-dirs", _touches("x"), ("../up",)))
    with pytest.raises(ParameterError, match="run_dirs must be a tuple of names"):
        register(_claim("bad-dirs", _touches("x"), "pcfg-shared"))


def test_jobs_is_checked_before_any_work(tmp_path):
    from cli_helpers import run_icurr

    res = run_icurr("verify", "t-even-degree", "--jobs", "0", "--out", tmp_path / "o")
    assert res.returncode == 2 and "jobs must be an integer in [1, 64], got 0" in res.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_parallel_verdicts_equal_sequential_ones(tmp_path, monkeypatch):
    """Two workers, one thread each, give the same records, CSVs and claims.json order as one process on one
    thread (claims of four groups, two of them sharing a directory)."""
    import torch

    ids = ["t-even-degree", "r1-degree1-spike", "f9-degree23-gap", "f9-degree1-gap-weaker", "hier-levels-spike-apart"]
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # two workers of one thread each, on any machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = verify(ids, "smoke", tmp_path / "one", progress=False)
    finally:
        torch.set_num_threads(threads)
    two = verify(ids, "smoke", tmp_path / "two", progress=False, jobs=2)
    assert [r["id"] for r in two] == ids and [r["status"] for r in two] == ["done"] * len(ids)
    assert [(r["verdict"], r["reason"], r["numbers"]) for r in two] == [(r["verdict"], r["reason"], r["numbers"])
                                                                        for r in one]
    for r in one:
        if r.get("csv"):
            assert (tmp_path / "two" / r["csv"]).read_bytes() == (tmp_path / "one" / r["csv"]).read_bytes()
    meta = json.loads((tmp_path / "two" / "claims.json").read_text())
    assert [r["id"] for r in meta["claims"]] == ids and meta["from_scratch"] is True and meta["jobs"] == 2
    assert (tmp_path / "two" / "CLAIMS.md").read_text().startswith("# Claims ledger\n\nBuilt by `icurr verify --tier smoke --jobs 2` (")
    assert sorted(p.name for p in (tmp_path / "two" / "runs").iterdir()) == ["f9-degree23-gap", "hier-shared",
                                                                            "r1-degree1-spike"]


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_worker_dies_with_its_parent(tmp_path):
    """A worker of ``verify --jobs`` does not outlive a SIGKILLed ``icurr verify``: a rerun never meets an orphan
    still training its runs."""
    import os
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    pidfile = tmp_path / "worker.pid"
    parent = textwrap.dedent(f"""
        import multiprocessing, os, time
        from experiments.claims.verify import _die_with_parent
        def work(path):
            _die_with_parent()
            open(path, "w").write(str(os.getpid()))
            time.sleep(60)
        if __name__ == "__main__":
            multiprocessing.get_context("spawn").Process(target=work, args=({str(pidfile)!r},)).start()
            time.sleep(60)
    """)
    (tmp_path / "parent.py").write_text(parent)  # a file: spawn imports the child's target from it
    proc = subprocess.Popen([sys.executable, str(tmp_path / "parent.py")], cwd=tmp_path)
    deadline = time.time() + 30
    while not (pidfile.is_file() and pidfile.read_text()) and time.time() < deadline:
        time.sleep(0.05)
    worker = int(pidfile.read_text())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(worker, signal.SIGKILL)
        pytest.fail("the worker outlived its parent")
