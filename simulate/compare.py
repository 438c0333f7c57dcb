"""One MLP teacher, then a student per strategy, summarized per strategy over the student seeds
(the layout of :func:`infra.compare.run_compare`; all strategies' students train as one program)."""
from __future__ import annotations

from infra.compare import run_compare as _run_compare
from infra.compare import strategy_row as _strategy_row

from .student import train_strategies
from .teacher import train_teacher

__all__ = ["run_compare", "strategy_row", "SPEED_KEYS"]

#: The MLP's speed columns: samples to 95% / 99% test accuracy.
SPEED_KEYS = ("samples_to_95", "samples_to_99")


def strategy_row(strategy: str, run_dir) -> dict:
    """Median and spread over seeds of samples to 95% / 99% test accuracy, from ``summary.json``
    (:func:`infra.compare.strategy_row`)."""
    return _strategy_row(strategy, run_dir, speed_keys=SPEED_KEYS)


def run_compare(cfg, out, *, progress: bool = True, overwrite: bool = False,
                allow_thread_change: bool = False) -> list[dict]:
    """Train (or reuse) the teacher and every strategy's students below ``out``; one row per strategy.
    All strategies' students train as ONE batched program (:func:`simulate.student.train_strategies`).
    Directories of another config are refused unless ``overwrite`` (:func:`infra.compare.run_compare`)."""
    return _run_compare(cfg, out, train_teacher=train_teacher, train_students=train_strategies, row=strategy_row,
                        progress=progress, overwrite=overwrite, allow_thread_change=allow_thread_change)
