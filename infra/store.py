"""The results store: a directory of run directories ``DIR/<config hash>/``, read back as DataFrames.

A run directory counts as a result only once ``summary.json`` exists (it is written last, after
``config.json``, ``env.json``, ``metrics.parquet`` and the checkpoints; every whole-file write is
atomic), so readers here never see a half-written run. While a sweep trains a run its directory
holds ``running.json`` (pid, host, heartbeat); a run that raised holds ``error.json``. The sweep's
plan is ``DIR/sweep.json``; batched programs train under ``DIR/.work/`` (never read as results).

* :func:`load_results`: one row per finished run (per seed of a multi-seed run; per strategy of a
  compare run): ``run_hash``, ``kind``, the config flattened into columns (``teacher.width`` for
  compare sections, ``seed`` for a single seed), the summary's fields (those of
  :func:`infra.logs.summary_from_log`: ``samples_to_95``, ``samples_to_loss_eps``, ``final_loss``, ...;
  a compare row has its student's and, prefixed ``teacher_``, its teacher's: ``teacher_final_loss``,
  ``teacher_samples_to_loss_eps``; runs written before a key existed have NaN there) and, last,
  ``run_dir`` (the run directory's absolute path). A compare row's strategy is its ``strategy``
  column alone: the template's ``student.strategy`` (``student.supervision``) is left out
  (:func:`compared_fields`).
* :func:`load_metrics`: every finished run's ``metrics.parquet`` with ``run_hash``, ``kind``, the
  config columns and ``run_dir`` added; ``shared_teachers="once"`` keeps a teacher shared by the
  compare runs of a sweep once (each run directory holds a copy of its rows).

``DIR`` is a directory of run directories (a sweep's results, a compare's ``--out``) or one run
directory itself.
* :func:`run_state` / :func:`sweep_status` (from :mod:`infra.runstate`, re-exported here): done, running,
  failed or pending, per run.

Who trains a run is decided by a claim (an OS file lock, :mod:`infra.claims`), never by
``running.json``: a run is ``running`` while a live process holds its claim (or, as a hint across
hosts whose file locks may not be shared, while a ``running.json`` written on another host has a
fresh heartbeat). A finished run also holds ``timing.json``: the wall time of its group's program
divided among the group's runs.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from infra.config import renamed_config_keys
from infra.rundir import atomic_write
from infra.runstate import (ERROR, LOCK, MANIFEST, STATES, SUMMARY, TIMING, WORK, _check_dir,
                            clean_work, foreign_lock_alive, group_key, lock_alive, read_json, run_state, sweep_status)
from theory._checks import ParameterError

__all__ = ["kind_of", "read_json", "SUMMARY", "LOCK", "ERROR", "MANIFEST", "WORK", "TIMING", "STATES",
           "SUMMARY_ALIASES", "finished_runs", "flatten_config", "load_results", "load_metrics", "run_state",
           "lock_alive", "foreign_lock_alive", "sweep_status", "group_key", "clean_work", "summary_role",
           "upgrade_summary_entry", "write_parquet", "is_run_dir", "compared_fields",
           "AGGREGATES", "summarize", "run_difference"]


def kind_of(config_class_name: str | None) -> str | None:
    """The experiment kind of a config class name, by the naming rule every kind follows: the MLP
    engine's ``TeacherConfig`` is ``teacher``, ``PcfgTeacherConfig`` is ``pcfg-teacher``,
    ``ParityTransformerStudentConfig`` is ``parity-transformer-student`` (the registry,
    :mod:`experiments.registry`, is tested to agree)."""
    if not config_class_name or not config_class_name.endswith("Config"):
        return config_class_name
    words = re.findall(r"[A-Z][a-z0-9]*", config_class_name[: -len("Config")])
    return "-".join(w.lower() for w in words) or config_class_name


def _read_config(path: Path) -> dict | None:
    """A run's ``config.json`` with renamed fields under their new names (:data:`infra.config.CONFIG_ALIASES`)."""
    config = read_json(path / "config.json")
    return renamed_config_keys(config) if isinstance(config, dict) else config


