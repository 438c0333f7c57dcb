"""Claim R1 of the ledger (Section 3.1, Figure 2 middle, Figure 9): during its phase transition the teacher's
output correlates strongly with the in-support degree-1 monomials, and the correlation fades with continued
training. Rule written 2026-11-30, before the experiment ran at any tier.

Like with like: the in-support *mean* |E p(x) x_j| against the off-support *mean* (the max against the max
is reported as well, as ``in_min - off_max``), exactly over {+-1}^d (``simulate.probes``, d <= 20), at the
middle of each teacher's own transition (the first evaluation at >= 80% test accuracy) and at the end.
Degrees 2 and 3 (Figure 9's "any low degree") are reported alongside. :func:`probed_teachers` takes a setup
dict, so Figure 9's ablation reruns it at another teacher rate.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from infra.palette import SUPPORT_COLOURS

from .ledger import Claim, Outcome, Rule, Source, register, write_png
from .mlp_claims import FIXED, PAPER

#: (d, k), teacher width, steps and rate, evaluation and probe spacing, seeds, per tier.
_SETUP = {"smoke": dict(d=10, k=4, width=256, steps=4000, lr=0.05, every=100, seeds=(0,)),
          "cpu": dict(d=16, k=4, width=512, steps=10240, lr=0.05, every=256, seeds=(0, 1, 2)),
          "paper": dict(d=100, k=6, width=50000, steps=20_000_000, lr=0.005, lr_a_mult=0.002, every=100_000,
                        seeds=(0, 1, 2))}  # the paper's rate (Figure 2: 5e-3); a-rate 100/m (the parity preset)
DEGREES = (1, 2, 3)


def transition_rows(log: pd.DataFrame) -> pd.DataFrame:
    """Per run: the probe rows at the first evaluation with >= 80% test accuracy (``at="transition"``), the
    first probe (``"start"``) and the last (``"final"``), with the like-with-like gaps per degree:
    ``gap{g}_mean = corr{g}_in_mean - corr{g}_off_mean`` and ``gap{g}_max = corr{g}_in_min - corr{g}_off_max``."""
    rows = []
    probed = log.dropna(subset=["corr1_in_mean"])
    for run, g in probed.groupby("run"):
        g = g.sort_values("step")
        hit = g[g["test_accuracy"] >= 0.8]
        picks = {"start": g.iloc[0], "transition": hit.iloc[0] if len(hit) else g.iloc[-1], "final": g.iloc[-1]}
        for at, r in picks.items():
            row = {"run": int(run), "at": at, "step": int(r["step"]), "test_accuracy": float(r["test_accuracy"])}
            for d in DEGREES:
                if f"corr{d}_in_mean" in r:
                    row[f"corr{d}_in_mean"], row[f"corr{d}_off_mean"] = r[f"corr{d}_in_mean"], r[f"corr{d}_off_mean"]
                    row[f"gap{d}_mean"] = r[f"corr{d}_in_mean"] - r[f"corr{d}_off_mean"]
                    row[f"gap{d}_max"] = r[f"corr{d}_in_min"] - r[f"corr{d}_off_max"]
            rows.append(row)
    return pd.DataFrame(rows)


def probe_config(p: dict):
    """The teachers' config of setup ``p``: probed at every evaluation (exactly over {+-1}^d when d <= 20)."""
    from simulate.config import TeacherConfig

    return TeacherConfig(d=p["d"], k=p["k"], width=p["width"], steps=p["steps"], lr=p["lr"], eval_every=p["every"],
                         checkpoint_every=p["steps"], probe_every=p["every"], seeds=p["seeds"],
                         lr_a_mult=p.get("lr_a_mult", 1.0), device="cpu")


