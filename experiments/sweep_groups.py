"""How a sweep's runs become batched programs (:func:`group_runs`): the runs of one program differ only
in their seeds and per-run settings (see :func:`group_runs`); :mod:`experiments.sweep_exec` trains a
:class:`Group` and splits it into the runs' directories."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from infra.config import config_hash, config_to_dict

from .registry import KINDS

__all__ = ["RunSpec", "Group", "group_runs"]


#: Algorithm 1's kinds whose runs of several rates (and supervisions) train as one program
_TWO_STAGE = ("parity-two-stage-teacher", "parity-two-stage-student")  # simulate.two_stage_shared


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: a config with one seed, its hash and the sweep values that made it."""

    kind: str
    config: Any  # TeacherConfig | StudentConfig | CompareConfig with single seeds
    hash: str
    point: tuple[tuple[str, Any], ...]  # the grid/zip values and the seed(s) of this run


@dataclass(frozen=True)
class Group:
    """Runs that differ only in their seeds (and per-run settings), trained as one batched program
    ``config``; MLP students of several strategies train as one program of every strategy's runs
    (:func:`simulate.student.train_strategies`: ``runs`` strategy by strategy, the same per-run
    settings in each)."""

    kind: str
    config: Any  # the batched config (all seeds of the group's runs; students: the first strategy's)
    runs: tuple[RunSpec, ...]

    @property
    def strategies(self) -> tuple[str, ...]:
        """The students' strategies, in run order (empty for other kinds)."""
        if self.kind != "student":
            return ()
        return tuple(dict.fromkeys(s.config.strategy for s in self.runs))

    @property
    def id(self) -> str:
        """Hash of the batched config (and of the strategies of a multi-strategy group, or of the runs of
        a group of Algorithm 1's runs): the name of its work directory."""
        h = config_hash(self.config)
        if len(self.strategies) > 1:
            h = hashlib.sha256(json.dumps([h, *self.strategies]).encode()).hexdigest()[:len(h)]
        elif self.kind in _TWO_STAGE and len(self.runs) > 1:  # not the id of its first run's own group
            h = hashlib.sha256(json.dumps([h, *(r.hash for r in self.runs)]).encode()).hexdigest()[:len(h)]
        return h




def _seedless(spec: RunSpec) -> str:
    d = config_to_dict(spec.config)
    if not KINDS[spec.kind].split_seeds:
        if spec.kind in _TWO_STAGE:  # rates, B1 (and supervisions): one program
            from simulate.two_stage_config import SHARED_FIELDS

            d.update(dict.fromkeys(SHARED_FIELDS))
        return json.dumps(d, sort_keys=True)
    if spec.kind == "compare":
        d["teacher"]["seeds"] = d["student"]["seeds"] = None
    else:
        d["seeds"] = d["lr"] = None  # runs differing in seed and learning rate share one program
        if spec.kind == "student":
            d["temperature"] = d["strategy"] = None  # ... and, for students, in temperature and strategy
    return json.dumps(d, sort_keys=True)


def _batched(specs) -> Any:
    """The one program of teacher/student runs that differ only in seed, lr (and temperature):
    ``seeds`` in run order (a seed may repeat), ``run_lrs`` / ``run_temperatures`` when they vary."""
    cfgs = [s.config for s in specs]
    changes: dict[str, Any] = {"seeds": tuple(c.seeds[0] for c in cfgs)}
    if len({c.lr for c in cfgs}) > 1:
        changes["run_lrs"] = tuple(c.lr for c in cfgs)
    if specs[0].kind == "student" and len({c.temperature for c in cfgs}) > 1:
        changes["run_temperatures"] = tuple(c.temperature for c in cfgs)
    return dataclasses.replace(cfgs[0], **changes)


def group_runs(runs) -> list[Group]:
    """Runs that differ only in their seeds (teacher and student kinds: also in ``lr``, students also
    in ``temperature`` and ``strategy``; Algorithm 1's teachers and students in ``B1`` and the rates,
    its students also in ``supervision``), as batched groups in order of first appearance; run ``i`` of
    a group's program is ``group.runs[i]`` (compare groups: by teacher seed and student seed)."""
    buckets: dict[str, list[RunSpec]] = {}
    for spec in runs:
        buckets.setdefault(_seedless(spec), []).append(spec)
    groups = []
    for specs in buckets.values():
        if not KINDS[specs[0].kind].split_seeds:  # one batched program per run already
            if specs[0].kind in _TWO_STAGE and len(specs) > 1:  # ... or one program of several runs
                groups.append(Group(specs[0].kind, specs[0].config, tuple(specs)))
            else:
                groups.extend(Group(s.kind, s.config, (s,)) for s in specs)
            continue
        first = specs[0].config
        if specs[0].kind == "compare":
            tseeds = tuple(dict.fromkeys(s.config.teacher.seeds[0] for s in specs))
            sseeds = tuple(dict.fromkeys(s.config.student.seeds[0] for s in specs))
            batched = dataclasses.replace(first, teacher=dataclasses.replace(first.teacher, seeds=tseeds),
                                          student=dataclasses.replace(first.student, seeds=sseeds))
        elif specs[0].kind == "student":
            groups.extend(_student_groups(specs))
            continue
        else:
            batched = _batched(specs)
        groups.append(Group(specs[0].kind, batched, tuple(specs)))
    return groups


def _student_groups(specs) -> list[Group]:
    """Student runs that differ in seed, lr, temperature and strategy: one program of every strategy
    when each strategy has the same runs (seed, lr, temperature) in the same order, as
    :func:`simulate.student.train_strategies` lays them out; else one program per strategy."""
    by: dict[str, list[RunSpec]] = {}
    for spec in specs:
        by.setdefault(spec.config.strategy, []).append(spec)

    def settings(group):
        return [(s.config.seeds[0], s.config.lr, s.config.temperature) for s in group]

    lists = list(by.values())
    if len(lists) > 1 and all(settings(g) == settings(lists[0]) for g in lists):
        ordered = tuple(s for g in lists for s in g)  # run j * n + r: strategy j, run r
        return [Group("student", _batched(lists[0]), ordered)]
    return [Group("student", _batched(g), tuple(g)) for g in lists]
