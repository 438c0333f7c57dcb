"""The layout of a strategy comparison: one teacher, then students of every strategy, one row each.

Engine-agnostic: the engine passes its training functions. Run directories below ``out`` are named
by the hash of their config (:func:`infra.config.config_hash`), so a rerun reuses finished runs;
``out/compare.json`` holds the index (teacher and student directories) and the rows.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Callable

import numpy as np

from .config import config_hash
from .rundir import RunDir, atomic_write_text
from .store import summary_role, upgrade_summary_entry

__all__ = ["run_compare", "median_reached", "strategy_row", "MEASURE_PREFIXES"]

#: Per-run finals of the Transformer's measures summarized by :func:`strategy_row` when present.
MEASURE_PREFIXES = ("final_m_robust_", "final_m_close_", "final_probe_level_")


def median_reached(values):
    """Median of samples-to-accuracy values with ``None``/NaN (never reached) counted as +infinity;
    ``None`` if the median itself was never reached."""
    arr = np.array([math.inf if v is None or v != v else v for v in values], dtype=float)
    med = float(np.median(arr))
    return None if math.isinf(med) else med


def strategy_row(strategy: str, run_dir, *, speed_keys=("samples_to_95", "samples_to_99")) -> dict:
    """One strategy's row of a comparison, from its students' ``summary.json`` (one entry per seed).

    For every key of ``speed_keys`` (samples to a target; ``samples_to_95``: to 95% test accuracy,
    ``samples_to_95pct_of_teacher``: to 95% of the teacher's final accuracy): the median over seeds
    with a run that never got there counted as +infinity (None when the median did not get there,
    :func:`median_reached`), ``<key>_min`` (the fastest run; None if none got there) and ``<key>_max``
    (the slowest; None unless every run got there). Then ``seeds``, the median ``final_accuracy``,
    the medians of the runs' ``final_m_robust_<n>`` / ``final_m_close_<n>`` / ``final_probe_level_<l>``
    when present (as ``m_robust_<n>`` ...), and ``checkpoint`` (``"<step> (<rule>)"``) when the schedule
    used a first checkpoint. Old summaries load with their keys renamed (:mod:`infra.store`).
    """
    summary = RunDir(run_dir).read_json("summary.json")
    role = summary_role(summary)
    runs = [upgrade_summary_entry(r, role) for r in summary["runs"]]
    row = {"strategy": strategy}
    for key in speed_keys:
        vals = [r.get(key) for r in runs]
        row[key] = median_reached(vals)
        reached = [v for v in vals if v is not None and v == v]
        row[f"{key}_min"] = min(reached) if reached else None
        row[f"{key}_max"] = max(reached) if len(reached) == len(vals) else None
    row["seeds"] = len(runs)
    row["final_accuracy"] = float(np.median([r["final_accuracy"] for r in runs]))
    for key in sorted(runs[0]) if runs else ():
        if key.startswith(MEASURE_PREFIXES):
            vals = [r[key] for r in runs if r.get(key) is not None and not math.isnan(r[key])]
            row[key[len("final_"):]] = float(np.median(vals)) if vals else None
    choice = summary.get("checkpoint_choice") or {}
    if "step" in choice:
        row["checkpoint"] = f"{choice['step']} ({choice['rule']})"
    return row


def run_compare(cfg, out, *, train_teacher: Callable, train_students: Callable, row: Callable,
                progress: bool = True) -> list[dict]:
    """Train (or reuse) ``cfg.teacher`` and the students of every strategy in ``cfg.strategies``.

    ``train_teacher(teacher_cfg, dir, progress=)``; ``train_students(student_cfg, strategies, dirs,
    progress=)`` with ``student_cfg.teacher`` set to the teacher's directory; ``row(strategy, dir)``
    gives the strategy's row of the returned table.
    """
    out = Path(out)
    tdir = out / config_hash(cfg.teacher)
    train_teacher(cfg.teacher, tdir, progress=progress)
    index = {"teacher": tdir.name, "students": {}}
    configs = [dataclasses.replace(cfg.student, teacher=tdir.name, strategy=s) for s in cfg.strategies]
    dirs = [out / config_hash(c) for c in configs]
    train_students(dataclasses.replace(cfg.student, teacher=str(tdir)), list(cfg.strategies), dirs, progress=progress)
    rows = []
    for strategy, d in zip(cfg.strategies, dirs):
        index["students"][strategy] = d.name
        rows.append(row(strategy, d))
    atomic_write_text(out / "compare.json", json.dumps({"index": index, "rows": rows}, indent=2) + "\n")
    return rows