def probed_teachers(p: dict, out: Path, progress: bool = False) -> pd.DataFrame:
    """Train (or reuse) the setup ``p``'s teachers (:func:`probe_config`) below ``out``, in a directory named by
    the config's hash; returns their metrics log (one row per evaluation and run)."""
    from infra.config import config_hash
    from simulate.teacher import train_teacher

    cfg = probe_config(p)
    return train_teacher(cfg, out / config_hash(cfg), progress=progress).metrics()


def _r1(tier: str, out: Path, progress: bool = False) -> Outcome:
    log = probed_teachers(_SETUP[tier], out, progress)
    table = transition_rows(log)
    mid, end = table[table["at"] == "transition"].set_index("run"), table[table["at"] == "final"].set_index("run")
    spike = mid["gap1_mean"] > 0
    fades = end["corr1_in_mean"] < mid["corr1_in_mean"] / 2
    verdict = "PASS" if (spike & fades).all() else "FAIL" if (~spike).all() else "INCONCLUSIVE"
    fmt = lambda s: ", ".join(f"{v:+.3g}" for v in s)  # noqa: E731
    reason = (f"at the middle of the transition (>= 80% accuracy; {len(mid)} teachers) the degree-1 in-support mean "
              f"minus off-support mean is {fmt(mid['gap1_mean'])} (in-support mean {fmt(mid['corr1_in_mean'])}, at "
              f"the end {fmt(end['corr1_in_mean'])}); degree 2: {fmt(mid['gap2_mean'])}; degree 3: "
              f"{fmt(mid['gap3_mean'])}")

    def figure(path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        probed = log.dropna(subset=["corr1_in_mean"])
        fig, axes = plt.subplots(1, len(DEGREES), figsize=(4.2 * len(DEGREES), 3.6))
        for ax, g in zip(axes, DEGREES):
            for side, colour in (("in", SUPPORT_COLOURS["in"]), ("off", SUPPORT_COLOURS["off"])):
                col = f"corr{g}_{side}_mean"
                stats = probed.groupby("step")[col].agg(["mean", "min", "max"])
                ax.plot(stats.index, stats["mean"], color=colour, label=f"{side}-support mean")
                ax.fill_between(stats.index, stats["min"], stats["max"], color=colour, alpha=0.2)
            for t in mid["step"]:
                ax.axvline(t, color="red", lw=0.6, ls=":")
            ax.set(xlabel="teacher step (samples)", ylabel=f"|E p(x) chi_U(x)|, |U| = {g}", title=f"degree {g}")
            ax.legend(fontsize=7)
        write_png(fig, path)

    return Outcome(verdict, reason, {"transition": mid.reset_index().to_dict("records")}, table, figure,
                   {"smoke": "(10, 4), width 256, 1 teacher", "cpu": "(16, 4)-parity, width 512, 10240 steps, exact "
                    "probes every 256 steps, 3 teachers; the paper: (100, 6), width 50000, 20M steps (Figure 2: k = 6)",
                    "paper": "(100, 6)-parity, width 50000 (a GPU job; probes by Monte Carlo)"}[tier])


register(Claim(
    "r1-degree1-spike", "R1: during its phase transition the teacher correlates with the in-support degree-1 "
    "monomials, and the correlation fades with continued training", "mlp",
    Source("progressive", "Section 3.1 (R1), Figure 2 (middle)", PAPER, 97,
           "Importantly, these strong correlations emerge when the teacher learns the sparse parity task (i.e., "
           "during the phase transition) but diminish with continued training."),
    Rule("Per teacher run (3 seeds, exact over {+-1}^d): at the first evaluation with >= 80% test accuracy, the "
         "in-support mean of |E p(x) x_j| minus the off-support mean (like with like), and the in-support mean at "
         "the end of training against its value there; degrees 2 and 3 reported alongside.",
         "PASS if in every run the in-support mean exceeds the off-support mean at the transition and falls below "
         "half of it by the end; FAIL if in every run it does not exceed the off-support mean at the transition; "
         "otherwise INCONCLUSIVE.", FIXED),
    _r1))
