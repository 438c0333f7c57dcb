"""Algorithm 1's students of several supervisions (and rates) as ONE batched program (Appendix B,
Theorem B.1): the two-stage counterpart of :func:`simulate.student.train_strategies`.

Members are student configs that differ only in ``supervision``, ``B1``, ``eta1``, ``lambda1`` and ``eta2``
(same task, width, seeds, teacher and stages otherwise), or teacher configs that differ only in the
rates and ``B1`` (they learn from labels); run ``j * n + r`` of the program is seed ``r``
of member ``j`` (``n`` seeds). Stage 1 runs member by member on its slice of the runs (its own batch
``B1``, which Theorem B.1 sets per supervision, and its own rate), drawing from the runs' own
generators; stage 2, the long part, runs all members at once through the blocked batch-1 path with
per-run rates and per-run targets (the labels ``y`` for ``labels`` runs, the final teacher's output
``f_T`` for the others: ``max(0, 1 - t f)`` is the same kernel for both). Block length and the
teacher's row chunks are those of one member's program, so every member's files hold the bits a
program of its own writes (tests/test_two_stage.py).

Checkpoints: each member's after stage 1 and at the end, as its own program writes them; a killed
program is not resumed as a whole: each member with a stage-1 checkpoint resumes as its own program
(:func:`simulate.two_stage_runs.train_students`).
"""
from __future__ import annotations

import json

import torch

from infra.config import config_to_dict
from infra.rundir import RunDir
from infra.runloop import RunLoop
from infra.seeding import generator_states

from . import data as D
from .blocked import default_block_size, train_online
from .checkpoints import CheckpointDir
from .losses import labels_to_pm1
from .model import MLPParams
from .runner import Evaluator, TaskStream, init_params, parity_task
from .train_setup import teacher_logits
from .two_stage import first_stage_correlations, hinge_targets, stage_one, support_recovery
from .two_stage_config import SHARED_FIELDS, resolved

__all__ = ["SHARED_FIELDS", "shareable", "train_shared"]

def shareable(cfgs) -> bool:
    """Whether the student configs ``cfgs`` (two or more) differ only in :data:`SHARED_FIELDS`, train
    ``B2 = 1`` stage 2 (the blocked path) and share their stages once resolved (``T1, T2, eval_every``)."""
    if len(cfgs) < 2:
        return False
    rest = [{k: v for k, v in config_to_dict(c).items() if k not in SHARED_FIELDS} for c in cfgs]
    return all(r == rest[0] for r in rest) and cfgs[0].B2 == 1


