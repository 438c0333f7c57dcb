"""simulate.student.SharedTeacher: a multi-run student program's teacher logits computed once per distinct
(sample stream, teacher checkpoint), bit-identical to the stacked teacher of all runs."""
from __future__ import annotations

import torch

from simulate.model import MLPParams, init_default
from simulate.student import SharedTeacher
from simulate.train_setup import TrainSetup


def test_shared_teacher_equals_the_stacked_teacher_and_computes_each_pair_once(monkeypatch):
    g = torch.Generator().manual_seed(0)
    ckpts = {name: init_default(1, 300, 12, 2, generator=g) for name in ("2000", "4000", "final")}
    seeds = (0, 1, 2) * 4  # 4 strategies x 3 seeds, as train_strategies lays them out
    sources = ["labels"] * 3 + ["final"] * 3 + ["2000"] * 3 + ["final"] * 3
    x = torch.randint(0, 2, (3, 700, 12), generator=g).float() * 2 - 1
    x = x[[s for s in seeds]]  # runs with equal seeds draw equal samples
    stacked = MLPParams(*(torch.cat([getattr(ckpts["final" if s == "labels" else s], k) for s in sources])
                          for k in ("W", "b", "a")))
    want = TrainSetup(teacher=stacked).teacher_out(x)
    shared = SharedTeacher([None if s == "labels" else ckpts[s] for s in sources], sources, seeds)
    assert shared.teacher.runs == 6  # (seed, final) x 3 and (seed, 2000) x 3: not 9 teacher runs
    got = TrainSetup(teacher=shared).teacher_out(x)
    assert torch.equal(got[3:], want[3:])  # bit-identical for every distilled run
    assert torch.equal(got[:3], torch.zeros_like(got[:3]))  # label runs: no teacher computed
