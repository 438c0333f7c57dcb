"""Stability of the wide teacher of Appendix C.1 (width 50000, batch 1) under PyTorch's default init.

For each pair (output scale, lr_a_mult) -- the multiplier of the default init of the output layer
and the multiplier of the output layer's learning rate (``a`` steps with ``lr * lr_a_mult``) -- the
learning rates run as one batched program (one run per rate, the same samples), and the script
prints, after 1, 10, 100, 1000 and ``--steps`` SGD steps, the largest |logit| on the held-out set
and the test loss. Verdict on the last column: "diverged" when the loss is not finite or above 10,
"saturated" when it is above ``--saturated`` (default 0.8; chance is ln 2 = 0.693, and d = 100,
k = 6 is not learned in a few thousand steps, so a healthy run sits at ~0.69), else "stable".
``--lr-a-mults`` takes numbers or ``X/m`` (X divided by the width, e.g. ``1/m``, ``100/m``).

    python benchmarks/stability_wide_teacher.py                 # d = 100, k = 6, width 50000, 20000 steps
    python benchmarks/stability_wide_teacher.py --steps 2000    # quicker
    python benchmarks/stability_wide_teacher.py --steps 5000 --output-scales 1 --lr-a-mults 1 100/m 1/m
"""
from __future__ import annotations

import argparse
import math
import time

import torch

from simulate import data as D
from simulate.blocked import train_online
from simulate.model import MLPParams, forward, init_default
from infra.seeding import Stream, generator


def parse_mult(text: str, width: int) -> float:
    """``"0.01"`` -> 0.01; ``"100/m"`` -> 100 / width."""
    text = text.strip()
    if text.endswith("/m"):
        return float(text[:-2]) / width
    return float(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=100)
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--width", type=int, default=50_000)
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--lrs", type=float, nargs="+", default=[1e-2, 5e-3, 1e-3, 5e-4])
    ap.add_argument("--output-scales", type=float, nargs="+", default=[1.0, 0.1, 0.01])
    ap.add_argument("--lr-a-mults", nargs="+", default=["1"],
                    help="learning-rate multipliers of the output layer: numbers or X/m (X / width)")
    ap.add_argument("--saturated", type=float, default=0.8, help="final test loss above which a run is 'saturated'")
    args = ap.parse_args()
    try:
        mults = [(t, parse_mult(t, args.width)) for t in args.lr_a_mults]
    except ValueError:
        ap.error(f"--lr-a-mults takes numbers or X/m, got {args.lr_a_mults}")
    if any(not (v > 0 and math.isfinite(v)) for _, v in mults):
        ap.error(f"--lr-a-mults must be finite and > 0, got {args.lr_a_mults}")
    support = D.first_support(args.k)
    x_eval, _, label = D.heldout_parity(args.d, support, 4096)
    checkpoints = sorted({1, 10, 100, 1000, args.steps} & set(range(1, args.steps + 1)))
    print(f"d={args.d} k={args.k} width={args.width} batch=1, default init; torch {torch.__version__}")
    print("cells: max |logit| on the held-out set / test CE loss")
    print(f"{'out_scale':>9} {'lr_a_mult':>14} {'lr':>8} " + " ".join(f"{'step ' + str(c):>22}" for c in checkpoints)
          + "  verdict")
    for scale, (mult_text, mult) in [(s, m) for s in args.output_scales for m in mults]:
        runs = len(args.lrs)
        parts = [init_default(1, args.width, args.d, 2, generator=generator(0, Stream.INIT, torch.device("cpu")),
                              output_scale=scale) for _ in range(runs)]
        params = MLPParams(*(torch.cat([getattr(p, n) for p in parts]) for n in ("W", "b", "a")))
        gen = generator(0, Stream.DATA, torch.device("cpu"))

        def stream(n):
            x = D.sample_cube(n, args.d, generator=gen)
            return x, D.parity_labels(x, support)[1]

        cells = [[] for _ in range(runs)]
        done, t0 = 0, time.perf_counter()
        for c in checkpoints:
            train_online(params, stream, c - done, torch.tensor(args.lrs, dtype=torch.float64), loss="ce",
                         lr_a_mult=mult)
            done = c
            with torch.no_grad():
                out = forward(params, x_eval)
                loss = torch.nn.functional.cross_entropy(out.transpose(1, 2), label.expand(runs, -1), reduction="none")
                loss = loss.mean(1)
            for r in range(runs):
                cells[r].append((float(out[r].abs().max()), float(loss[r])))
        for r, lr in enumerate(args.lrs):
            final = cells[r][-1][1]
            verdict = "diverged" if not math.isfinite(final) or final > 10 else \
                "saturated" if final > args.saturated else "stable"
            row = " ".join(f"{m:>10.3g} / {l:>9.3g}" for m, l in cells[r])
            label_m = f"{mult_text}={mult:.2g}" if mult_text.endswith("/m") else f"{mult:g}"
            print(f"{scale:>9g} {label_m:>14} {lr:>8g} {row}  {verdict}", flush=True)
        print(f"  ({time.perf_counter() - t0:.0f} s for {runs} runs of {args.steps} steps)", flush=True)


if __name__ == "__main__":
    main()