def finished_runs(root) -> list[Path]:
    """Run directories directly below ``root`` that hold ``summary.json`` (sorted by name); ``[root]``
    when ``root`` is itself a finished run (a teacher, a student or a compare run of a sweep)."""
    root = _check_dir(root)
    if (root / SUMMARY).is_file() and (root / "config.json").is_file():
        return [root]
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / SUMMARY).is_file())


def is_run_dir(path) -> bool:
    """Whether ``path`` is a run directory: its ``config.json`` is a JSON object naming a ``kind``
    (finished or not; finished runs also hold ``summary.json``)."""
    config = read_json(Path(path) / "config.json")
    return isinstance(config, dict) and isinstance(config.get("kind"), str)


def compared_fields(config: dict) -> list[str]:
    """The template columns a compare's rows leave out: ``student.strategy`` when the compare varies
    ``strategies`` (``student.supervision`` for ``supervisions``). The ``student`` section is the
    template of every student; the field a compare varies keeps its default there (``"progressive"``
    for the MLP engine), which no row trained with: each row's own is in its ``strategy`` column."""
    student = config.get("student")
    one = {k: k[:-3] + "y" if k.endswith("ies") else k[:-1] for k, v in config.items() if isinstance(v, list)}
    return [f"student.{f}" for f in one.values() if isinstance(student, dict) and f in student]


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
        flat = {k: v for k, v in flat.items() if k not in compared_fields(config)}
        teacher = _entry(summary.get("teacher") or {}, "teacher_", "teacher")
        return [{**head, **flat, "strategy": strategy, **_entry(entry), **_choice(entry), **teacher,
                 "run_dir": os.path.abspath(path)} for strategy, entry in (summary.get("students") or {}).items()]
    rows = []
    for entry in summary.get("runs", []):
        row = {**head, **{k: v for k, v in flat.items() if k not in ("seed", "seeds")}, "seed": entry.get("seed")}
        row.update({k: v for k, v in _entry(entry, role=summary_role(summary)).items() if k not in row})
        if kind.endswith("student"):
            row.update(_choice(summary))
        if "support" in summary:
            row["support_indices"] = ",".join(map(str, summary["support"]))
        row["run_dir"] = os.path.abspath(path)
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


def load_metrics(root, *, kind: str | None = None, runs=None, shared_teachers: str = "each") -> pd.DataFrame:
    """Every finished run's metrics rows, with ``run_hash``, ``kind``, config columns and ``run_dir`` added.

    ``runs``: an iterable of run hashes to keep (default: all). ``shared_teachers``: ``"each"`` keeps
    every compare run's copy of its teacher's rows (each run directory read whole), ``"once"`` keeps a
    teacher shared by the compare runs of a sweep once (:func:`_shared_teachers_once`; what ``icurr
    results --metrics`` shows). Metric columns win over config
    columns of the same name (``seed``). A finished run whose ``config.json`` or ``metrics.parquet``
    cannot be read (missing, truncated, corrupt) is left out with one warning for all of them, as in
    :func:`load_results`.
    """
    if shared_teachers not in ("each", "once"):
        raise ParameterError(f"shared_teachers must be 'each' or 'once', got {shared_teachers!r}")
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
        extra["run_dir"] = os.path.abspath(path)
        frames.append(df.assign(**extra))
    _warn_skipped(root, skipped, len(paths), "metrics")
    if not frames:
        return pd.DataFrame()
    df = pd.concat(frames, ignore_index=True)
    return _shared_teachers_once(df) if shared_teachers == "once" else df


