"""The training loop of every Transformer run (teachers and students), resumable.

:func:`fit` trains the ``R`` runs of one program (a leading run axis in every parameter, so one
Adam step updates all runs at once; Adam is elementwise, so runs stay independent) through a list
of :class:`Stage` s: ``[start, stop)`` step intervals, each supervised by the labels (cross-entropy,
eq. (3)/(9)) or by a frozen teacher checkpoint (``alpha CE + (1 - alpha) KL(p_T^tau || p_S)``,
eq. (4)/(10)). Data are drawn on the device from one generator per run. Adam with betas (0.9,
0.95) and no weight decay, warmup then cosine/linear decay (Appendix D.6); bf16 autocast on CUDA.

The run directory gets ``config.json``, ``env.json``, ``metrics.jsonl`` and checkpoints (model,
Adam state and generator states) at every ``checkpoint_every`` steps (teachers keep them all;
students keep the latest). Rerunning on an unfinished directory with the same config resumes
from its latest checkpoint with the same samples it would have drawn (the outer loop:
:class:`infra.runloop.RunLoop`, which also stops a program whose runs all diverged). :func:`fit`
reads only :class:`FitSettings` (built from a config by :func:`fit_settings`).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import torch

from infra.rundir import RunDir
from infra.runloop import RunLoop
from infra.seeding import Stream, generator, generator_states, restore_generators
from simulate.losses import lr_schedule

from .checkpoints import TransformerCheckpointDir, restore_optimizer
from .evaluate import Evaluator, autocast
from .extraction import align_loss
from .model import Transformer, TransformerShape
from .objectives import weighted_ce, weighted_kl
from .tasks import sample_runs

__all__ = ["Stage", "FitSettings", "fit_settings", "fit", "model_shape", "new_model", "make_optimizer", "batch_sampler"]


@dataclass(frozen=True)
class FitSettings:
    """What :func:`fit` needs of a Transformer teacher or student config.

    The model: one run per seed of ``seeds`` (init and data), ``layers`` blocks of ``heads`` heads
    of ``head_dim`` (width ``heads * head_dim``), MLP width ``mlp_ratio`` times the width. Training:
    ``steps`` Adam steps of ``batch`` sequences per run, peak rate ``lr`` under ``lr_schedule``
    (constant, cosine, linear) with ``warmup`` steps and final ratio ``min_lr_ratio``, an evaluation
    every ``eval_every`` steps, ``precision`` (auto, fp32, bf16) of the forward passes. The loss of
    teacher-supervised stages: ``alpha CE + (1 - alpha) KL(p_T^temperature || p_S)`` on the teacher's
    ``top_k`` logits (0: all); unused by label stages (teachers keep the defaults).
    """

    seeds: tuple[int, ...]
    layers: int
    heads: int
    head_dim: int
    mlp_ratio: int
    steps: int
    batch: int
    lr: float
    lr_schedule: str
    warmup: int
    min_lr_ratio: float
    eval_every: int
    precision: str
    alpha: float = 0.0
    temperature: float = 1.0
    top_k: int = 0


def fit_settings(cfg) -> FitSettings:
    """The :class:`FitSettings` of a Transformer config (PCFG, parity or text; teacher or student),
    field by field of the same names; a teacher has no distillation loss (the defaults)."""
    values = {f.name: getattr(cfg, f.name) for f in fields(FitSettings) if hasattr(cfg, f.name)}
    return FitSettings(**dict(values, seeds=tuple(cfg.seeds)))


@dataclass(frozen=True)
class Stage:
    """Student steps ``[start, stop)`` supervised by ``source`` ("labels", a teacher step, "final" or
    "extract:<layer>"); ``teacher`` is the frozen 1-run teacher model (None for labels)."""

    start: int
    stop: int
    source: str
    teacher: Transformer | None = None
    align: object | None = None  # a distill.extraction.Alignment: hidden-state alignment to the teacher


def model_shape(cfg: FitSettings, task) -> TransformerShape:
    """The shape of ``cfg``'s model for ``task`` (vocabulary, outputs, length and causality of the task)."""
    return TransformerShape(vocab=task.vocab_size, n_out=task.n_out, max_len=task.max_len, layers=cfg.layers,
                            heads=cfg.heads, head_dim=cfg.head_dim, mlp_ratio=cfg.mlp_ratio, causal=task.causal)


def new_model(cfg: FitSettings, task, device: torch.device) -> Transformer:
    """``len(cfg.seeds)`` runs, run ``r`` initialized from its seed's own generator."""
    gens = [generator(s, Stream.INIT, torch.device("cpu")) for s in cfg.seeds]
    return Transformer(model_shape(cfg, task), runs=len(cfg.seeds), generators=gens, device=device)


def make_optimizer(model: Transformer, lr: float) -> torch.optim.Adam:
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0)


def batch_sampler(task, gens: list[torch.Generator], n: int, device: torch.device):
    """A function drawing one ``(R, n, T)`` training batch per call, and whether it has padding.

    On CUDA the batch is drawn on a side stream: the sampler's host syncs (sizes of the vectorized
    derivations) then wait for the sampling kernels only, not for the previous step's queued
    backward pass, so drawing overlaps training. Same generators, same numbers as on one stream.
    """
    if device.type != "cuda":
        def draw():
            batch = sample_runs(task, gens, n)
            return batch, bool(batch.valid.all())
        return draw
    side = torch.cuda.Stream(device)

    def draw_cuda():
        with torch.cuda.stream(side):
            batch = sample_runs(task, gens, n)
            full = bool(batch.valid.all())  # syncs the side stream only
        main = torch.cuda.current_stream(device)
        main.wait_stream(side)
        for name in ("inputs", "valid", "targets", "selected", "weights"):
            getattr(batch, name).record_stream(main)
        return batch, full
    return draw_cuda


