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
:func:`snap_steps` / :meth:`Schedule.snap` map requested teacher steps to saved checkpoints.

:func:`build_schedule` is every engine's schedule of a student strategy (the one meaning of
``progressive``, ``two-shot`` and ``equal-split``); :func:`stage_plan` is its (N, T) rule, which the
compare configs check before any work. The first checkpoint of two-shot / equal-split comes from
:func:`infra.first_checkpoint.choose_first_checkpoint`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, NamedTuple, Sequence, Union

import numpy as np

from theory._checks import ParameterError, check_choice, check_int, check_real

__all__ = [
    "STRATEGIES", "SPLITS", "EXTRACT", "Schedule", "Source", "Stage", "build_schedule", "checkpoint_multiples",
    "cross_entropy", "equal_split", "extract_layer", "extraction", "kappa_equal_split", "one_shot", "progressive",
    "progressive_at", "snap_steps", "stage_plan", "two_shot",
]

#: Student strategies, the same names in every engine (Definition 2.2, Appendix D.2; Curriculum Extraction).
STRATEGIES = ("ce", "oneshot", "progressive", "two-shot", "equal-split", "extraction")
#: The two equal-split variants of Appendix D.2: kappa*T0 steps split over the checkpoints (variant 2),
#: or the student's own steps (variant 1).
SPLITS = ("teacher", "student")

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


def progressive_at(checkpoints: Sequence[int], t: int, total_steps: int, *, teacher_steps: int) -> Schedule:
    """(N, T)-progressive distillation over chosen intermediate checkpoints (Definition 2.2 with an
    explicit list; Appendix C.3, Figure 18's (3, 2M)-progressive from two chosen checkpoints):
    ``[(c_1, T), ..., (c_(N-1), T), ("final", total_steps - (N-1) T)]`` with ``N = len(checkpoints) + 1``;
    the checkpoints strictly increasing in ``(0, teacher_steps)``."""
    t = check_int("t", t, lo=1)
    cks = [check_int("checkpoints", c, lo=1, hi=check_int("teacher_steps", teacher_steps, lo=2) - 1)
           for c in checkpoints]
    if not cks or any(b <= a for a, b in zip(cks, cks[1:])):
        raise ParameterError(f"checkpoints must be one or more strictly increasing teacher steps, got {list(cks)}")
    total_steps = check_int("total_steps", total_steps, lo=(len(cks) + 1) * t)
    stages = [(c, t) for c in cks] + [("final", total_steps - len(cks) * t)]
    return Schedule(tuple(stages), f"progressive(checkpoints={cks},T={t})")


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


# ---------------------------------------------------------------- a student strategy's schedule

