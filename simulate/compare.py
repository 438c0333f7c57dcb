"""One teacher, then a student per strategy, summarized per strategy over the student seeds."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from icurr.config import config_hash

from .rundir import RunDir, atomic_write_text
from .student import train_strategies
from .teacher import train_teacher

__all__ = ["run_compare", "strategy_row", "median_reached"]


def median_reached(values):
    """Median of samples-to-accuracy values with ``None``/NaN (never reached) counted as +infinity;
    ``None`` if the median itself was never reached."""
    arr = np.array([math.inf if v is None or v != v else v for v in values], dtype=float)
    med = float(np.median(arr))
    return None if math.isinf(med) else med


def strategy_row(strategy: str, run_dir) -> dict:
    """Median and spread over seeds of samples to 95% / 99% test accuracy, from ``summary.json``."""
    summary = RunDir(run_dir).read_json("summary.json")
    runs = summary["runs"]
    row = {"strategy": strategy}
    for t in ("95", "99"):
        vals = [r[f"samples_to_{t}"] for r in runs]
        row[f"samples_to_{t}"] = median_reached(vals)
        reached = [v for v in vals if v is not None]
        row[f"samples_to_{t}_min"] = min(reached) if reached else None
        row[f"samples_to_{t}_max"] = max(reached) if len(reached) == len(vals) else None
    row["seeds"] = len(runs)
    row["final_accuracy"] = float(np.median([r["final_accuracy"] for r in runs]))
    choice = summary.get("checkpoint_choice") or {}
    if "step" in choice:
        row["checkpoint"] = f"{choice['step']} ({choice['rule']})"
    return row


def run_compare(cfg, out, *, progress: bool = True, train_teacher_fn=None, train_student_fn=None,
                row_fn=None) -> list[dict]:
    """Train (or reuse) the teacher and every strategy's students below ``out``; one row per strategy.

    Run directories are named by the hash of their config, so a rerun reuses finished runs. With the
    MLP engine's defaults all strategies train as ONE batched program
    (:func:`simulate.student.train_strategies`); ``train_student_fn`` (one strategy at a time),
    ``train_teacher_fn`` and ``row_fn`` let other engines (:mod:`distill.runs`) share this layout.
    """
    train_teacher_fn = train_teacher_fn or train_teacher
    row_fn = row_fn or strategy_row
    out = Path(out)
    tdir = out / config_hash(cfg.teacher)
    train_teacher_fn(cfg.teacher, tdir, progress=progress)
    index = {"teacher": tdir.name, "students": {}}
    configs = [dataclasses.replace(cfg.student, teacher=tdir.name, strategy=s) for s in cfg.strategies]
    dirs = [out / config_hash(c) for c in configs]
    if train_student_fn is None:
        base = dataclasses.replace(cfg.student, teacher=str(tdir))
        train_strategies(base, list(cfg.strategies), dirs, progress=progress)
    else:
        for c, d in zip(configs, dirs):
            train_student_fn(dataclasses.replace(c, teacher=str(tdir)), d, progress=progress)
    rows = []
    for strategy, d in zip(cfg.strategies, dirs):
        index["students"][strategy] = d.name
        rows.append(row_fn(strategy, d))
    atomic_write_text(out / "compare.json", json.dumps({"index": index, "rows": rows}, indent=2) + "\n")
    return rows
