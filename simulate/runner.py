"""Shared pieces of the MLP teacher and student runs: initialization, data streams, evaluation,
probes and the training call (batch 1 through the blocked path, larger batches through
:func:`simulate.sgd.train_sgd`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from infra.seeding import Stream, generator

from . import data as D
from . import losses as L
from .blocked import train_online
from .model import MLPParams, forward, init_default, init_symmetric
from .probes import model_fn, probe, probe_summary, summary_rows
from .sgd import train_sgd

__all__ = ["init_params", "Task", "parity_task", "hierarchical_task", "TaskStream", "Evaluator", "train",
           "lr_multiplier"]

def init_params(cfg, d: int, k: int, classes: int, device: torch.device) -> MLPParams:
    """One run per seed, each from its own generator, stacked along the run axis."""
    parts = []
    for seed in cfg.seeds:
        g = generator(seed, Stream.INIT, torch.device("cpu"))
        if cfg.init == "symmetric":
            parts.append(init_symmetric(1, cfg.width, d, k, classes, generator=g))
        else:
            parts.append(init_default(1, cfg.width, d, classes, generator=g, output_scale=cfg.output_scale))
    return MLPParams(*(torch.cat([getattr(p, n) for p in parts]).to(device) for n in ("W", "b", "a")))


@dataclass(frozen=True)
class Task:
    """What a run learns: ``labels(x)`` (long, shape ``x.shape[:-1]``) for inputs in {+-1}^d, the
    number of ``classes``, and the support the curriculum probes look at (None: no probes)."""

    d: int
    classes: int
    labels: Callable[[torch.Tensor], torch.Tensor]
    probe_support: tuple[int, ...] | None
    description: dict


def parity_task(d: int, support: torch.Tensor) -> Task:
    """(d, k)-sparse parity, 2 classes (Definition 3.1; class 0 when the product is +1)."""
    sup = support.long()
    return Task(d, 2, lambda x: D.parity_labels(x, sup.to(x.device))[1], tuple(sup.tolist()),
                {"task": "parity", "support": sup.tolist()})


def hierarchical_task(d: int, supports: torch.Tensor) -> Task:
    """Hierarchical parity of Appendix C.3: ``2^D`` classes from a depth-``D`` tree of parities."""
    sup = supports.long()
    return Task(d, sup.shape[0] + 1, lambda x: D.hierarchical_labels(x, sup.to(x.device)), None,
                {"task": "hierarchical", "supports": sup.tolist()})


class TaskStream:
    """Fresh samples for each run, from that run's own generator: ``(x (R, n, d), label (R, n))``."""

    def __init__(self, task: Task, seeds, device: torch.device) -> None:
        self.task = task
        self.gens = [generator(s, Stream.DATA, device) for s in seeds]

    def __call__(self, n: int):
        x = torch.stack([D.sample_cube(n, self.task.d, generator=g) for g in self.gens])
        return x, self.task.labels(x)


def lr_multiplier(cfg):
    return L.lr_schedule(cfg.lr_schedule, warmup=cfg.warmup, total=cfg.steps) if (
        cfg.lr_schedule != "constant" or cfg.warmup) else None


def train(params, stream, steps, cfg, *, loss, teacher=None, alpha=0.0, tau=1.0, start_step=0, on_block=None,
          lr=None):
    """``steps`` SGD steps of ``cfg.batch`` fresh samples; the blocked exact path for batch 1.
    ``cfg`` supplies ``lr`` (or per-run ``run_lrs``), ``lr_a_mult`` (rate multiplier of the output layer), the schedule,
    ``batch`` and ``eval_every``."""
    kw = dict(loss=loss, teacher=teacher, alpha=alpha, tau=tau, schedule=lr_multiplier(cfg),
              start_step=start_step, on_block=on_block, every=cfg.eval_every, lr_a_mult=cfg.lr_a_mult)
    if lr is None:  # per-run rates (R,) may also be given directly
        lr = torch.tensor(cfg.run_lrs, dtype=torch.float64) if cfg.run_lrs else cfg.lr
    if cfg.batch == 1:
        return train_online(params, stream, steps, lr, **kw)
    return train_sgd(params, stream, steps, lr, batch_size=cfg.batch, **kw)


class Evaluator:
    """Test loss and accuracy on a fixed held-out set (all of {+-1}^d when d <= 20), and probes."""

    def __init__(self, task: Task, *, eval_size, probe_samples, device, seed=0):
        self.task, self.d, self.device = task, task.d, device
        if task.d <= D.MAX_CUBE_DIM and 2**task.d <= 1 << 20:
            self.x = D.full_cube(task.d, device=device)
            self.exact = True
        else:
            gen = torch.Generator().manual_seed(D.EVAL_SEED)  # fixed, never the training stream
            self.x = D.sample_cube(eval_size, task.d, generator=gen).to(device)
            self.exact = False
        self.label = task.labels(self.x)
        self.probe_samples, self.seed = probe_samples, seed

    @torch.no_grad()
    def __call__(self, params: MLPParams) -> list[dict]:
        """Per run: ``test_loss`` (hinge for a scalar output, else cross-entropy) and ``test_accuracy``."""
        out = torch.cat([forward(params, self.x[i:i + 8192]) for i in range(0, len(self.x), 8192)], 1)
        if params.classes == 1:
            y = L.labels_to_pm1(self.label, out.dtype)
            acc = ((out[..., 0] > 0) == (y > 0)).float().mean(1)
            value = L.hinge_loss(out, y)
        else:
            acc = (out.argmax(-1) == self.label).float().mean(1)
            value = L.cross_entropy(out, self.label)
        return [{"test_loss": float(v), "test_accuracy": float(a)} for v, a in zip(value.cpu(), acc.cpu())]

    def probes(self, params: MLPParams) -> list[dict]:
        """Curriculum probes (Figure 2) per run; empty rows for tasks without a parity support."""
        if self.task.probe_support is None:
            return [{} for _ in range(params.runs)]
        g = generator(self.seed, Stream.PROBE, torch.device("cpu"))
        res = probe(model_fn(params), self.d, list(self.task.probe_support), generator=g,
                    n_samples=self.probe_samples, device=self.device)
        return summary_rows(probe_summary(res))

    def rows(self, params: MLPParams, cfg, step: int, **extra) -> list[dict]:
        """One metrics row per run at ``step``: test loss/accuracy, probes every ``cfg.probe_every``
        steps, and ``run, seed, step, samples`` plus ``extra``."""
        rows = self(params)
        if cfg.probe_every and step % cfg.probe_every == 0:
            for row, probes in zip(rows, self.probes(params)):
                row.update(probes)
        for r, (row, seed) in enumerate(zip(rows, cfg.seeds)):
            row.update(run=r, seed=seed, step=step, samples=step * cfg.batch, **extra)
        return rows