def _shared_teachers_once(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with each shared teacher's rows once: a sweep of MLP compares (kind ``compare``) splits one
    program into a run directory per student seed, each holding a copy of its teacher's rows (``role ==
    "teacher"``); one teacher (same ``teacher.*`` config, ``seed``, ``step``) stays under the first run
    directory holding it. Transformer compares train a teacher per run directory: all rows are kept."""
    if not {"role", "kind"} <= set(df.columns) or not ((df["kind"] == "compare") & (df["role"] == "teacher")).any():
        return df
    keys = [c for c in df.columns if c.startswith("teacher.")] + [c for c in ("seed", "step") if c in df.columns]
    shared = df[(df["kind"] == "compare") & (df["role"] == "teacher")]
    return df.drop(index=shared.index[shared.duplicated(subset=keys or None)]).reset_index(drop=True)


AGGREGATES = ("mean", "median", "min", "max")


def summarize(df: pd.DataFrame, by: list[str], agg: str = "median") -> pd.DataFrame:
    """One row per group of ``df`` (rows of :func:`load_results`) by the columns ``by``: the columns
    ``by``, ``n`` (rows in the group: runs, or runs x strategies) and every ``samples_to_*`` column
    aggregated by ``agg`` (mean, median, min or max), a run that never reached the target counting as
    +infinity (so ``inf`` when the aggregate never got there). Groups in order of first appearance."""
    if agg not in AGGREGATES:
        raise ParameterError(f"agg must be one of {', '.join(AGGREGATES)}, got {agg!r}")
    missing = [c for c in by if c not in df.columns]
    if missing or not by:
        known = ", ".join(c for c in df.columns if c != "run_dir")
        raise ParameterError(f"by must name columns of these results, got {missing or by!r} (columns: {known})")
    targets = [c for c in df.columns if c.startswith("samples_to_")]
    rows = []
    for key, g in df.groupby(by, sort=False, dropna=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)), n=len(g))
        for c in targets:
            vals = pd.to_numeric(g[c], errors="coerce").astype(float).fillna(float("inf"))
            row[c] = float(getattr(vals, agg)())
        rows.append(row)
    return pd.DataFrame(rows, columns=[*by, "n", *targets])


def _summary_numbers(path: Path) -> dict[str, Any]:
    """A run's ``summary.json`` as flat keys: ``teacher.<key>`` and ``<strategy>.<key>`` for a compare,
    ``<key>`` for a one-seed run, ``seed=<s>.<key>`` for several seeds (``steps_to_*`` left out)."""
    summary = read_json(path / SUMMARY) or {}
    if "students" in summary:
        parts = [("teacher.", summary.get("teacher") or {}, "teacher")]
        parts += [(f"{s}.", e, "student") for s, e in summary["students"].items()]
    else:
        runs = summary.get("runs") or []
        parts = [("" if len(runs) == 1 else f"seed={e.get('seed')}.", e, summary_role(summary)) for e in runs]
    return {k: v for prefix, e, role in parts for k, v in _entry(e, prefix, role).items()
            if "steps_to_" not in k}


def run_difference(a, b) -> dict[str, list[dict]]:
    """How two run directories differ: ``{"config": [...], "summary": [...]}``, rows ``{key, a, b}``;
    config rows only for the dotted keys whose values differ (``kind`` included), summary rows for every
    key of either summary (:func:`_summary_numbers`; None where a run lacks it or is unfinished)."""
    for path in (a, b):
        if not is_run_dir(path):
            raise ParameterError(f"diff: {str(path)!r} is not a run directory (no config.json naming a kind)")
    flat = [{"kind": kind_of(c.get("kind")), **flatten_config(c)} for c in (_read_config(Path(a)), _read_config(Path(b)))]
    sums = [_summary_numbers(Path(a)), _summary_numbers(Path(b))]
    keys = lambda x, y: list(dict.fromkeys([*x, *y]))  # noqa: E731
    config = [{"key": k, "a": flat[0].get(k), "b": flat[1].get(k)} for k in keys(*flat)
              if flat[0].get(k) != flat[1].get(k) or (k in flat[0]) != (k in flat[1])]
    return {"config": config, "summary": [{"key": k, "a": sums[0].get(k), "b": sums[1].get(k)} for k in keys(*sums)]}


def write_parquet(path, df: pd.DataFrame) -> None:
    """Write ``df`` to ``path`` atomically, with the umask's mode (:func:`infra.rundir.atomic_write`)."""
    atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))
