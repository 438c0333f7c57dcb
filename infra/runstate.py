"""Run states of a results directory: done, running, failed or pending, per run; the file names of
the store's protocol; the cleaner of ``DIR/.work/`` (the work directories of batched programs).

Who trains a run is decided by a claim (an OS file lock, :mod:`infra.claims`), never by
``running.json``: a run is ``running`` while a live process holds its claim (or, as a hint across
hosts whose file locks may not be shared, while a ``running.json`` written on another host has a
fresh heartbeat). :mod:`infra.store` re-exports every public name here.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

from infra import claims
from theory._checks import ParameterError

__all__ = ["SUMMARY", "LOCK", "ERROR", "MANIFEST", "WORK", "TIMING", "STATES", "HEARTBEAT_STALE_S", "read_json",
           "lock_alive", "foreign_lock_alive", "run_state", "sweep_status", "group_key", "clean_work"]

SUMMARY, LOCK, ERROR, MANIFEST, WORK = "summary.json", "running.json", "error.json", "sweep.json", ".work"
TIMING = "timing.json"  # a finished run's share of its group's wall time (seconds)
STATES = ("done", "running", "failed", "pending")
#: A lock written on another host counts as live while its heartbeat is younger than this (seconds).
HEARTBEAT_STALE_S = 180.0


def read_json(path: Path) -> dict | None:
    """The JSON in ``path``, or None when it is missing or not (yet, or no longer) whole JSON: the
    tolerant read of a directory that other processes may be writing."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _check_dir(root) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise ParameterError(f"results directory {str(root)!r} does not exist")
    return root



def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def lock_alive(lock: dict | None) -> bool:
    """Whether a ``running.json`` names a live process (same host: pid check; else fresh heartbeat).

    A hint for people and for hosts that do not share file locks; on one host the claim
    (:func:`infra.claims.is_claimed`) decides, since a pid can be reused after its process died."""
    if not lock:
        return False
    if lock.get("host") == socket.gethostname():
        return isinstance(lock.get("pid"), int) and _pid_alive(lock["pid"])
    return time.time() - float(lock.get("heartbeat", 0)) < HEARTBEAT_STALE_S


def foreign_lock_alive(lock: dict | None) -> bool:
    """Whether a ``running.json`` was written on another host and its heartbeat is fresh."""
    return bool(lock) and lock.get("host") != socket.gethostname() and lock_alive(lock)


def run_state(path) -> str:
    """``done`` (summary.json), ``running`` (its claim is held by a live process, or a fresh
    ``running.json`` of another host), ``failed`` (error.json) or ``pending``."""
    path = Path(path)
    if (path / SUMMARY).is_file():
        return "done"
    if claims.is_claimed(path.parent, path.name) or foreign_lock_alive(read_json(path / LOCK)):
        return "running"
    if (path / ERROR).is_file():
        return "failed"
    return "pending"


def _seconds(path: Path):
    timing = read_json(path / TIMING) or {}
    seconds = timing.get("seconds")
    return round(float(seconds), 2) if isinstance(seconds, (int, float)) else None


def _diverged(path: Path) -> str:
    """``"diverged at step N"`` when a finished run's loss or weights became non-finite (its summary's
    ``diverged_at``, per run or in a compare's teacher and students), else ``""``."""
    summary = read_json(path / SUMMARY) or {}
    entries = [*summary.get("runs", []), summary.get("teacher") or {}, *(summary.get("students") or {}).values()]
    steps = sorted({e["diverged_at"] for e in entries if isinstance(e, dict) and e.get("diverged_at") is not None})
    if steps or summary.get("diverged"):
        return "diverged" + (f" at step {', '.join(map(str, steps))}" if steps else "")
    return ""


def sweep_status(root) -> tuple[list[dict], dict[str, int]]:
    """Rows ``run_hash, state, kind, point, seconds, detail`` for every planned or present run, and
    counts; ``seconds`` is a finished run's share of its group's wall time (None when unknown);
    ``detail`` names a running run's process, a failed run's error, a diverged run's step."""
    root = _check_dir(root)
    manifest = (read_json(root / MANIFEST) or {}).get("runs", {})
    names = dict.fromkeys(manifest)
    for p in sorted(root.iterdir()):
        if p.is_dir() and not p.name.startswith(".") and any((p / f).exists() for f in ("config.json", LOCK, ERROR)):
            names.setdefault(p.name)
    rows, counts = [], dict.fromkeys(STATES, 0)
    for name in names:
        path = root / name
        state = run_state(path)
        counts[state] += 1
        info = manifest.get(name, {})
        detail = ""
        if state == "running":
            lock = read_json(path / LOCK) or {}
            detail = f"pid {lock.get('pid')} on {lock.get('host')}"
        elif state == "failed":
            err = read_json(path / ERROR) or {}
            detail = f"{err.get('error', 'error')}: {err.get('message', '')}"[:200]
        elif state == "done":
            detail = _diverged(path)
        point = " ".join(f"{k}={v}" for k, v in (info.get("point") or {}).items())
        rows.append({"run_hash": name, "state": state, "kind": info.get("kind"), "point": point,
                     "seconds": _seconds(path) if state == "done" else None, "detail": detail})
    counts["total"] = len(rows)
    return rows, counts


def group_key(group_id: str) -> str:
    """The claim key of a group's work directory ``.work/<group id>/`` (:mod:`infra.claims`)."""
    return f"group-{group_id}"


def clean_work(root, *, keep=()) -> list[str]:
    """Remove ``root/.work/<group>/`` directories whose runs are all done (left by a kill after the
    last summary was written) or that have no ``group.json``; ``keep``: group ids never removed. A
    work directory whose group is claimed by a live worker is never removed (the cleaner claims the
    group itself first, and a worker claims its group before it creates the directory). Lock files
    that no live process holds go too (:func:`infra.claims.remove_stale`). Returns the removed names."""
    claims.remove_stale(root)  # lock files of killed workers
    work = Path(root) / WORK
    removed = []
    try:
        gdirs = sorted(work.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return removed  # none, or another cleaner removed it just now
    for gdir in gdirs:
        if gdir.name in keep or not gdir.is_dir() or not _finished_or_broken(root, gdir):
            continue
        claim = claims.try_claim(root, [group_key(gdir.name)], patience=0.0)
        if claim is None:
            continue  # a live worker holds the group
        with claim:
            if gdir.is_dir() and _finished_or_broken(root, gdir):  # look again under the claim
                shutil.rmtree(gdir, ignore_errors=True)
                removed.append(gdir.name)
    try:
        work.rmdir()  # only when empty
    except OSError:
        pass
    return removed


def _finished_or_broken(root, gdir: Path) -> bool:
    """Whether a work directory can go: its runs are all done, or it has no ``group.json`` (a worker
    writes that first, under its claim, so a directory without one holds no training: it was left
    by a kill during its creation or its removal)."""
    info = read_json(gdir / "group.json")
    return info is None or all((Path(root) / h / SUMMARY).is_file() for h in info.get("runs", []))