def stage_plan(strategy: str, *, steps: int, stage_steps: int = 0, n_checkpoints: int = 0, teacher_steps: int,
               spacing: int, checkpoints: Sequence[int] = (), prefix: str = "") -> tuple[int, int] | None:
    """``(N, T)`` of a ``progressive`` student, ``(2, T)`` of a ``two-shot`` one, None for the other
    strategies; raises :class:`ParameterError` when the stages do not fit into the student's ``steps``.

    progressive: ``N = len(checkpoints) + 1`` when explicit intermediate ``checkpoints`` are given
    (``n_checkpoints`` then 0 or that N; each checkpoint in ``(0, T0)``), else ``N = n_checkpoints``
    or ``T0 // spacing`` (every saved teacher checkpoint up to the final); ``T = stage_steps`` or
    ``spacing``; needs ``N * T <= steps``. two-shot: ``T = stage_steps`` or ``steps // 4``; needs
    ``2 T <= steps``. ``spacing``: the teacher's checkpoint spacing; ``prefix`` (``"student."``)
    names the fields inside a compare config.
    """
    def fail(need: str) -> ParameterError:
        if prefix:
            return ParameterError(f"{prefix}steps must be >= {need} for {strategy}; got {steps}")
        return ParameterError(f"{strategy} needs steps >= {need}; got steps = {steps}")

    if strategy == "progressive":
        if checkpoints:
            if n_checkpoints not in (0, len(checkpoints) + 1):
                raise ParameterError(f"{prefix}n_checkpoints must be 0 or len({prefix}checkpoints) + 1 = "
                                     f"{len(checkpoints) + 1} when {prefix}checkpoints are given; got {n_checkpoints}")
            if not all(0 < c < teacher_steps for c in checkpoints):
                raise ParameterError(f"{prefix}checkpoints must lie in (0, {teacher_steps}) (the teacher's steps, "
                                     f"exclusive); got {list(checkpoints)}")
        n = len(checkpoints) + 1 if checkpoints else n_checkpoints or max(1, teacher_steps // spacing)
        t = stage_steps or spacing
        if n * t > steps:
            raise fail(f"n_checkpoints * stage_steps = {n} * {t}")
        return n, t
    if strategy == "two-shot":
        t = stage_steps or steps // 4
        if t < 1 or 2 * t > steps:
            raise fail(f"2 * stage_steps = {2 * max(t, 1)}")
        return 2, t
    return None


def build_schedule(
    strategy: str,
    *,
    steps: int,
    teacher_steps: int,
    spacing: int,
    available: Sequence[int],
    first: Callable[[], tuple[int, dict]] | None = None,
    stage_steps: int = 0,
    n_checkpoints: int = 0,
    kappa: float = 0.5,
    split: str = "teacher",
    extract_layers: Sequence[int] = (1,),
    extract_steps: int = 1,
    checkpoints: Sequence[int] = (),
) -> tuple[Schedule, dict]:
    """The schedule of a student of ``steps`` steps under ``strategy`` and a note on its checkpoints
    (written to ``summary.json`` as ``checkpoint_choice``); the same meaning in every engine.

    The teacher: ``teacher_steps`` (T0) steps, checkpoints saved every ``spacing`` steps, the saved
    steps ``available`` (every int source is snapped to them). ``first()`` gives the first
    checkpoint ``C_1`` and its note (:func:`infra.first_checkpoint.choose_first_checkpoint`); it is
    called only by the strategies that use one.

    * ``ce``: the labels throughout (loss (1)); ``oneshot``: the final teacher throughout (Section 2).
    * ``progressive``: (N, T)-progressive distillation (Definition 2.2) over the teacher's saved
      checkpoints: ``N = n_checkpoints`` or ``T0 / spacing``; the intermediates are the multiples of
      ``spacing`` (of ``T0 // N`` when ``n_checkpoints`` is given); ``T = stage_steps`` or ``spacing``
      (:func:`stage_plan`); the final teacher supervises the rest. Explicit ``checkpoints`` (teacher
      steps, each snapped to the nearest saved one) replace the equally spaced ones
      (:func:`progressive_at`).
    * ``two-shot``: (2, T)-progressive with ``C_1`` (Section 3.1, R2): ``C_1`` for ``T = stage_steps``
      (0: ``steps // 4``) steps, then the final teacher.
    * ``equal-split``: N-shot equal-split distillation (Appendix D.2) over ``C_1, 2 C_1, ..., n C_1``
      (``n = n_checkpoints`` or ``T0 // C_1``, at most ``T0 // C_1``; ``n C_1 = T0`` is the final
      teacher): ``split="teacher"`` splits ``kappa * T0`` student steps equally, then the final
      teacher (variant 2, :func:`kappa_equal_split`); ``split="student"`` splits the student's
      ``steps`` (variant 1, :func:`equal_split`).
    * ``extraction``: Curriculum Extraction, ``extract_steps`` per layer of ``extract_layers``, then
      the final teacher (:func:`extraction`).
    """
    check_choice("strategy", strategy, STRATEGIES)
    steps = check_int("steps", steps, 1)
    T0 = check_int("teacher_steps", teacher_steps, 1)
    spacing = check_int("checkpoint spacing", spacing, 1)
    if strategy == "ce":
        return cross_entropy(steps), {}
    if strategy == "oneshot":
        return one_shot(steps), {}
    if strategy == "extraction":
        layers = [int(layer) for layer in extract_layers]
        return extraction(layers, extract_steps, steps), {"extract_layers": layers, "extract_steps": extract_steps}
    plan = stage_plan(strategy, steps=steps, stage_steps=stage_steps, n_checkpoints=n_checkpoints,
                      teacher_steps=T0, spacing=spacing, checkpoints=checkpoints)
    if strategy == "progressive" and checkpoints:
        n, t = plan
        snapped = snap_steps(list(checkpoints), available)
        if len(set(snapped)) < len(snapped) or T0 in snapped:
            raise ParameterError(f"checkpoints {list(checkpoints)} snap to the saved teacher checkpoints {snapped}: "
                                 "each must snap to its own intermediate checkpoint")
        return progressive_at(snapped, t, steps, teacher_steps=T0), {
            "n_checkpoints": n, "stage_steps": t, "checkpoints": snapped}
    if strategy == "progressive":
        n, t = plan
        sched = progressive(n, t, steps, teacher_steps=T0, spacing=T0 // n if n_checkpoints else spacing)
        return sched.snap(available), {"n_checkpoints": n, "stage_steps": t}
    if first is None:
        raise ParameterError(f"strategy {strategy!r} needs its first teacher checkpoint C_1")
    c1, note = first()
    if strategy == "two-shot":
        return two_shot(c1, plan[1], steps), dict(note, stage_steps=plan[1])
    check_choice("split", split, SPLITS)
    most = T0 // check_int("first checkpoint", c1, 1, T0)
    cks = checkpoint_multiples(c1, min(n_checkpoints or most, most), teacher_steps=T0)
    if split == "teacher":
        sched = kappa_equal_split(cks, steps, teacher_steps=T0, kappa=kappa)
    else:
        sched = equal_split(cks, steps)
    return sched.snap(available), dict(note, n_checkpoints=len(cks), kappa=kappa, split=split)
