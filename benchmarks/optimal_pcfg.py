"""Throughput of the exact Bayes-optimal masked predictor (distill.optimal / distill.inside).

Sentences per second of :func:`distill.optimal.bayes_posterior` (one inside pass and its backward,
the outside pass, per chunk of sentences; float64) on sentences of a grammar masked at rate 0.3,
for each intra-op thread count, on CPU or CUDA. ``--baseline FILE`` also times ``masked_posterior``
of another version of ``distill/inside.py`` (e.g. ``git show REV:distill/inside.py > old.py``)
against the current one on the same sentences and masks ([mask] replacement, the workload both
support), and checks that they agree.

    python benchmarks/optimal_pcfg.py --grammar cfg3b --sentences 48 --threads 1,2
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from distill.grammar import load_grammar  # noqa: E402
from distill.inside import masked_posterior  # noqa: E402
from distill.optimal import bayes_posterior, sample_masked  # noqa: E402


def _load(path: str):
    text = open(path).read().replace("from .grammar import", "from distill.grammar import")
    spec = importlib.util.spec_from_loader("inside_baseline", loader=None)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    exec(compile(text, path, "exec"), mod.__dict__)
    return mod


def _rate(fn, n: int, device: torch.device, repeats: int) -> float:
    best = 0.0
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = max(best, n / (time.perf_counter() - t))
    return best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grammar", default="cfg3b")
    ap.add_argument("--sentences", type=int, default=48)
    ap.add_argument("--threads", default="1,2", help="intra-op thread counts, comma-separated")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=2, help="timed repetitions (the best is kept)")
    ap.add_argument("--baseline", default=None, help="another distill/inside.py to time against")
    ap.add_argument("--baseline-chunk", type=int, default=16, help="its chunk argument (its default: 16)")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    g = load_grammar(args.grammar)
    gen = torch.Generator(device=device).manual_seed(0)
    bert = sample_masked(g, args.sentences, rate=0.3, replacement="bert", generator=gen)
    plain = sample_masked(g, args.sentences, rate=0.3, replacement="mask", generator=gen)
    lengths = plain.valid.sum(1)
    base = _load(args.baseline) if args.baseline else None
    print(f"# {args.grammar}: {args.sentences} sentences, lengths {int(lengths.min())}-{int(lengths.max())}, "
          f"{device}, torch {torch.__version__}")
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        bayes_posterior(g, bert.inputs[:2], bert.valid[:2], rate=0.3)  # warm-up
        r = _rate(lambda: bayes_posterior(g, bert.inputs, bert.valid, rate=0.3), args.sentences, device,
                  args.repeats)
        print(f"threads={threads}  bayes_posterior (bert 80/10/10)      {r:9.2f} sentences/s")
        new = lambda: masked_posterior(g, plain.targets, lengths, plain.selected)  # noqa: E731
        r = _rate(new, args.sentences, device, args.repeats)
        print(f"threads={threads}  masked_posterior (current)           {r:9.2f} sentences/s")
        if base is not None:
            old = lambda: base.masked_posterior(g, plain.targets, lengths, plain.selected,  # noqa: E731
                                                chunk=args.baseline_chunk)
            diff = (old() - new()).abs().max().item()
            r = _rate(old, args.sentences, device, args.repeats)
            print(f"threads={threads}  masked_posterior (baseline)          {r:9.2f} sentences/s  "
                  f"(max |difference| {diff:.1e})")


if __name__ == "__main__":
    main()
