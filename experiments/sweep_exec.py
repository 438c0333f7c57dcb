"""Executing one sweep group: claim it, train it as one batched program, split it into per-run directories.

The batched program trains under ``DIR/.work/<group id>/`` with the ordinary resumable training
functions (a killed teacher resumes from its latest checkpoint; a student restarts). Each run of
the group then gets ``DIR/<run hash>/`` exactly as a single-seed run would have written it:
``config.json`` (its one-seed config), ``env.json``, teacher checkpoints ``ckpt/step_*.safetensors``
(its run selected from the batched checkpoint, with its own generator state, so the directory is
a valid, resumable teacher for students), ``metrics.parquet`` (its rows, ``run`` = 0),
``timing.json`` (its share of the program's wall time) and ``summary.json`` last. Every file is
written atomically; an exception writes ``error.json``.

Claims (:mod:`infra.claims`). Any number of workers may run on one results directory at once
(``icurr sweep run`` started several times by hand, Ray tasks, or both); each run is trained by
exactly one of them:

1. :func:`execute_group` claims the group's unfinished runs and its work directory (keys
   ``<run hash>`` and ``group-<group id>``) all-or-nothing, in sorted order, without waiting: an
   ``flock`` held on ``DIR/.claims/<key>.lock`` for the whole training.
2. A group of which one key is held by a live worker is skipped and reported ``busy``. A group
   whose worker died (SIGKILL included) has no claim left, since the kernel drops the locks of a
   dead process: the next worker claims it and resumes from its checkpoints.
3. Under the claim the worker looks again at which runs are finished (another worker may have
   finished them meanwhile) and trains only the others; nothing outside a claim writes into a
   run directory or a work directory, and :func:`infra.store.clean_work` claims a work directory
   before it removes it.
4. While it trains, the holder keeps ``running.json`` (pid, host, heartbeat) in each claimed run
   directory, for people and for ``icurr sweep status``. File locks may not reach across hosts
   (see :mod:`infra.claims` on NFS), so a worker also leaves alone a run whose ``running.json`` was
   written on another host with a fresh heartbeat (a best-effort guard; on one host the lock decides).

Progress: with ``progress`` (the local backend) every training call shows its step bar, which
tqdm stacks below the sweep's runs bar (plain lines on stderr when it is not a terminal,
:class:`infra.runloop.Progress`), and ``on_run(hash)`` is called as each run's ``summary.json`` is
written, so the runs bar moves as runs finish. Metrics sinks (``ICURR_LOG``, :mod:`infra.sinks`)
of split groups log to ``DIR/tb/<group id>/`` unless ``ICURR_LOG_DIR`` is set (the work
directories are removed after the split).

This module is imported by Ray workers, so its entry point :func:`execute_group` takes a
picklable :class:`~experiments.sweep_groups.Group` and returns a plain dict.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import threading
import time
import traceback
from pathlib import Path

import pandas as pd

from infra.config import config_to_dict

from infra import claims, sinks, store
from infra.checkpoints import checkpoint_name
from infra.rundir import RunDir, atomic_write_text
from simulate.checkpoints import CheckpointDir, save_checkpoint

from .registry import KINDS

__all__ = ["execute_group", "write_manifest", "HEARTBEAT_EVERY_S"]

HEARTBEAT_EVERY_S = 30.0


def _write_json(path: Path, obj, *, sort_keys: bool = True) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys, default=str) + "\n")


def write_manifest(out: Path, sweep, runs) -> None:
    """Merge the sweep's planned runs into ``out/sweep.json`` (read by ``icurr sweep status``)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / store.MANIFEST
    with claims.hold(out, store.MANIFEST):  # workers of other sweeps may merge theirs at the same time
        old = {}
        if path.is_file():
            try:
                old = json.loads(path.read_text())
            except json.JSONDecodeError:
                old = {}
        planned = dict(old.get("runs", {}))
        for spec in runs:
            planned[spec.hash] = {"kind": spec.kind, "point": {k: v for k, v in spec.point}}
        sources = list(dict.fromkeys([*old.get("sources", []), sweep.source]))
        _write_json(path, {"sources": sources, "runs": planned}, sort_keys=False)


