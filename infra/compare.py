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
from .rundir import atomic_write_text

__all__ = ["run_compare", "median_reached"]


def median_reached(values):
    """Median of samples-to-accuracy values with ``None``/NaN (never reached) counted as +infinity;
    ``None`` if the median itself was never reached."""
    arr = np.array([math.inf if v is None or v != v else v for v in values], dtype=float)
    med = float(np.median(arr))
    return None if math.isinf(med) else med


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
