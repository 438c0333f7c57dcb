"""Claim of Figure 7 (left), Section 3: wider MLPs learn sparse parity with fewer samples. Rule written
2026-11-30, before the experiment ran at any tier.

Teachers of three widths (16x apart) learn (d, k)-parity from labels by online SGD (batch 1, the same
rate, schedule, init and seeds at every width; PyTorch's default init), 5 seeds each; the statistic is
the ratio of median samples to 95% test accuracy, narrowest over widest, with a bootstrap over seeds.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .ledger import Claim, Outcome, Rule, Source, interval_verdict, register, write_png
from .mlp_claims import FIXED, PAPER, ratio_interval, ratio_panel

_SETUP = {
    "smoke": dict(d=12, k=4, widths=(64, 256, 1024), steps=8000, every=200, seeds=(0, 1)),
    "cpu": dict(d=24, k=4, widths=(128, 512, 2048), steps=60000, every=500, seeds=(0, 1, 2, 3, 4)),
    "paper": dict(d=100, k=6, widths=(1000, 10000, 50000), steps=20_000_000, every=100_000, seeds=(0, 1, 2, 3, 4)),
}


def _f7(tier: str, out: Path, progress: bool = False) -> Outcome:
    from infra.config import config_hash
    from simulate.config import TeacherConfig
    from simulate.teacher import train_teacher

    p = _SETUP[tier]
    samples = {}
    for m in p["widths"]:
        cfg = TeacherConfig(d=p["d"], k=p["k"], width=m, steps=p["steps"], lr=0.05, lr_schedule="constant",
                            eval_every=p["every"], checkpoint_every=p["steps"], probe_every=0, seeds=p["seeds"],
                            device="cpu")
        runs = train_teacher(cfg, out / config_hash(cfg), progress=progress).read_json("summary.json")["runs"]
        samples[m] = [r.get("samples_to_95") for r in runs]
    narrow, mid, wide = p["widths"]
    rows = []
    for a, b in ((narrow, wide), (narrow, mid), (mid, wide)):
        est, lo, hi = ratio_interval(samples[a], samples[b])
        rows.append({"narrow": a, "wide": b, "ratio": est, "ci_lo": lo, "ci_hi": hi})
    per_width = pd.DataFrame([{"width": m, "seed": s, "samples_to_95": v} for m in p["widths"]
                              for s, v in zip(p["seeds"], samples[m])])
    table = pd.DataFrame(rows)
    verdict, why = interval_verdict(rows[0]["ci_lo"], rows[0]["ci_hi"], 1.0)
    med = {m: np.median([np.inf if v is None else v for v in samples[m]]) for m in p["widths"]}
    reason = (f"median samples to 95%: " + ", ".join(f"width {m}: {med[m]:.0f}" for m in p["widths"])
              + f"; width {narrow} / width {wide} = {rows[0]['ratio']:.2f} [{rows[0]['ci_lo']:.2f}, "
              f"{rows[0]['ci_hi']:.2f}] ({why})")

    def figure(path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
        for m in p["widths"]:
            v = per_width.loc[per_width["width"] == m, "samples_to_95"].astype(float)
            a.scatter([m] * len(v), v, s=14)
        a.plot(list(med), list(med.values()), "k-", lw=1, label="median over seeds")
        a.set(xscale="log", yscale="log", xlabel="hidden width m", ylabel="samples to 95% test accuracy",
              title=f"({p['d']}, {p['k']})-parity, online SGD")
        a.set_xticks(list(p["widths"]), [str(m) for m in p["widths"]])
        a.legend(fontsize=7)
        ratio_panel(b, [f"{x.narrow} / {x.wide}" for x in table.itertuples()], table["ratio"], table["ci_lo"],
                    table["ci_hi"], ylabel="samples ratio (narrow / wide)", title="wider is faster if above 1")
        write_png(fig, path)

    return Outcome(verdict, reason, {"rows": rows, "medians": {str(k): float(v) for k, v in med.items()}},
                   pd.concat([table.assign(kind="ratio"), per_width.assign(kind="run")], ignore_index=True), figure,
                   {"smoke": "(12, 4), widths 64 / 256 / 1024, 2 seeds",
                    "cpu": "(24, 4)-parity, widths 128 / 512 / 2048, 5 seeds, 60k steps, lr 0.05 constant; the "
                           "paper: (100, 6), widths up to 50000, 5 runs",
                    "paper": "(100, 6)-parity, widths 1000 / 10000 / 50000, 5 seeds, 20M steps (a GPU job)"}[tier])


register(Claim(
    "f7-wider-learns-faster", "Figure 7 (left): wider MLPs learn sparse parity with fewer samples", "mlp",
    Source("progressive", "Figure 7 (left)", PAPER, 680,
           "Figure 7: **Larger models learn sparse parity faster.** A larger model has more width (MLP, *left*)"),
    Rule("Teachers of widths m, 4m, 16m trained alike (same rate, schedule, init family and seeds; 5 seeds each): "
         "the ratio median(samples to 95% test accuracy at width m) / median(at width 16m), with a 95% bootstrap "
         "interval over the paired seeds (2000 resamples, seed 0); the intermediate ratios reported alongside.",
         "PASS if the interval lies above 1 (the wider learns faster); FAIL if it lies at or below 1; otherwise "
         "INCONCLUSIVE.", FIXED),
    _f7))
