"""Supervision schedules of a student, as data (Section 2, Definitions 2.1/2.2, Appendix D.2).

A schedule is a list of stages ``(source, steps)``: the student takes ``steps`` SGD steps supervised
by ``source``, which is a teacher checkpoint step (``int``), ``"final"`` (the teacher's last
checkpoint) or ``"labels"`` (cross-entropy on the ground-truth labels, loss (1)). Stages are kept
canonical: no empty stage, and adjacent stages with the same source merged (so "the final
checkpoint for T steps, then the final checkpoint for the rest" is a single stage).

Constructors: :func:`cross_entropy`, :func:`one_shot`, :func:`progressive` (Definition 2.2),
:func:`two_shot`, :func:`equal_split` and :func:`kappa_equal_split` (the two variants of Appendix
D.2), :func:`checkpoint_multiples` (D.2's selection: the first checkpoint and its multiples),
:func:`extraction` (Curriculum Extraction: ``"extract:<layer>"`` stages, then the final teacher).
:func:`snap_steps` / :meth:`Schedule.snap` map requested teacher steps to saved checkpoints, and
:func:`choose_intermediate` picks the intermediate checkpoint from a teacher's metrics log.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Mapping, NamedTuple, Sequence, Union

import numpy as np
import pandas as pd

from infra.logs import gap_series, log_frame
from theory._checks import ParameterError, check_choice, check_int, check_real

__all__ = [
    "STRATEGIES", "EXTRACT", "IntermediateChoice", "Schedule", "Source", "Stage", "checkpoint_multiples", "choose_intermediate",
    "cross_entropy", "equal_split", "extract_layer", "extraction", "kappa_equal_split", "one_shot", "progressive",
    "snap_steps", "two_shot",
]

#: Student strategies, the same names in every engine (Definition 2.2, Appendix D.2; Curriculum Extraction).
STRATEGIES = ("ce", "oneshot", "progressive", "two-shot", "equal-split", "extraction")

Source = Union[int, str]  # teacher checkpoint step, "final", "labels" or "extract:<layer>"
_NAMED = ("final", "labels")
EXTRACT = "extract:"  # "extract:l": align the student's layer l to a projection of the final teacher's layer l


def extract_layer(source: Source) -> int | None:
    """The layer of an ``"extract:<layer>"`` source (Curriculum Extraction), else None."""
    if isinstance(source, str) and source.startswith(EXTRACT):
        return int(source[len(EXTRACT):])
    return None


class Stage(NamedTuple):
    source: Source
    steps: int


def _check_source(source: Any) -> Source:
    if isinstance(source, str):
        if source.startswith(EXTRACT):
            layer = source[len(EXTRACT):]
            if not layer.isdigit() or int(layer) < 1:
                raise ParameterError(f"source {source!r}: the layer of 'extract:<layer>' must be an integer >= 1")
            return source
        return check_choice("source", source, _NAMED)
    return check_int("teacher checkpoint step", source, lo=0)


def _canonical(stages: Sequence[tuple[Source, int]]) -> tuple[Stage, ...]:
    out: list[Stage] = []
    for source, steps in stages:
        source, steps = _check_source(source), check_int("stage steps", steps, lo=0)
        if steps == 0:
            continue
        if out and out[-1].source == source:
            out[-1] = Stage(source, out[-1].steps + steps)
        else:
            out.append(Stage(source, steps))
    return tuple(out)


@dataclass(frozen=True)
class Schedule:
    """Stages ``(source, steps)`` run in order; ``name`` describes the constructor and its arguments."""

    stages: tuple[Stage, ...]
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", _canonical(self.stages))

    def __iter__(self):
        return iter(self.stages)

    def __len__(self) -> int:
        return len(self.stages)

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    def to_list(self) -> list[tuple[Source, int]]:
        """The stages as plain ``(source, steps)`` tuples."""
        return [tuple(s) for s in self.stages]

    def checkpoint_steps(self) -> list[int]:
        """The intermediate teacher checkpoint steps used, ascending (``"final"`` excluded)."""
        return sorted({s.source for s in self.stages if isinstance(s.source, int)})

    def bounds(self) -> list[tuple[int, int, Source]]:
        """``(start, stop, source)`` student-step intervals ``[start, stop)`` of the stages."""
        out, t = [], 0
        for s in self.stages:
            out.append((t, t + s.steps, s.source))
            t += s.steps
        return out

    def source_at(self, step: int) -> Source:
        """The supervision source of (0-based) student step ``step`` in ``[0, total_steps)``."""
        step = check_int("step", step, lo=0, hi=self.total_steps - 1)
        for start, stop, source in self.bounds():
            if start <= step < stop:
                return source
        raise AssertionError("unreachable")

    def snap(self, available: Sequence[int], *, tolerance: int | None = None) -> "Schedule":
        """The schedule with every int source snapped to an available checkpoint (:func:`snap_steps`)."""
        ints = [s.source for s in self.stages if isinstance(s.source, int)]
        mapping = dict(zip(ints, snap_steps(ints, available, tolerance=tolerance)))
        return Schedule(tuple((mapping.get(s.source, s.source), s.steps) for s in self.stages), self.name)

    def to_json(self) -> str:
        return json.dumps({"name": self.name, "stages": [list(s) for s in self.stages]})

    @classmethod
    def from_json(cls, text: str) -> "Schedule":
        data = json.loads(text)
        return cls(tuple((src, n) for src, n in data["stages"]), data.get("name", ""))


def cross_entropy(total_steps: int) -> Schedule:
    """Learning from the labels throughout (loss (1)): ``[("labels", total_steps)]``."""
    total_steps = check_int("total_steps", total_steps, lo=1)
    return Schedule((("labels", total_steps),), "cross_entropy")


def extraction(layers: Sequence[int], steps_per_layer: int, total: int) -> Schedule:
    """Curriculum Extraction (Gupta & Karmalkar, Definition 3.1): ``steps_per_layer`` steps aligning
    each layer in ``layers`` (in order) to a projection of the final teacher's, then the final
    teacher's outputs for the remaining ``total - len(layers) * steps_per_layer`` steps."""
    check_int("total", total, 1)
    check_int("steps_per_layer", steps_per_layer, 1)
    if not layers:
        raise ParameterError("layers must name at least one layer to extract")
    if len(layers) * steps_per_layer >= total:
        raise ParameterError(f"extraction needs steps > len(layers) * steps_per_layer = "
                             f"{len(layers)} * {steps_per_layer}; got steps = {total}")
    stages = [(f"{EXTRACT}{check_int('layer', l, 1)}", steps_per_layer) for l in layers]
    return Schedule(tuple(stages) + (("final", total - len(layers) * steps_per_layer),),
                    f"extraction(layers={list(layers)}, steps_per_layer={steps_per_layer})")