def train_shared(cfgs: list, rds: list[RunDir], *, d: int, k: int, width: int, teacher_params, device,
                 progress: bool, write_summary) -> None:
    """Train the members ``cfgs`` (student configs, or teacher configs: labels) into their claimed, fresh
    directories ``rds``. ``teacher_params``: the paired ``(first, final)`` teacher parameters (``n``
    runs each), or None when every member learns from labels; ``write_summary(rd, cfg, stages, df)``
    finishes a member's directory."""
    n, S = len(cfgs[0].seeds), len(cfgs)
    seeds = tuple(cfgs[0].seeds)
    task = parity_task(d, D.first_support(k))
    support = list(range(k))
    sups = [getattr(c, "supervision", "labels") for c in cfgs]
    stages = [resolved(c, d=d, k=k, width=width, supervision=sup) for c, sup in zip(cfgs, sups)]
    T1, T2, every = stages[0]["T1"], stages[0]["T2"], stages[0]["eval_every"]
    parts = [init_params(seeds, width=width, init="symmetric", output_scale=1.0, d=d, k=k, classes=1, device=device)
             for _ in cfgs]
    params = MLPParams(*(torch.cat([getattr(p, f) for p in parts]) for f in ("W", "b", "a")))
    stream = TaskStream(task, seeds * S, device)
    evaluator = Evaluator(task, eval_size=cfgs[0].eval_size, probe_samples=256, probe_every=0, device=device,
                          exact_max=cfgs[0].eval_size)
    members = [slice(j * n, (j + 1) * n) for j in range(S)]
    view = [MLPParams(params.W[s], params.b[s], params.a[s]) for s in members]  # in-place updates reach params
    cks = [CheckpointDir(rd.ckpt, d=d, width=width, classes=1, runs=n) for rd in rds]
    configs = [config_to_dict(c) for c in cfgs]
    eta1 = [None] * S

    def samples(j: int, step: int) -> int:
        return 0 if step == 0 else T1 * stages[j]["B1"] + (step - T1) * stages[j]["B2"]

    def evaluate(step: int) -> list[dict]:
        """Member by member, as its own program evaluates (a reduction over more runs may round otherwise)."""
        rows = []
        for j in range(S):
            part = evaluator.rows(view[j], step, samples(j, step), seeds, stage=1 if step <= T1 else 2)
            if step == T1:
                stats = {**support_recovery(view[j].W, support),
                         **first_stage_correlations(view[j], evaluator.x, support)}
                for r, row in enumerate(part):
                    row.update({key: float(v[r]) for key, v in stats.items()}, eta1=float(eta1[j][r]))
            rows += part
        return rows

    def save(j: int, step: int) -> None:
        gens = stream.gens[members[j]]
        cks[j].save(MLPParams(view[j].W.clone(), view[j].b.clone(), view[j].a.clone()), step=step,
                    samples=samples(j, step), config=configs[j],
                    extra_metadata={**generator_states(gens), "eta1": json.dumps(eta1[j].tolist())})

    def supervise_with(j: int):
        first = None if teacher_params is None or sups[j] == "labels" else \
            teacher_params[1 if sups[j] == "oneshot" else 0]
        own = stream.select(members[j])

        def draw(m: int):
            x, label = own(m)
            return x, hinge_targets(first, x, label)
        return draw

    distilled = [j for j, sup in enumerate(sups) if sup != "labels"]
    final = teacher_params[1] if teacher_params is not None else None

    def targets(x: torch.Tensor) -> torch.Tensor:
        """Per run ``(R, N, 1)``: ``y`` for labels runs, the final teacher's output for the others (as a
        member's own program computes it: the same row chunks)."""
        out = torch.empty(x.shape[0], x.shape[1], 1, dtype=torch.float32, device=x.device)
        for j, s in enumerate(members):
            if j in distilled:
                out[s] = teacher_logits(final, x[s]).reshape(n, x.shape[1], 1)
            else:
                out[s, :, 0] = labels_to_pm1(task.labels(x[s]), torch.float32)
        return out

    desc = f"{'teachers' if teacher_params is None and not hasattr(cfgs[0], 'supervision') else 'students'} " \
        f"({S} {'supervisions' if len(set(sups)) == S else 'configs'})"
    loop = RunLoop(rds, configs, evaluate=evaluate, total_steps=T1 + T2, progress=progress, desc=desc)
    loop.start_or_resume(device)  # fresh directories only (module doc)
    with loop.running():
        loop.log(0)
        for j, st in enumerate(stages):
            eta1[j] = stage_one(view[j], supervise_with(j), steps=T1, batch=st["B1"], k=k, eta1=st["eta1"],
                                lambda1=st["lambda1"])
        loop.log(T1)
        for j in range(S):
            save(j, T1)
        lr = torch.tensor([st["eta2"] for st in stages for _ in range(n)], dtype=torch.float64)
        teacher = None if not distilled else targets
        train_online(params, stream, T2, lr, loss="hinge" if teacher is None else "hinge_distill", teacher=teacher,
                     start_step=T1, train="a", every=every, on_block=lambda step, _p: loop.log(step),
                     block_size=default_block_size(width, d, n))
        loop.log(T1 + T2)
        for j in range(S):
            save(j, T1 + T2)
    for j, rd in enumerate(rds):
        write_summary(rd, cfgs[j], stages[j], rd.metrics())
