"""The results store: a directory of run directories ``DIR/<config hash>/``, read back as DataFrames.

A run directory counts as a result only once ``summary.json`` exists (it is written last, after
``config.json``, ``env.json``, ``metrics.parquet`` and the checkpoints; every whole-file write is
atomic), so readers here never see a half-written run. While a sweep trains a run its directory
holds ``running.json`` (pid, host, heartbeat); a run that raised holds ``error.json``. The sweep's
plan is ``DIR/sweep.json``; batched programs train under ``DIR/.work/`` (never read as results).

* :func:`load_results`: one row per finished run (per seed of a multi-seed run; per strategy of a
  compare run): ``run_hash``, ``kind``, the config flattened into columns (``teacher.width`` for
  compare sections, ``seed`` for a single seed), and the summary's fields (those of
  :func:`infra.logs.summary_from_log`: ``samples_to_95``, ``samples_to_loss_eps``, ``final_loss``, ...;
  a compare row has its student's and, prefixed ``teacher_``, its teacher's: ``teacher_final_loss``,
  ``teacher_samples_to_loss_eps``; runs written before a key existed have NaN there).
* :func:`load_metrics`: every finished run's ``metrics.parquet`` with ``run_hash``, ``kind`` and the
  config columns added.
* :func:`run_state` / :func:`sweep_status`: done, running, failed or pending, per run.

Who trains a run is decided by a claim (an OS file lock, :mod:`infra.claims`), never by
``running.json``: a run is ``running`` while a live process holds its claim (or, as a hint across
hosts whose file locks may not be shared, while a ``running.json`` written on another host has a
fresh heartbeat). A finished run also holds ``timing.json``: the wall time of its group's program
divided among the group's runs.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
from pathlib import Path
from typing import Any

import pandas as pd

from infra import claims
from infra.config import renamed_config_keys
from infra.rundir import atomic_write
from theory._checks import ParameterError

__all__ = ["kind_of", "read_json", "SUMMARY", "LOCK", "ERROR", "MANIFEST", "WORK", "TIMING", "STATES",
           "SUMMARY_ALIASES", "finished_runs", "flatten_config", "load_results", "load_metrics", "run_state",
           "lock_alive", "foreign_lock_alive", "sweep_status", "group_key", "clean_work", "summary_role",
           "upgrade_summary_entry", "write_parquet"]

SUMMARY, LOCK, ERROR, MANIFEST, WORK = "summary.json", "running.json", "error.json", "sweep.json", ".work"
TIMING = "timing.json"  # a finished run's share of its group's wall time (seconds)
STATES = ("done", "running", "failed", "pending")
#: A lock written on another host counts as live while its heartbeat is younger than this (seconds).
HEARTBEAT_STALE_S = 180.0

def kind_of(config_class_name: str | None) -> str | None:
    """The experiment kind of a config class name, by the naming rule every kind follows: the MLP
    engine's ``TeacherConfig`` is ``teacher``, ``PcfgTeacherConfig`` is ``pcfg-teacher``,
    ``ParityTransformerStudentConfig`` is ``parity-transformer-student`` (the registry,
    :mod:`experiments.registry`, is tested to agree)."""
    if not config_class_name or not config_class_name.endswith("Config"):
        return config_class_name
    words = re.findall(r"[A-Z][a-z0-9]*", config_class_name[: -len("Config")])
    return "-".join(w.lower() for w in words) or config_class_name


def read_json(path: Path) -> dict | None:
    """The JSON in ``path``, or None when it is missing or not (yet, or no longer) whole JSON: the
    tolerant read of a directory that other processes may be writing."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _read_config(path: Path) -> dict | None:
    """A run's ``config.json`` with renamed fields under their new names (:data:`infra.config.CONFIG_ALIASES`)."""
    config = read_json(path / "config.json")
    return renamed_config_keys(config) if isinstance(config, dict) else config


def _check_dir(root) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise ParameterError(f"results directory {str(root)!r} does not exist")
    return root


