"""Summaries of a run's metrics log (one row per evaluation): steps and samples to accuracy
thresholds and to a test-loss target, final accuracy and loss, and the peak of the degree-1
correlation gap (Figure 2, R1).

The log is what every engine appends to ``metrics.jsonl`` (:mod:`infra.rundir`): columns ``step``,
``samples``, ``test_accuracy`` (a fraction in [0, 1]), ``test_loss`` and, where probed,
``corr1_in_mean`` / ``corr1_off_max``.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from theory._checks import ParameterError, check_int, check_real

__all__ = ["log_frame", "gap_series", "summary_from_log", "LOSS_EPS"]

#: The default test-loss target of :func:`summary_from_log` (see its docstring for the choice).
LOSS_EPS = 0.1


def log_frame(log: pd.DataFrame | Sequence[Mapping[str, Any]], *, run: int | None = None) -> pd.DataFrame:
    """A metrics log as a DataFrame sorted by ``step`` (one row per step, the last one kept).

    ``log``: a DataFrame or a list of dicts with a ``step`` column. When it has a ``run`` column
    with several runs, ``run`` selects one (required).
    """
    df = log.copy() if isinstance(log, pd.DataFrame) else pd.DataFrame(list(log))
    if "step" not in df.columns:
        raise ParameterError(f"log must have a 'step' column; columns are {list(df.columns)}")
    if "run" in df.columns:
        runs = sorted(df["run"].dropna().unique().tolist())
        if run is not None:
            if run not in runs:
                raise ParameterError(f"run must be one of {runs}, got {run!r}")
            df = df[df["run"] == run]
        elif len(runs) > 1:
            raise ParameterError(f"log holds runs {runs}; pass run= to select one")
    elif run is not None:
        raise ParameterError("run was given but the log has no 'run' column")
    if df.empty:
        raise ParameterError("log is empty")
    df = df.sort_values("step", kind="stable").drop_duplicates("step", keep="last")
    return df.reset_index(drop=True)


def _accuracy(df: pd.DataFrame) -> pd.Series:
    if "test_accuracy" not in df.columns:
        raise ParameterError(f"log must have a 'test_accuracy' column; columns are {list(df.columns)}")
    acc = df["test_accuracy"].astype(float)
    if acc.max() > 1.0:
        raise ParameterError(f"test_accuracy must be a fraction in [0, 1], got max {acc.max():g}")
    return acc


def gap_series(df: pd.DataFrame) -> pd.Series | None:
    """``corr1_in_mean - corr1_off_max`` per row (or the ``corr1_gap`` column); None without them."""
    if {"corr1_in_mean", "corr1_off_max"} <= set(df.columns):
        gap = df["corr1_in_mean"].astype(float) - df["corr1_off_max"].astype(float)
    elif "corr1_gap" in df.columns:
        gap = df["corr1_gap"].astype(float)
    else:
        return None
    return None if gap.isna().all() else gap


def _pct(t: float) -> str:
    return f"{round(t * 100, 6):g}"


def summary_from_log(
    log: pd.DataFrame | Sequence[Mapping[str, Any]],
    *,
    batch_size: int | None = None,
    thresholds: Sequence[float] = (0.6, 0.95, 0.99),
    run: int | None = None,
    loss_eps: float = LOSS_EPS,
) -> dict[str, Any]:
    """Speed summary of one run's metrics log (fractions of test accuracy in ``[0, 1]``).

    For every threshold ``t`` (default 60/95/99%): ``steps_to_<100t>``, the first logged step with
    ``test_accuracy >= t``, and ``samples_to_<100t> = steps x batch_size`` (from the log's
    ``samples`` column when ``batch_size`` is None; None when neither exists), both None when never
    reached. Also ``final_step``, ``final_accuracy``, and ``corr1_gap_peak`` / ``corr1_gap_peak_step``
    (max of ``corr1_in_mean - corr1_off_max``; None without correlation columns).

    The theorems speak of loss, not accuracy, so the same is measured for the test loss:
    ``steps_to_loss_eps`` / ``samples_to_loss_eps``, the first logged step with
    ``test_loss <= loss_eps`` (samples as for accuracy; None when never reached or without a
    ``test_loss`` column), and ``final_loss``, the last logged ``test_loss`` (None without the column;
    NaN when the run diverged). These keys come after the accuracy keys; the others are unchanged.

    ``loss_eps`` (default :data:`LOSS_EPS` = 0.1): the test loss of an online MLP run is the
    cross-entropy of its logits on the held-out set (:class:`simulate.runner.Evaluator`; ln 2 = 0.69 at
    chance). 0.1 lies inside the sharp accuracy transition and above every floor: measured on the CPU
    sweep ``experiments/sweeps/scaling_online.yaml`` ((d, 4)-parity, d = 12..48, width-512 teachers,
    width-48 students), all 300 students of ce, oneshot, two-shot and equal-split reached it within
    their steps, the teachers ended at 0.0006..0.028 and the students at 0.0002..0.03 (a distilled
    student fits its teacher's soft labels, so its loss ends near the teacher's); at the first
    evaluation with >= 95% accuracy the students' test loss had a median of 0.07 (0.01..0.21), so
    samples to 0.1 and to 95% mostly agree within one evaluation there. A target of 0.01 would lie
    below the final loss of some teachers (0.011 at d = 12, 0.028 at d = 24), and so out of reach
    of their one-shot and progressive students.
    """
    eps = float(check_real("loss_eps", loss_eps, 0, lo_open=True))
    df = log_frame(log, run=run)
    acc = _accuracy(df)
    steps = df["step"].astype(int)
    if batch_size is not None:
        samples: pd.Series | None = steps * check_int("batch_size", batch_size, lo=1)
    else:
        samples = df["samples"].astype(int) if "samples" in df.columns else None
    out: dict[str, Any] = {}
    for t in thresholds:
        hit = (acc >= t).to_numpy().nonzero()[0]
        i = int(hit[0]) if len(hit) else None
        out[f"steps_to_{_pct(t)}"] = None if i is None else int(steps.iloc[i])
        out[f"samples_to_{_pct(t)}"] = None if i is None or samples is None else int(samples.iloc[i])
    out["final_step"] = int(steps.iloc[-1])
    out["final_accuracy"] = float(acc.iloc[-1])
    gap = gap_series(df)
    if gap is None:
        out["corr1_gap_peak"] = out["corr1_gap_peak_step"] = None
    else:
        i = int(gap.idxmax())  # first maximum, NaN skipped; the index is 0..n-1 (log_frame)
        out["corr1_gap_peak"] = float(gap.iloc[i])
        out["corr1_gap_peak_step"] = int(steps.iloc[i])
    loss = df["test_loss"].astype(float) if "test_loss" in df.columns else None
    hit = [] if loss is None else (loss <= eps).to_numpy().nonzero()[0]  # NaN (diverged) never counts
    i = int(hit[0]) if len(hit) else None
    out["steps_to_loss_eps"] = None if i is None else int(steps.iloc[i])
    out["samples_to_loss_eps"] = None if i is None or samples is None else int(samples.iloc[i])
    out["final_loss"] = None if loss is None else float(loss.iloc[-1])
    return out