def one_shot(total_steps: int) -> Schedule:
    """One-shot distillation (Section 2): the final teacher checkpoint throughout."""
    total_steps = check_int("total_steps", total_steps, lo=1)
    return Schedule((("final", total_steps),), "one_shot")


def progressive(n: int, t: int, total_steps: int, *, teacher_steps: int, spacing: int | None = None) -> Schedule:
    """(N, T)-progressive distillation (Definition 2.2).

    ``N - 1`` equally spaced intermediate checkpoints ``i * spacing`` (``i = 1..N-1``; default
    ``spacing = teacher_steps / N``, floored per checkpoint, so that the checkpoints are the
    multiples of ``T0/N`` of Appendix C.1) for ``T`` steps each, then the final checkpoint for
    ``T`` steps and for the rest of the budget. Needs ``total_steps >= N * T`` and every
    intermediate strictly before ``teacher_steps``. ``N = 1`` is one-shot distillation.
    """
    n = check_int("n", n, lo=1)
    t = check_int("t", t, lo=1)
    teacher_steps = check_int("teacher_steps", teacher_steps, lo=1)
    total_steps = check_int("total_steps", total_steps, lo=n * t)
    if spacing is None:
        steps = [i * teacher_steps // n for i in range(1, n)]
    else:
        spacing = check_int("spacing", spacing, lo=1)
        steps = [i * spacing for i in range(1, n)]
    if steps and (steps[-1] >= teacher_steps or steps[0] == 0):
        raise ParameterError(
            f"spacing must put the {n - 1} intermediate checkpoints in (0, teacher_steps = {teacher_steps}); "
            f"they would be at {steps}")
    stages = [(s, t) for s in steps] + [("final", total_steps - (n - 1) * t)]
    return Schedule(tuple(stages), f"progressive(N={n},T={t})")


def two_shot(intermediate: int, t: int, total_steps: int) -> Schedule:
    """(2, T)-progressive distillation with a chosen intermediate checkpoint (Section 3.1, R2).

    ``[(intermediate, T), ("final", total_steps - T)]``; needs ``total_steps >= 2 T``.
    """
    intermediate = check_int("intermediate", intermediate, lo=0)
    t = check_int("t", t, lo=1)
    total_steps = check_int("total_steps", total_steps, lo=2 * t)
    return Schedule(((intermediate, t), ("final", total_steps - t)), f"two_shot(step={intermediate},T={t})")


def checkpoint_multiples(first: int, n: int, *, teacher_steps: int) -> list[Source]:
    """The ``N`` checkpoints ``first, 2 first, ..., N first`` of Appendix D.2 ("the rest are picked at
    multiples of this initial checkpoint"); the one equal to ``teacher_steps`` is ``"final"``."""
    first = check_int("first", first, lo=1)
    n = check_int("n", n, lo=1)
    teacher_steps = check_int("teacher_steps", teacher_steps, lo=1)
    if n * first > teacher_steps:
        raise ParameterError(
            f"n * first must be <= teacher_steps = {teacher_steps}, got {n} * {first} = {n * first}")
    return [("final" if i * first == teacher_steps else i * first) for i in range(1, n + 1)]


def _split(checkpoints: Sequence[Source], span: Fraction, total_steps: int) -> list[tuple[Source, int]]:
    """Checkpoint ``i`` over student steps ``[floor(i span/N), floor((i+1) span/N))``, cut at ``total_steps``."""
    if not checkpoints:
        raise ParameterError("checkpoints must name at least one teacher checkpoint")
    n = len(checkpoints)
    cuts = [min(int(span * i / n), total_steps) for i in range(n + 1)]
    if int(span / n) < 1:
        raise ParameterError(f"each checkpoint would get {float(span / n):g} < 1 student steps")
    return [(c, cuts[i + 1] - cuts[i]) for i, c in enumerate(checkpoints)]


def equal_split(checkpoints: Sequence[Source], total_steps: int) -> Schedule:
    """N-shot Equal-split distillation (Appendix D.2, variant 1): the student's ``total_steps``
    split into ``N`` equal intervals (floored boundaries), checkpoint ``i`` supervising interval ``i``."""
    total_steps = check_int("total_steps", total_steps, lo=1)
    stages = _split([_check_source(c) for c in checkpoints], Fraction(total_steps), total_steps)
    return Schedule(tuple(stages), f"equal_split(N={len(checkpoints)})")


def kappa_equal_split(
    checkpoints: Sequence[Source], total_steps: int, *, teacher_steps: int, kappa: float | Fraction = 0.5,
) -> Schedule:
    """N-shot kappa T0-Equal-split distillation (Appendix D.2, variant 2).

    Each of the ``N`` checkpoints supervises ``kappa * T0 / N`` student steps (``T0 =
    teacher_steps``, the teacher's training length; boundaries ``floor(i kappa T0 / N)``).
    Checkpoints that do not fit into the student's ``total_steps`` are ignored (one that starts
    inside the budget is cut at its end), and when ``total_steps > kappa T0`` the final checkpoint
    supervises the rest. ``kappa`` in ``(0, 1]``, default 1/2 (the paper's rule of thumb).
    """
    total_steps = check_int("total_steps", total_steps, lo=1)
    teacher_steps = check_int("teacher_steps", teacher_steps, lo=1)
    check_real("kappa", kappa, 0, 1, lo_open=True)
    k = kappa if isinstance(kappa, Fraction) else Fraction(kappa).limit_denominator(10**9)
    span = k * teacher_steps
    stages = _split([_check_source(c) for c in checkpoints], span, total_steps)
    used = sum(n for _, n in stages)
    stages.append(("final", total_steps - used))
    return Schedule(tuple(stages), f"kappa_equal_split(N={len(checkpoints)},kappa={k})")


def snap_steps(requested: Sequence[int], available: Sequence[int], *, tolerance: int | None = None) -> list[int]:
    """Each requested teacher step mapped to the nearest available checkpoint step (ties: the earlier).

    Raises :class:`ParameterError` when no checkpoint is available, when a request lies outside
    ``[min(available), max(available)]``, or when it is farther than ``tolerance`` steps from the
    nearest one (``tolerance=None``: any distance inside the range).
    """
    avail = np.array(sorted({check_int("available step", s, lo=0) for s in available}), dtype=np.int64)
    if avail.size == 0:
        raise ParameterError("no teacher checkpoint is available to snap to")
    if tolerance is not None:
        tolerance = check_int("tolerance", tolerance, lo=0)
    out = []
    for r in requested:
        r = check_int("requested step", r, lo=0)
        if not avail[0] <= r <= avail[-1]:
            raise ParameterError(
                f"requested teacher step {r} is outside the available checkpoints [{avail[0]}, {avail[-1]}]")
        i = int(np.searchsorted(avail, r))
        cands = avail[max(i - 1, 0): i + 1]
        best = int(cands[np.argmin(np.abs(cands - r))])
        if tolerance is not None and abs(best - r) > tolerance:
            raise ParameterError(
                f"requested teacher step {r} has no checkpoint within tolerance {tolerance}; nearest is {best}")
        out.append(best)
    return out


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
