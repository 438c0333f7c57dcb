"""One MLP teacher, then a student per strategy, summarized per strategy over the student seeds
(the layout of :func:`infra.compare.run_compare`; all strategies' students train as one program)."""
from __future__ import annotations

import numpy as np

from infra.compare import median_reached
from infra.compare import run_compare as _run_compare
from infra.rundir import RunDir

from .student import train_strategies
from .teacher import train_teacher

__all__ = ["run_compare", "strategy_row"]


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


def run_compare(cfg, out, *, progress: bool = True) -> list[dict]:
    """Train (or reuse) the teacher and every strategy's students below ``out``; one row per strategy.
    All strategies' students train as ONE batched program (:func:`simulate.student.train_strategies`)."""
    return _run_compare(cfg, out, train_teacher=train_teacher, train_students=train_strategies, row=strategy_row,
                        progress=progress)
