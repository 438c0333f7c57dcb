"""Batched Transformer runs (one program, a leading run axis) against one run at a time.

Trains ``R`` seeds of the same PCFG masked-LM model for ``--steps`` Adam steps twice, in one
process and on the same data: (a) as ``R`` separate 1-run models (a plain loop over runs, each its
own optimizer step), (b) as one ``R``-run model (:class:`distill.model.Transformer`). Prints the
aggregate run-steps/s of both and their ratio, and the largest difference of the final parameters
(the two must train the same runs).

    python benchmarks/transformer_runs.py                       # CPU defaults of icurr pcfg teacher
    python benchmarks/transformer_runs.py --runs 8 --heads 32 --batch 512 --grammar cfg3b --device cuda
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time

import torch

from distill.config import PcfgTeacherConfig
from distill.engine import _loss, fit_settings, make_optimizer, new_model
from distill.runs import build_task
from distill.tasks import sample_runs
from infra.seeding import Stream, generator


def _train(models_and_opts, task, gens, cfg, device, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        batch = sample_runs(task, gens, cfg.batch)
        for r, (model, opt) in enumerate(models_and_opts):
            sl = slice(r, r + 1) if len(models_and_opts) > 1 else slice(None)
            part = type(batch)(*(getattr(batch, f)[sl] for f in ("inputs", "valid", "targets", "selected", "weights")))
            loss = _loss(model, None, part, cfg, device)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--grammar", default="random:levels=5,seed=1")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    seeds = tuple(range(args.runs))
    cfg = PcfgTeacherConfig(grammar=args.grammar, heads=args.heads, layers=args.layers, batch=args.batch,
                            seeds=seeds, device=args.device)
    task = build_task(cfg)
    cfg = fit_settings(cfg)
    single = [new_model(dataclasses.replace(cfg, seeds=(s,)), task, device) for s in seeds]
    batched = new_model(cfg, task, device)
    gens = lambda: [generator(s, Stream.DATA, device) for s in seeds]  # noqa: E731 - the same data for both loops
    t_single = _train([(m, make_optimizer(m, cfg.lr)) for m in single], task, gens(), cfg, device, args.steps)
    t_batched = _train([(batched, make_optimizer(batched, cfg.lr))], task, gens(), cfg, device, args.steps)
    diff = max((batched.state_dict()[k][r] - single[r].state_dict()[k][0]).abs().max().item()
               for r in range(args.runs) for k in batched.state_dict())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device {device}, R = {args.runs}, heads {args.heads}, layers {args.layers}, batch {args.batch}, "
          f"grammar {args.grammar}, {args.steps} steps, load average {load:.2f}")
    print(f"one run at a time: {args.runs * args.steps / t_single:8.1f} run-steps/s")
    print(f"one batched program: {args.runs * args.steps / t_batched:8.1f} run-steps/s")
    print(f"ratio (batched / one at a time): {t_single / t_batched:.2f}x; max |parameter difference| {diff:.2e}")


if __name__ == "__main__":
    main()
