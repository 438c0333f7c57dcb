"""Training a teacher (online SGD on sparse parity) into a run directory, resumable.

The directory holds ``config.json``, ``env.json``, ``metrics.jsonl`` (one row per evaluation and
run), ``ckpt/step_*.safetensors`` (every ``checkpoint_every`` steps, with the data generators'
states in the metadata), and, once finished, ``metrics.parquet`` and ``summary.json``. Rerunning
on an unfinished directory of the same config resumes from its latest checkpoint with the same
samples it would have seen (the outer loop: :class:`infra.runloop.RunLoop`); a finished one is left
as it is; a directory of another config is refused unless ``overwrite``
(:meth:`infra.rundir.RunDir.claim_for`).
"""
from __future__ import annotations

import torch

from infra.config import config_from_dict, config_to_dict
from infra.device import resolve_device
from infra.logs import summary_from_log
from infra.rundir import RunDir
from infra.runloop import RunLoop
from infra.seeding import Stream, generator, generator_states, restore_generators

from . import data as D
from .checkpoints import CheckpointDir
from .config import TeacherConfig, support_coordinates
from .runner import Evaluator, Task, TaskStream, hierarchical_task, init_params, parity_task, sgd_settings, train

__all__ = ["train_teacher", "teacher_task", "load_teacher_config", "finite_runs"]


def teacher_task(cfg: TeacherConfig) -> Task:
    """The task of ``cfg``: the parity's support ``S`` (sorted; random ones drawn without
    replacement) or the hierarchical tree's node supports (disjoint blocks, ``(2^D - 1, k)`` in heap
    order); an explicit ``support`` list gives them as they are (:func:`simulate.config.support_coordinates`)."""
    coords = support_coordinates(cfg)
    if coords is not None:
        sup = torch.tensor(coords, dtype=torch.long)
        if cfg.task == "hierarchical":
            return hierarchical_task(cfg.d, sup.reshape(2**cfg.depth - 1, cfg.k))
        return parity_task(cfg.d, sup)
    gen = generator(cfg.support_seed, Stream.SUPPORT, torch.device("cpu")) if cfg.support == "random" else None
    if cfg.task == "hierarchical":
        return hierarchical_task(cfg.d, D.hierarchical_supports(cfg.depth, cfg.k, cfg.d, generator=gen))
    support = D.first_support(cfg.k) if gen is None else D.random_support(cfg.d, cfg.k, generator=gen)
    return parity_task(cfg.d, support)


def finite_runs(params) -> list[bool]:
    """Per run of an :class:`~simulate.model.MLPParams`: whether all its parameters are finite."""
    ok = torch.isfinite(params.W).flatten(1).all(1) & torch.isfinite(params.b).all(1)
    return (ok & torch.isfinite(params.a).flatten(1).all(1)).tolist()


def load_teacher_config(path) -> TeacherConfig:
    return config_from_dict(TeacherConfig, RunDir(path).read_json("config.json"))


def train_teacher(cfg: TeacherConfig, out, *, progress: bool = True, overwrite: bool = False,
                  allow_thread_change: bool = False) -> RunDir:
    """Train ``len(cfg.seeds)`` teachers as one batched program into ``out``; returns the RunDir.

    ``out`` is claimed first (:meth:`infra.rundir.RunDir.claim_for`): a finished run of ``cfg`` is
    returned as it is, an unfinished one resumes (under its thread count unless
    ``allow_thread_change``), a run of another config raises unless ``overwrite`` replaces it."""
    rd = RunDir(out)
    if rd.claim_for(cfg, overwrite=overwrite, allow_thread_change=allow_thread_change) == "finished":
        return rd
    device = resolve_device(cfg.device)
    task = teacher_task(cfg)
    classes = task.classes
    params = init_params(cfg.seeds, width=cfg.width, init=cfg.init, output_scale=cfg.output_scale, d=cfg.d, k=cfg.k,
                         classes=classes, device=device)
    stream = TaskStream(task, cfg.seeds, device, train_size=cfg.train_size)
    evaluator = Evaluator(task, eval_size=cfg.eval_size, probe_samples=cfg.probe_samples,
                          probe_every=cfg.probe_every, device=device, probe_degrees=cfg.probe_degrees)
    ck = CheckpointDir(rd.ckpt, d=cfg.d, width=cfg.width, classes=classes, runs=len(cfg.seeds))
    config = config_to_dict(cfg)

    def save(step: int) -> None:
        ck.save(params, step=step, samples=step * cfg.batch, config=config,
                extra_metadata=generator_states(stream.gens))

    def restore() -> int:
        nonlocal params
        latest = ck.load("latest", device=device)
        params = latest.params.clone()  # fresh, aligned storage (GEMM rounding can depend on alignment)
        restore_generators(stream.gens, latest.metadata)
        stream.seek(latest.step * cfg.batch)  # a finite pool's position (fresh samples: the generators')
        return latest.step

    loop = RunLoop(rd, config, evaluate=lambda step: evaluator.rows(params, step, step * cfg.batch, cfg.seeds),
                   total_steps=cfg.steps, checkpoints=ck, save=save, checkpoint_every=cfg.checkpoint_every,
                   progress=progress, desc="teacher", params_finite=lambda: finite_runs(params))
    start = loop.start_or_resume(device, restore)
    with loop.running():  # stops early when every run diverged
        if start == 0:
            loop.log(0)
        train(params, stream, cfg.steps - start, sgd_settings(cfg), loss="ce", start_step=start,
              on_block=lambda step, _params: loop.log(step))
        if cfg.steps % cfg.eval_every:
            loop.log(cfg.steps)
    df = rd.metrics()
    runs = [dict(summary_from_log(df, run=r), run=r, seed=s) for r, s in enumerate(cfg.seeds)]
    rd.finish({"kind": "teacher", **task.description, "runs": runs})
    return rd
