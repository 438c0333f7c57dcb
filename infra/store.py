"""The results store: a directory of run directories ``DIR/<config hash>/``, read back as DataFrames.

A run directory counts as a result only once ``summary.json`` exists (it is written last, after
``config.json``, ``env.json``, ``metrics.parquet`` and the checkpoints; every whole-file write is
atomic), so readers here never see a half-written run. While a sweep trains a run its directory
holds ``running.json`` (pid, host, heartbeat); a run that raised holds ``error.json``. The sweep's
plan is ``DIR/sweep.json``; batched programs train under ``DIR/.work/`` (never read as results).

* :func:`load_results`: one row per finished run (per seed of a multi-seed run; per strategy of a
  compare run): ``run_hash``, ``kind``, the config flattened into columns (``teacher.width`` for
  compare sections, ``seed`` for a single seed), and the summary's fields.
* :func:`load_metrics`: every finished run's ``metrics.parquet`` with ``run_hash``, ``kind`` and the
  config columns added.
* :func:`run_state` / :func:`sweep_status`: done, running, failed or pending, per run.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from infra.config import renamed_config_keys
from theory._checks import ParameterError

__all__ = ["kind_of", "SUMMARY", "LOCK", "ERROR", "MANIFEST", "WORK", "STATES", "SUMMARY_ALIASES", "finished_runs",
           "flatten_config", "load_results", "load_metrics", "run_state", "lock_alive", "sweep_status", "clean_work",
           "summary_role", "upgrade_summary_entry", "write_parquet"]

SUMMARY, LOCK, ERROR, MANIFEST, WORK = "summary.json", "running.json", "error.json", "sweep.json", ".work"
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


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _read_config(path: Path) -> dict | None:
    """A run's ``config.json`` with renamed fields under their new names (:data:`infra.config.CONFIG_ALIASES`)."""
    config = _read_json(path / "config.json")
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


def _result_rows(path: Path) -> list[dict]:
    config, summary = _read_config(path), _read_json(path / SUMMARY)
    if config is None or summary is None:
        return []
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


def load_results(root, *, kind: str | None = None) -> pd.DataFrame:
    """One row per finished run below ``root`` (see the module doc); ``kind`` keeps one kind only.

    ``df.attrs["config_columns"]`` names the columns that come from the configs.
    """
    rows, config_cols = [], {}
    for path in finished_runs(root):
        config = _read_config(path) or {}
        for row in _result_rows(path):
            if kind is None or row["kind"] == kind:
                rows.append(row)
                config_cols.update(dict.fromkeys(flatten_config(config)))
    df = pd.DataFrame(rows)
    config_cols.pop("seeds", None)
    df.attrs["config_columns"] = [c for c in df.columns if c in config_cols or c == "seed"]
    return df


def load_metrics(root, *, kind: str | None = None, runs=None) -> pd.DataFrame:
    """Every finished run's metrics rows, with ``run_hash``, ``kind`` and config columns added.

    ``runs``: an iterable of run hashes to keep (default: all). Metric columns win over config
    columns of the same name (``seed``).
    """
    keep = None if runs is None else set(runs)
    frames = []
    for path in finished_runs(root):
        if keep is not None and path.name not in keep:
            continue
        config = _read_config(path)
        pq = path / "metrics.parquet"
        if config is None or not pq.is_file():
            continue
        kname = kind_of(config.get("kind"))
        if kind is not None and kname != kind:
            continue
        df = pd.read_parquet(pq)
        extra = {"run_hash": path.name, "kind": kname}
        extra.update({k: v for k, v in flatten_config(config).items() if k not in df.columns})
        frames.append(df.assign(**extra))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def write_parquet(path, df: pd.DataFrame) -> None:
    """Write ``df`` to ``path`` atomically (temporary file in the same directory, then ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    """Whether a ``running.json`` names a live process (same host: pid check; else fresh heartbeat)."""
    if not lock:
        return False
    if lock.get("host") == socket.gethostname():
        return isinstance(lock.get("pid"), int) and _pid_alive(lock["pid"])
    return time.time() - float(lock.get("heartbeat", 0)) < HEARTBEAT_STALE_S


def run_state(path) -> str:
    """``done`` (summary.json), ``running`` (a live lock), ``failed`` (error.json) or ``pending``."""
    path = Path(path)
    if (path / SUMMARY).is_file():
        return "done"
    if lock_alive(_read_json(path / LOCK)):
        return "running"
    if (path / ERROR).is_file():
        return "failed"
    return "pending"


def sweep_status(root) -> tuple[list[dict], dict[str, int]]:
    """Rows ``run_hash, state, kind, point, detail`` for every planned or present run, and counts."""
    root = _check_dir(root)
    manifest = (_read_json(root / MANIFEST) or {}).get("runs", {})
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
            lock = _read_json(path / LOCK) or {}
            detail = f"pid {lock.get('pid')} on {lock.get('host')}"
        elif state == "failed":
            err = _read_json(path / ERROR) or {}
            detail = f"{err.get('error', 'error')}: {err.get('message', '')}"[:200]
        point = " ".join(f"{k}={v}" for k, v in (info.get("point") or {}).items())
        rows.append({"run_hash": name, "state": state, "kind": info.get("kind"), "point": point, "detail": detail})
    counts["total"] = len(rows)
    return rows, counts


def clean_work(root, *, keep=()) -> list[str]:
    """Remove ``root/.work/<group>/`` directories whose runs are all done (left by a kill after the
    last summary was written); ``keep``: group ids never removed. Returns the removed names."""
    work = Path(root) / WORK
    removed = []
    if not work.is_dir():
        return removed
    for gdir in work.iterdir():
        if gdir.name in keep or not gdir.is_dir():
            continue
        info = _read_json(gdir / "group.json")
        if info is None or not all((Path(root) / h / SUMMARY).is_file() for h in info.get("runs", [])):
            continue
        shutil.rmtree(gdir, ignore_errors=True)
        removed.append(gdir.name)
    try:
        work.rmdir()  # only when empty
    except OSError:
        pass
    return removed