def _loss(model, teacher, batch, cfg: FitSettings, device, full: bool = False) -> torch.Tensor:
    """Per-run loss ``(R,)`` of one batch ``(R, B, T)`` (``full``: no padding, so no attention mask);
    ``cfg`` gives the precision and, with a ``teacher``, ``alpha``, ``temperature`` and ``top_k``."""
    with autocast(device, cfg.precision):
        logits = model(batch.inputs, valid=None if full else batch.valid).logits
    if teacher is None:
        return weighted_ce(logits, batch.targets, batch.weights)
    R, B, T = batch.inputs.shape
    with torch.no_grad(), autocast(device, cfg.precision):
        t_logits = teacher(batch.inputs.reshape(R * B, T), valid=None if full else batch.valid.reshape(R * B, T)).logits
    t_logits = t_logits.reshape(R, B, T, -1)
    kl = weighted_kl(logits, t_logits, batch.weights, tau=cfg.temperature, top_k=cfg.top_k)
    if cfg.alpha == 0:
        return kl
    return cfg.alpha * weighted_ce(logits, batch.targets, batch.weights) + (1 - cfg.alpha) * kl


def fit(rd: RunDir, cfg: FitSettings, task, device: torch.device, *, config: Mapping[str, Any], stages: list[Stage],
        evaluator: Evaluator, checkpoint_every: int, keep_checkpoints: bool = True, log_source: bool = False,
        progress: bool = True, desc: str = "train") -> Transformer:
    """Train (or resume) the runs of ``cfg`` (:func:`fit_settings` of the run's config, whose dict
    ``config`` goes to ``config.json`` and the checkpoints) through ``stages`` into ``rd``; returns
    the trained model.

    Evaluates (``evaluator.rows``) at step 0 and every ``cfg.eval_every`` steps, checkpoints every
    ``checkpoint_every`` steps and at the end (only the latest kept without ``keep_checkpoints``);
    ``log_source`` adds the stage's source to each row. The outer loop is :class:`infra.runloop.RunLoop`.
    """
    model = new_model(cfg, task, device)
    opt = make_optimizer(model, cfg.lr)
    gens = [generator(s, Stream.DATA, device) for s in cfg.seeds]
    ck = TransformerCheckpointDir(rd.ckpt, shape=model.shape, runs=model.runs)
    config = dict(config)
    mult = lr_schedule(cfg.lr_schedule, warmup=cfg.warmup, total=cfg.steps, min_ratio=cfg.min_lr_ratio)
    running = torch.zeros(model.runs, device=device)
    since = 0

    def evaluate(step: int, source: str) -> list[dict]:
        nonlocal running, since
        extra = {"source": source} if log_source else {}
        rows = evaluator.rows(model, step, step * cfg.batch, cfg.seeds, **extra)
        train_loss = (running / max(since, 1)).tolist()
        for r, row in enumerate(rows):
            row["train_loss"] = train_loss[r] if since else None
            row["lr"] = cfg.lr * float(mult(max(step - 1, 0)))
        running, since = torch.zeros_like(running), 0
        return rows

    def save(step: int) -> None:
        ck.save(model, step=step, samples=step * cfg.batch, config=config, optimizer=opt,
                extra_metadata=generator_states(gens))

    def restore() -> int:
        latest = ck.load("latest", device=device)
        model.load_state_dict(latest.model.state_dict())
        restore_optimizer(opt, {k: v.to(device) for k, v in latest.optimizer.items()})
        restore_generators(gens, latest.metadata)
        return latest.step

    loop = RunLoop(rd, config, evaluate=evaluate, total_steps=cfg.steps, checkpoints=ck, save=save,
                   checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints, progress=progress, desc=desc,
                   params_finite=lambda: finite_runs(model))
    start = loop.start_or_resume(device, restore)
    draw = batch_sampler(task, gens, cfg.batch, device)
    with loop.running():  # stops early when every run diverged
        if start == 0:
            loop.log(0, source=stages[0].source)
        model.train()
        for stage in stages:
            for step in range(max(start, stage.start), stage.stop):
                for g in opt.param_groups:
                    g["lr"] = cfg.lr * float(mult(step))
                batch, full = draw()
                if stage.align is not None:
                    loss = align_loss(model, stage.teacher, stage.align, batch, cfg.precision, device, full)
                else:
                    loss = _loss(model, stage.teacher, batch, cfg, device, full)
                opt.zero_grad(set_to_none=True)
                loss.sum().backward()
                opt.step()
                running += loss.detach()
                since += 1
                if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
                    loop.log(step + 1, source=stage.source)
    return model


def finite_runs(model: Transformer) -> list[bool]:
    """Per run of ``model`` (every parameter has a leading run axis): whether all its parameters are finite."""
    with torch.no_grad():
        ok = [torch.isfinite(p).reshape(p.shape[0], -1).all(1) for p in model.parameters()]
    return torch.stack(ok).all(0).tolist()
