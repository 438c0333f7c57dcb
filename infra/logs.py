"""Summaries of a run's metrics log (one row per evaluation): steps and samples to accuracy
thresholds, final accuracy, and the peak of the degree-1 correlation gap (Figure 2, R1).

The log is what every engine appends to ``metrics.jsonl`` (:mod:`infra.rundir`): columns ``step``,
``samples``, ``test_accuracy`` (a fraction in [0, 1]) and, where probed, ``corr1_in_mean`` /
``corr1_off_max``.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from theory._checks import ParameterError, check_int

__all__ = ["log_frame", "gap_series", "summary_from_log"]


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
) -> dict[str, Any]:
    """Speed summary of one run's metrics log (fractions of test accuracy in ``[0, 1]``).

    For every threshold ``t`` (default 60/95/99%): ``steps_to_<100t>``, the first logged step with
    ``test_accuracy >= t``, and ``samples_to_<100t> = steps x batch_size`` (from the log's
    ``samples`` column when ``batch_size`` is None; None when neither exists), both None when never
    reached. Also ``final_step``, ``final_accuracy``, and ``corr1_gap_peak`` / ``corr1_gap_peak_step``
    (max of ``corr1_in_mean - corr1_off_max``; None without correlation columns).
    """
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
    return out