# ---------------------------------------------------------------- status, clock and errors

_CLOCK = "time.json"  # in the work directory: the program's wall time over all its sessions so far


class _Status:
    """For a claimed group: ``running.json`` in each claimed run directory and the program's clock
    in its work directory (seconds over every session of the program; a killed session counts up
    to its last heartbeat), refreshed by a heartbeat thread until closed."""

    def __init__(self, dirs: list[Path], group, work: Path, *, allow_thread_change: bool = False,
                 progress: bool = False, on_run=None) -> None:
        self.dirs, self.group, self.work, self.on_run = dirs, group, work, on_run
        # the keywords of every training call of the group: step bars or not, whether a resume may change threads
        self.train_kw = {"progress": progress, "allow_thread_change": allow_thread_change}
        clock = store.read_json(work / _CLOCK)
        self.prior = float(clock.get("seconds", 0.0)) if clock else 0.0
        self.sessions = (int(clock.get("sessions", 0)) if clock else 0) + 1
        self.started = time.time()
        self._frozen: float | None = None
        self._stop = threading.Event()
        self._write()
        self._thread = threading.Thread(target=self._beat, name="sweep-heartbeat", daemon=True)
        self._thread.start()

    def seconds(self) -> float:
        """The program's wall time so far (frozen by :meth:`timing`)."""
        return self._frozen if self._frozen is not None else self.prior + time.time() - self.started

    def timing(self) -> dict:
        """A run's ``timing.json``: the program's wall time (frozen at the first call, when the
        program has trained) divided among the group's runs, the number of sessions it took (more
        than one when a worker resumed a killed one), and the worker (pid, host) that finished it."""
        if self._frozen is None:
            self._frozen = self.seconds()
        n = len(self.group.runs)
        return {"seconds": self._frozen / n, "group": self.group.id, "group_seconds": self._frozen,
                "group_runs": n, "sessions": self.sessions, "pid": os.getpid(), "host": socket.gethostname()}

    def _write(self) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "group": self.group.id,
                "started": self.started, "heartbeat": time.time()}
        for d in self.dirs:
            if not (d / store.SUMMARY).exists():
                _write_json(d / store.LOCK, info)
        if self.work.is_dir():
            _write_json(self.work / _CLOCK, {"seconds": self.seconds(), "sessions": self.sessions})

    def finished(self, d: Path) -> None:
        """Run directory ``d`` has its ``summary.json``: tell ``on_run`` (the runs bar)."""
        if self.on_run is not None:
            self.on_run(d.name)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_EVERY_S):
            self._write()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for d in self.dirs:
            (d / store.LOCK).unlink(missing_ok=True)


def _prepare(d: Path) -> None:
    """A run directory about to be (re)written: old error file and stray temporary files removed."""
    d.mkdir(parents=True, exist_ok=True)
    (d / store.ERROR).unlink(missing_ok=True)
    for sub in (d, d / "ckpt"):
        if sub.is_dir():
            for tmp in sub.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)


