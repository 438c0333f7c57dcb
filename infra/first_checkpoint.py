"""The first teacher checkpoint of a student's schedule, chosen from the teacher's metrics log.

Two-shot distillation ((2, T)-progressive with one chosen intermediate checkpoint, Section 3.1, R2)
and N-shot equal-split distillation (Appendix D.2: "the rest are picked at multiples of this initial
checkpoint") need one checkpoint ``C_1`` strictly inside the teacher's training. Every engine picks
it with :func:`choose_first_checkpoint`, by one of these rules (the student config's ``first_rule``):

* a given step (``first_checkpoint=STEP``): the nearest saved intermediate checkpoint;
* ``accuracy``: the middle of the phase transition / the rapid loss drop (Section 3.1; Section 4.1.2's
  phase 2), i.e. the logged step of steepest rise of the smoothed held-out accuracy;
* ``correlation_gap``: the peak of the degree-1 correlation gap ``corr1_in_mean - corr1_off_max``
  (Figure 2, middle; the MLP's probes);
* ``auto``: ``correlation_gap`` when the teacher logged those columns, else ``accuracy``;
* ``m_robust``: the peak of ``M_robust`` at the smallest logged ``n`` over checkpoint steps (eq. 5,
  Figure 4 middle; the Transformer's measures).

:func:`choose_intermediate` is the accuracy / correlation-gap core on a log.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from infra.logs import gap_series, log_frame
from infra.schedule import snap_steps
from theory._checks import ParameterError, check_choice, check_int, check_real

__all__ = ["FIRST_RULES", "IntermediateChoice", "check_first_fields", "choose_first_checkpoint",
           "choose_intermediate"]

#: Every rule of the automatic choice; an engine's config admits a subset (MLP: auto, accuracy,
#: correlation_gap; Transformers: accuracy, m_robust).
FIRST_RULES = ("auto", "accuracy", "correlation_gap", "m_robust")


def check_first_fields(cfg, rules: Sequence[str]) -> None:
    """The first-checkpoint fields of a student config (``first_checkpoint``, ``first_rule`` in
    ``rules``, ``first_skip`` in [0, 1), ``first_smooth`` >= 1); a bad one raises naming it."""
    check_choice("first_rule", cfg.first_rule, tuple(rules))
    check_real("first_skip", cfg.first_skip, 0, 1, hi_open=True)
    check_int("first_smooth", cfg.first_smooth, 1)
    if cfg.first_checkpoint != "auto":
        try:
            check_int("first_checkpoint", int(cfg.first_checkpoint), 1)
        except (TypeError, ValueError):
            raise ParameterError(
                f"first_checkpoint must be 'auto' or a teacher step >= 1, got {cfg.first_checkpoint!r}") from None


@dataclass(frozen=True)
class IntermediateChoice:
    """The chosen intermediate checkpoint ``step``, the ``rule`` used and its criterion ``value``
    (accuracy: slope of the smoothed test accuracy per step; correlation_gap: the peak gap)."""

    step: int
    rule: str
    value: float


def choose_intermediate(
    log: pd.DataFrame | Sequence[Mapping[str, Any]],
    rule: str = "auto",
    *,
    smooth: int = 5,
    available: Sequence[int] | None = None,
    run: int | None = None,
) -> IntermediateChoice:
    """The intermediate teacher checkpoint for (2, T)-progressive distillation (Section 3.1, R2).

    ``"accuracy"``: the middle of the phase transition, i.e. the logged step of steepest rise of
    ``test_accuracy`` after a centered moving average over ``smooth`` log points (derivative by
    ``np.gradient`` on the step axis). ``"correlation_gap"``: the step where ``corr1_in_mean -
    corr1_off_max`` (Figure 2, middle) peaks. ``"auto"``: correlation_gap when those columns exist,
    else accuracy. ``available``: restrict the choice to these checkpoint steps.
    """
    rule = check_choice("rule", rule, ("auto", "accuracy", "correlation_gap"))
    smooth = check_int("smooth", smooth, lo=1)
    df = log_frame(log, run=run)
    gap = gap_series(df)
    if rule == "auto":
        rule = "accuracy" if gap is None else "correlation_gap"
    steps = df["step"].to_numpy(dtype=np.int64)
    if rule == "correlation_gap":
        if gap is None:
            raise ParameterError("rule 'correlation_gap' needs columns corr1_in_mean and corr1_off_max (or corr1_gap)")
        score = gap.to_numpy(dtype=float)
    else:
        if "test_accuracy" not in df.columns:
            raise ParameterError(f"rule 'accuracy' needs a 'test_accuracy' column; columns are {list(df.columns)}")
        if len(df) < 2:
            raise ParameterError("rule 'accuracy' needs at least 2 logged steps")
        acc = df["test_accuracy"].astype(float).rolling(smooth, center=True, min_periods=1).mean()
        score = np.gradient(acc.to_numpy(), steps.astype(float))
    ok = ~np.isnan(score)
    if available is not None:
        ok &= np.isin(steps, np.asarray(list(available), dtype=np.int64))
    if not ok.any():
        raise ParameterError("no logged step is both available and has a finite criterion")
    i = int(np.flatnonzero(ok)[np.argmax(score[ok])])
    return IntermediateChoice(int(steps[i]), rule, float(score[i]))


def _m_robust_peak(df: pd.DataFrame, inner: list[int]) -> tuple[int, dict]:
    """The checkpoint step of the largest ``M_robust`` at the smallest logged n (Figure 4, middle)."""
    cols = sorted((c for c in df.columns if c.startswith("m_robust_")), key=lambda c: int(c.rsplit("_", 1)[1]))
    if not cols:
        raise ParameterError("first_rule 'm_robust' needs a teacher log with M_robust (measure_every > 0)")
    sub = df[df["step"].isin(inner)].dropna(subset=[cols[0]])
    if sub.empty:
        raise ParameterError(f"no teacher checkpoint step has a logged {cols[0]}; checkpoints: {inner}")
    i = sub[cols[0]].astype(float).idxmax()
    step = int(sub.loc[i, "step"])
    return step, {"rule": "m_robust", "step": step, "criterion": float(sub.loc[i, cols[0]]), "column": cols[0]}


def choose_first_checkpoint(
    log: pd.DataFrame | Sequence[Mapping[str, Any]] | None,
    *,
    first_checkpoint: str | int = "auto",
    rule: str = "accuracy",
    skip: float = 0.0,
    smooth: int = 5,
    teacher_steps: int,
    available: Sequence[int],
    run: int | None = None,
) -> tuple[int, dict]:
    """The first checkpoint ``C_1`` of a two-shot / equal-split schedule and a note for ``summary.json``.

    ``available``: the teacher's saved checkpoint steps; only the intermediate ones (``0 < step <
    teacher_steps``) are candidates. ``first_checkpoint``: a teacher step, snapped to the nearest of
    them (note ``{"rule": "given", "step"}``), or ``"auto"``: chosen from the teacher's metrics
    ``log`` (run ``run``) by ``rule`` (see the module doc; note ``{"rule", "step", "criterion"}``,
    plus ``"column"`` for ``m_robust``), leaving out the first ``skip * teacher_steps`` teacher steps
    (phase 1 of Section 4.1.2; the last candidate when none is left) and smoothing the accuracy over
    ``smooth`` log points.
    """
    teacher_steps = check_int("teacher_steps", teacher_steps, 1)
    inner = sorted({int(s) for s in available if 0 < s < teacher_steps})
    if not inner:
        raise ParameterError(f"the first checkpoint must be an intermediate teacher checkpoint (0 < step < "
                             f"{teacher_steps}); the teacher has only {sorted(available)}")
    if first_checkpoint != "auto":
        step = snap_steps([int(first_checkpoint)], inner)[0]
        return step, {"rule": "given", "step": step}
    rule = check_choice("first_rule", rule, FIRST_RULES)
    check_real("first_skip", skip, 0, 1, hi_open=True)
    smooth = check_int("first_smooth", smooth, 1)
    if log is None:
        raise ParameterError(f"first_rule {rule!r} needs the teacher's metrics log")
    df = log_frame(log, run=run)
    cut = skip * teacher_steps
    df = df[df["step"] >= cut].reset_index(drop=True)
    inner = [s for s in inner if s >= cut] or inner[-1:]
    if rule == "m_robust":
        return _m_robust_peak(df, inner)
    if skip > 0 and len(df) < 2:
        raise ParameterError(f"first_skip = {skip} leaves fewer than 2 logged teacher steps")
    choice = choose_intermediate(df, rule, smooth=smooth, available=inner)
    return choice.step, {"rule": choice.rule, "step": choice.step, "criterion": choice.value}
