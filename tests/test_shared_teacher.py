"""simulate.student.SharedTeacher: a multi-run student program's teacher logits computed once per distinct
(sample stream, teacher checkpoint), bit-identical to the stacked teacher of all runs; and the MLP
evaluator's chunks, bounded for wide models, giving the unchunked values."""
from __future__ import annotations

import pytest
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


def test_evaluation_chunks_bound_the_activations_and_give_the_unchunked_values():
    from simulate import losses as L
    from simulate.config import EVAL_CHUNK_FLOATS, eval_chunk_rows
    from simulate.model import forward
    from simulate.runner import Evaluator, parity_task
    from simulate.data import first_support

    assert eval_chunk_rows(1, 2000) == eval_chunk_rows(30, 64) == 8192  # the demo's and compare's chunks
    for runs, width in ((1, 50000), (4, 5000), (64, 100000)):
        rows = eval_chunk_rows(runs, width)
        assert 1 <= rows < 8192 and (runs * rows * width <= EVAL_CHUNK_FLOATS or rows == 1)
    g = torch.Generator().manual_seed(1)
    params = init_default(2, 9000, 22, 2, generator=g)  # 2 x 9000: chunks of 932 of the 4096 held-out points
    ev = Evaluator(parity_task(22, first_support(3)), eval_size=4096, probe_samples=256, probe_every=0,
                   device=torch.device("cpu"))
    assert eval_chunk_rows(2, 9000) == 932
    rows = ev(params)
    out = forward(params, ev.x)
    want = L.cross_entropy(out, ev.label)
    for r in range(2):
        assert rows[r]["test_loss"] == pytest.approx(float(want[r]), rel=1e-6)
        assert rows[r]["test_accuracy"] == float((out[r].argmax(-1) == ev.label).float().mean())