def finished_runs(root) -> list[Path]:
    """Run directories directly below ``root`` that hold ``summary.json`` (sorted by name)."""
    root = _check_dir(root)
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / SUMMARY).is_file())


def flatten_config(config: dict, prefix: str = "") -> dict[str, Any]:
    """Config JSON as flat columns: sections become ``section.field``; a one-seed ``seeds`` becomes
    ``seed``; other lists become comma-joined strings (so that columns group and export to CSV)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key == "kind":
            continue
        if isinstance(value, dict):
            out.update(flatten_config(value, f"{prefix}{key}."))
        elif key == "seeds" and isinstance(value, list) and len(value) == 1:
            out[f"{prefix}seed"] = value[0]
        elif isinstance(value, list):
            out[f"{prefix}{key}"] = ",".join(map(str, value))
        else:
            out[f"{prefix}{key}"] = value
    return out


#: Renamed summary keys, ``{role: {old key: new key}}``. ``samples_to_<p>`` is always samples to p%
#: test accuracy (absolute); the Transformer's old relative targets ``samples_to_<p>pct`` are samples
#: to p% of the teacher's final accuracy for a student, of the run's own final accuracy for a teacher.
SUMMARY_ALIASES: dict[str, dict[str, str]] = {
    "student": {f"samples_to_{p}pct": f"samples_to_{p}pct_of_teacher" for p in (80, 90, 95)},
    "teacher": {f"samples_to_{p}pct": f"samples_to_{p}pct_of_own_final" for p in (80, 90, 95)},
}


def upgrade_summary_entry(entry: dict, role: str) -> dict:
    """A run's entry of an old ``summary.json`` with its keys renamed as :data:`SUMMARY_ALIASES` says
    (``role``: ``"student"`` or ``"teacher"``); new keys already there are kept."""
    aliases = SUMMARY_ALIASES[role]
    return {aliases[k] if k in aliases and aliases[k] not in entry else k: v for k, v in entry.items()}


def summary_role(summary: dict) -> str:
    """``"student"`` when the runs of ``summary`` were measured against a teacher's final accuracy,
    else ``"teacher"`` (a teacher, or a student whose teacher's accuracy was unknown)."""
    student = "student" in str(summary.get("kind", "")) and summary.get("teacher_final_accuracy", 0) is not None
    return "student" if student else "teacher"


def _entry(entry: dict, prefix: str = "", role: str = "student") -> dict[str, Any]:
    entry = upgrade_summary_entry(entry, role)
    return {f"{prefix}{k}": v for k, v in entry.items() if k not in ("run", "seed") and not isinstance(v, (dict, list))}


def _choice(summary: dict) -> dict[str, Any]:
    choice = summary.get("checkpoint_choice") or {}
    return {"checkpoint_step": choice.get("step"), "checkpoint_rule": choice.get("rule")}


def _result_rows(path: Path, skipped: list | None = None) -> list[dict]:
    """The result rows of one finished run; none when its ``config.json`` or ``summary.json`` cannot be
    read (the reason appended to ``skipped``)."""
    config, summary = _read_config(path), read_json(path / SUMMARY)
    why = ("config.json is missing or not valid JSON" if not isinstance(config, dict) else
           "summary.json is not valid JSON (truncated?)" if not isinstance(summary, dict) else
           "config.json names no kind" if not isinstance(config.get("kind"), str) else None)
    if why is None:
        try:
            return _rows_of(path, config, summary)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            why = f"summary.json has an unexpected layout ({type(exc).__name__}: {exc})"
    if skipped is not None:
        skipped.append((path.name, why))
    return []


def _rows_of(path: Path, config: dict, summary: dict) -> list[dict]:
    kind = kind_of(config.get("kind"))
    head = {"run_hash": path.name, "kind": kind}
    flat = flatten_config(config)
    if kind.endswith("compare"):
        teacher = _entry(summary.get("teacher") or {}, "teacher_", "teacher")
        return [{**head, **flat, "strategy": strategy, **_entry(entry), **_choice(entry), **teacher}
                for strategy, entry in (summary.get("students") or {}).items()]
    rows = []
    for entry in summary.get("runs", []):
        row = {**head, **{k: v for k, v in flat.items() if k not in ("seed", "seeds")}, "seed": entry.get("seed")}
        row.update({k: v for k, v in _entry(entry, role=summary_role(summary)).items() if k not in row})
        if kind.endswith("student"):
            row.update(_choice(summary))
        if "support" in summary:
            row["support_indices"] = ",".join(map(str, summary["support"]))
        rows.append(row)
    return rows


def _warn_skipped(root, skipped: list, total: int, what: str) -> None:
    """One :class:`infra.config.IcurrWarning` line saying how many finished runs were left out, and why."""
    if not skipped:
        return
    import warnings

    from infra.config import IcurrWarning

    shown = "; ".join(f"{name}: {why}" for name, why in skipped[:3])
    more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    warnings.warn(f"{len(skipped)} of {total} finished runs in {str(root)!r} left out of the {what}: {shown}{more}",
                  IcurrWarning, stacklevel=3)


def load_results(root, *, kind: str | None = None) -> pd.DataFrame:
    """One row per finished run below ``root`` (see the module doc); ``kind`` keeps one kind only.

    ``df.attrs["config_columns"]`` names the columns that come from the configs. A finished run whose
    ``config.json`` or ``summary.json`` cannot be read is left out with one warning
    (:class:`infra.config.IcurrWarning`) for all of them, saying how many and why; ``df.attrs["skipped"]``
    lists them as ``(run, reason)``.
    """
    rows, config_cols, skipped = [], {}, []
    paths = finished_runs(root)
    for path in paths:
        config = _read_config(path) or {}
        for row in _result_rows(path, skipped):
            if kind is None or row["kind"] == kind:
                rows.append(row)
                config_cols.update(dict.fromkeys(flatten_config(config)))
    _warn_skipped(root, skipped, len(paths), "results")
    df = pd.DataFrame(rows)
    config_cols.pop("seeds", None)
    df.attrs["config_columns"] = [c for c in df.columns if c in config_cols or c == "seed"]
    df.attrs["skipped"] = skipped
    return df


def load_metrics(root, *, kind: str | None = None, runs=None) -> pd.DataFrame:
    """Every finished run's metrics rows, with ``run_hash``, ``kind`` and config columns added.

    ``runs``: an iterable of run hashes to keep (default: all). Metric columns win over config
    columns of the same name (``seed``). A finished run whose ``config.json`` or ``metrics.parquet``
    cannot be read (missing, truncated, corrupt) is left out with one warning for all of them, as in
    :func:`load_results`.
    """
    keep = None if runs is None else set(runs)
    frames, skipped = [], []
    paths = [p for p in finished_runs(root) if keep is None or p.name in keep]
    for path in paths:
        config = _read_config(path)
        pq = path / "metrics.parquet"
        if not isinstance(config, dict):
            skipped.append((path.name, "config.json is missing or not valid JSON"))
            continue
        kname = kind_of(config.get("kind"))
        if kind is not None and kname != kind:
            continue
        try:
            df = pd.read_parquet(pq)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError, ArrowIOError an OSError
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            skipped.append((path.name, f"metrics.parquet cannot be read ({first})"))
            continue
        extra = {"run_hash": path.name, "kind": kname}
        extra.update({k: v for k, v in flatten_config(config).items() if k not in df.columns})
        frames.append(df.assign(**extra))
    _warn_skipped(root, skipped, len(paths), "metrics")
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def write_parquet(path, df: pd.DataFrame) -> None:
    """Write ``df`` to ``path`` atomically, with the umask's mode (:func:`infra.rundir.atomic_write`)."""
    atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


# ---------------------------------------------------------------- run states

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