def _write_error(d: Path, exc: BaseException, group_id: str) -> None:
    _write_json(d / store.ERROR, {
        "error": type(exc).__name__, "message": str(exc), "group": group_id, "pid": os.getpid(),
        "host": socket.gethostname(), "time": time.time(),
        "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    })


# ---------------------------------------------------------------- splitting

def _rows(df: pd.DataFrame, mask, **extra) -> pd.DataFrame:
    part = df[mask].copy()
    part["run"] = 0
    for k, v in extra.items():
        part[k] = v
    return part.reset_index(drop=True)


def _entry(summary: dict, r: int) -> dict:
    return dict(summary["runs"][r], run=0)


def _env(work: RunDir, group, run_index) -> dict:
    env = work.read_json("env.json")
    env["batch"] = {"group": group.id, "run_index": run_index}
    return env


def _finish_run(d: Path, config, env: dict, metrics: pd.DataFrame, summary: dict, status: _Status) -> None:
    """config.json, env.json, metrics.parquet, timing.json, then summary.json (last: the run is finished)."""
    _write_json(d / "config.json", config_to_dict(config))
    _write_json(d / "env.json", env)
    store.write_parquet(d / "metrics.parquet", metrics)
    _write_json(d / store.TIMING, status.timing())
    RunDir(d).write_json(store.SUMMARY, summary)
    (d / store.LOCK).unlink(missing_ok=True)
    status.finished(d)


def _split_checkpoints(work: RunDir, targets: list[tuple[Path, int, dict]]) -> None:
    """Per-run teacher checkpoints: run ``r`` of every batched checkpoint, with its generator state."""
    ck = CheckpointDir(work.ckpt)
    for step in ck.steps():
        c = ck.load(step)
        for d, r, config in targets:
            save_checkpoint(d / "ckpt" / checkpoint_name(step), c.params.select(r), step=c.step, samples=c.samples,
                            config=config, extra_metadata={"gen_0": c.metadata[f"gen_{r}"]})


def _teacher(group, out: Path, work: Path, pending, status: _Status) -> None:
    from simulate.teacher import train_teacher

    rd = train_teacher(group.config, work, **status.train_kw)
    df, summary = rd.metrics(), rd.read_json(store.SUMMARY)
    index = {s.hash: i for i, s in enumerate(group.runs)}  # run i of the program is group.runs[i]
    _split_checkpoints(rd, [(out / s.hash, index[s.hash], config_to_dict(s.config)) for s in pending])
    for spec in pending:
        r = index[spec.hash]
        _finish_run(out / spec.hash, spec.config, _env(rd, group, r), _rows(df, df["run"] == r),
                    {"kind": "teacher", "support": summary["support"], "runs": [_entry(summary, r)]}, status)


def _student(group, out: Path, work: Path, pending, status: _Status) -> None:
    """One program of every strategy of the group (``group.runs`` strategy by strategy, the same
    per-run settings in each; one directory per strategy below ``work``), split into the runs. When
    that program fails, each strategy trains as a program of its own, so that one strategy's error
    (a schedule that does not fit, say) fails its runs only; the first error is raised at the end."""
    from simulate.student import train_strategies

    strategies = group.strategies
    dirs = [work] if len(strategies) == 1 else [work / s for s in strategies]
    errors: list[Exception] = []
    try:
        rds = train_strategies(group.config, list(strategies), dirs, **status.train_kw)
    except Exception:  # noqa: BLE001 - retried strategy by strategy below
        if len(strategies) == 1:
            raise
        rds = []
        for strategy, d in zip(strategies, dirs):
            try:
                rds.append(train_strategies(dataclasses.replace(group.config, strategy=strategy), [strategy], [d],
                                            **status.train_kw)[0])
            except Exception as exc:  # noqa: BLE001 - this strategy's runs fail; the others finish
                rds.append(None)
                errors.append(exc)
    n = len(group.runs) // len(strategies)
    index = {s.hash: i for i, s in enumerate(group.runs)}
    for spec in pending:
        j, r = divmod(index[spec.hash], n)
        rd = rds[j]
        if rd is None:
            continue
        df, summary = rd.metrics(), rd.read_json(store.SUMMARY)
        keep = {k: v for k, v in summary.items() if k != "runs"}
        _finish_run(out / spec.hash, spec.config, _env(rd, group, index[spec.hash]), _rows(df, df["run"] == r),
                    dict(keep, runs=[_entry(summary, r)]), status)
    if errors:
        raise errors[0]


def _compare(group, out: Path, work: Path, pending, status: _Status) -> None:
    from simulate.student import train_strategies
    from simulate.teacher import train_teacher

    cfg = group.config
    trd = train_teacher(cfg.teacher, work / "teacher", **status.train_kw)
    tdf, tsum = trd.metrics(), trd.read_json(store.SUMMARY)
    tindex = {t: i for i, t in enumerate(cfg.teacher.seeds)}
    students: dict[tuple[int, str], tuple[RunDir, tuple[int, ...]]] = {}
    for t in cfg.teacher.seeds:
        sseeds = tuple(dict.fromkeys(s.config.student.seeds[0] for s in group.runs if s.config.teacher.seeds[0] == t))
        # every strategy's students of teacher seed t as one batched program (extraction: a second one)
        base = dataclasses.replace(cfg.student, teacher=str(trd.path), teacher_run=tindex[t], seeds=sseeds)
        rds = train_strategies(base, list(cfg.strategies), [work / f"t{t}-{s}" for s in cfg.strategies],
                               **status.train_kw)
        students.update({(t, strategy): (rd, sseeds) for strategy, rd in zip(cfg.strategies, rds)})
    for spec in pending:
        t, s = spec.config.teacher.seeds[0], spec.config.student.seeds[0]
        r = tindex[t]
        parts = [_rows(tdf, tdf["run"] == r, role="teacher")]
        entries = {}
        for strategy in cfg.strategies:
            srd, sseeds = students[t, strategy]
            sdf, ssum = srd.metrics(), srd.read_json(store.SUMMARY)
            i = sseeds.index(s)
            parts.append(_rows(sdf, sdf["run"] == i, role=strategy))
            entries[strategy] = dict(_entry(ssum, i), schedule=ssum.get("schedule"),
                                     checkpoint_choice=ssum.get("checkpoint_choice"),
                                     **{k: ssum[k] for k in ("projection_correlations",) if k in ssum})
        summary = {"kind": "compare", "strategies": list(cfg.strategies), "support": tsum["support"],
                   "teacher": _entry(tsum, r), "students": entries}
        _finish_run(out / spec.hash, spec.config, _env(trd, group, {"teacher": r}), pd.concat(parts, ignore_index=True),
                    summary, status)


def _in_place(group, out: Path, work: Path, pending, status: _Status) -> None:
    """Kinds that keep all seeds of a point in one run directory (the Transformer and Algorithm 1 kinds):
    the run trains in place (resumable) through its kind's engine function; a compare's teacher and
    students live below it and its ``metrics.parquet`` stacks their rows with a ``role`` column. A group
    of several Algorithm 1 teachers or students (rates, B1, supervisions) trains as one program
    (:mod:`simulate.two_stage_shared`), each run in its directory."""
    spec, d = pending[0], out / pending[0].hash
    kind = KINDS[spec.kind]
    if len(pending) > 1:  # Algorithm 1's runs of several rates (supervisions): one program, a directory each
        from simulate.two_stage_runs import train_students, train_teachers

        dirs, cfgs = [out / s.hash for s in pending], [s.config for s in pending]
        if spec.kind == "parity-two-stage-teacher":
            train_teachers(cfgs, dirs, **status.train_kw)
        else:
            train_students(None, None, dirs, configs=cfgs, **status.train_kw)
        for s in pending:
            _write_json(out / s.hash / store.TIMING, status.timing())
            status.finished(out / s.hash)
    elif kind.role != "compare":
        kind.train()(spec.config, d, **status.train_kw)  # writes summary.json itself
        _write_json(d / store.TIMING, status.timing())
        status.finished(d)
    else:
        rows = kind.train()(spec.config, d / "parts", **status.train_kw)
        index = json.loads((d / "parts" / "compare.json").read_text())["index"]
        tdir = RunDir(d / "parts" / index["teacher"])
        parts = [tdir.metrics().assign(role="teacher")]
        parts += [RunDir(d / "parts" / name).metrics().assign(role=strategy) for strategy, name in index["students"].items()]
        tsum = tdir.read_json(store.SUMMARY)
        summary = {"kind": "compare", "strategies": list(index["students"]),  # strategies, or supervisions
                   "teacher": {k: v for k, v in tsum["runs"][0].items() if not isinstance(v, (dict, list))},
                   "students": {r["strategy"]: {k: v for k, v in r.items() if k != "strategy"} for r in rows}}
        _finish_run(d, spec.config, tdir.read_json("env.json"), pd.concat(parts, ignore_index=True), summary,
                    status)


_SPLIT = {"teacher": _teacher, "student": _student, "compare": _compare}  # single-seed runs of a batched program


def _mkdir(path: Path) -> None:
    """``path`` and its parents, also when another worker's cleanup removes an empty parent meanwhile."""
    for _ in range(100):
        try:
            path.mkdir(parents=True, exist_ok=True)
            return
        except FileNotFoundError:
            continue
    path.mkdir(parents=True, exist_ok=True)


def execute_group(group, out, *, allow_thread_change: bool = False, progress: bool = False, on_run=None) -> dict:
    """Claim ``group``, train it batched and split it into ``out/<run hash>/``; never raises for a
    failed run (see the module doc for the claim protocol). ``allow_thread_change``: a killed group
    may resume under another CPU thread count (ARCHITECTURE.md, Determinism). ``progress``: the
    training calls show their step bars; ``on_run(run hash)``: called as each run finishes here.

    Returns ``{"group", "done": [hashes trained now], "failed": [...], "busy": [hashes claimed by a
    live worker, left alone], "skipped": [hashes found finished], "error": str | None}``. Runs
    already finished are left untouched. ``KeyboardInterrupt`` and ``SystemExit`` propagate.
    """
    out = Path(out)
    result = {"group": group.id, "done": [], "failed": [], "busy": [], "skipped": [], "error": None}
    pending = [spec for spec in group.runs if not (out / spec.hash / store.SUMMARY).exists()]
    result["skipped"] = [spec.hash for spec in group.runs if spec not in pending]
    if not pending:
        return result
    claim = claims.try_claim(out, [spec.hash for spec in pending] + [store.group_key(group.id)])
    if claim is None:  # a live worker holds the group (or part of it): leave it alone
        result["busy"] = [spec.hash for spec in pending]
        return result
    with claim:
        return _train_claimed(group, out, pending, result, allow_thread_change, progress, on_run)


def _train_claimed(group, out: Path, pending, result: dict, allow_thread_change: bool, progress: bool,
                   on_run) -> dict:
    work = out / store.WORK / group.id
    finished = [spec.hash for spec in pending if (out / spec.hash / store.SUMMARY).exists()]
    result["skipped"] += finished  # finished by another worker between the first look and the claim
    pending = [spec for spec in pending if spec.hash not in finished]
    if not pending:
        shutil.rmtree(work, ignore_errors=True)
        return result
    if any(store.foreign_lock_alive(store.read_json(out / spec.hash / store.LOCK)) for spec in pending):
        result["busy"] = [spec.hash for spec in pending]  # trained on another host (locks may not reach it)
        return result
    for spec in pending:
        _prepare(out / spec.hash)
    _mkdir(work)
    _write_json(work / "group.json", {"runs": [s.hash for s in group.runs], "kind": group.kind})
    status = _Status([out / s.hash for s in pending], group, work, allow_thread_change=allow_thread_change,
                     progress=progress, on_run=on_run)
    try:
        kind = KINDS[group.kind]
        if kind.split_seeds:  # the work directory goes once split: its sinks log beside the runs
            with sinks.default_log_root(out / "tb" / group.id):
                _SPLIT[kind.role](group, out, work, pending, status)
        else:
            _in_place(group, out, work, pending, status)
    except Exception as exc:  # noqa: BLE001 - any training error marks the group's runs as failed
        for spec in pending:
            if not (out / spec.hash / store.SUMMARY).exists():
                _write_error(out / spec.hash, exc, group.id)
        result["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        status.close()
    for spec in pending:
        done = (out / spec.hash / store.SUMMARY).exists()
        result["done" if done else "failed"].append(spec.hash)
    if not result["failed"]:
        shutil.rmtree(work, ignore_errors=True)
    return result
