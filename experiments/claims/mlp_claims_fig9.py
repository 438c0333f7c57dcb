"""The Figure 9 ablation of the ledger (Appendix C.1, line 702): a teacher trained at twice the rate (the paper:
1e-2 against Figure 2's 5e-3). Rules written on 2026-11-30, before the experiments ran at any tier.

Two experiments: R2's (:mod:`.mlp_claims_r2`) with the teacher's rate doubled (which first checkpoint speeds
students up most), and R1's probed teachers (:mod:`.mlp_claims_r1`) at both rates with the same seeds (the
degree-1 against the degree-2 / degree-3 in-support gaps at the middle of the transition). The two probe
claims share one experiment directory, ``runs/f9-degree23-gap``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .ledger import Claim, Outcome, Rule, Source, interval_verdict, register, write_png
from .mlp_claims import FIXED, PAPER, ratio_interval, ratio_panel
from .mlp_claims_ablations import _fmt, _plt
from .mlp_claims_r1 import _SETUP as _R1
from .mlp_claims_r1 import probed_teachers, transition_rows
from .mlp_claims_r2 import _SETUP as _R2
from .mlp_claims_r2 import CANDIDATES, TAU_CHANGED, candidate_runs, speedup_table, speedup_text, teacher_panel

FASTER = 2  # Figure 9: teacher rate 1e-2 against 5e-3
#: Figure 9's probed teachers: R1's setup with 5 seeds and probes every 128 steps (both rates alike).
_PROBE = {"smoke": {**_R1["smoke"], "seeds": (0, 1)}, "cpu": {**_R1["cpu"], "every": 128, "seeds": (0, 1, 2, 3, 4)},
          "paper": _R1["paper"]}  # the paper: 5e-3 against 1e-2


# ------------------------------------------------------------------ Figure 9: a teacher trained at twice the rate

_F9 = {"smoke": {**_R2["smoke"], "tlr": FASTER * _R2["smoke"]["tlr"]},
       "cpu": {**_R2["cpu"], "tlr": FASTER * _R2["cpu"]["tlr"]}, "paper": {**_R2["paper"], "tlr": 0.01}}


def middle_rivals(runs: pd.DataFrame) -> pd.DataFrame:
    """Per candidate other than the middle (the index): median(samples to 95% of the middle's students) /
    median(the candidate's), paired, with its 95% bootstrap interval (above 1: the candidate is faster)."""
    wide = runs.pivot(index="pair", columns="student", values="samples_to_95")
    rows = [dict(zip(("ratio", "ci_lo", "ci_hi"), ratio_interval(wide["middle"], wide[c])), student=c)
            for c in CANDIDATES if c != "middle"]
    return pd.DataFrame(rows).set_index("student")


def middle_best_verdict(table: pd.DataFrame, rivals: pd.DataFrame) -> str:
    """f9-higher-rate-middle-best's decision on a :func:`.mlp_claims_r2.speedup_table` and :func:`middle_rivals`."""
    mid = table.loc["middle"]
    v, _ = interval_verdict(mid["ci_lo"], mid["ci_hi"], 1.0)
    if v == "FAIL" or (rivals["ci_lo"] > 1).any():
        return "FAIL"
    if v == "PASS" and mid["speedup_vs_oneshot"] >= table.loc[list(CANDIDATES), "speedup_vs_oneshot"].max():
        return "PASS"
    return "INCONCLUSIVE"


def _f9_middle(tier: str, out: Path, progress: bool = False) -> Outcome:
    runs, log, marks = candidate_runs(_F9[tier], out, progress)
    table, rivals = speedup_table(runs), middle_rivals(runs)
    reason = (f"teachers at rate {_F9[tier]['tlr']:g}: speed-up over one-shot {speedup_text(table)}; the middle's "
              "students against each other candidate's (median(middle) / median(candidate)): "
              + "; ".join(f"{c} {r.ratio:.2f}x [{r.ci_lo:.2f}, {r.ci_hi:.2f}]" for c, r in rivals.iterrows()))
    out_table = pd.concat([table.reset_index().rename(columns={"speedup_vs_oneshot": "ratio"}).assign(
        comparison="one-shot / candidate"), rivals.reset_index().assign(comparison="middle / candidate")],
        ignore_index=True)

    def figure(path) -> None:
        fig, (a, b) = _plt().subplots(1, 2, figsize=(12, 3.8))
        teacher_panel(a, log, marks, f"teachers at rate {_F9[tier]['tlr']:g} and the candidates")
        ratio_panel(b, [f"{x.comparison.split(' / ')[0].replace('one-shot', '1-shot')}\n/ {x.student}"
                        for x in out_table.itertuples()],
                    out_table["ratio"], out_table["ci_lo"], out_table["ci_hi"],
                    ylabel="ratio of median samples to 95%", title="speed-ups over one-shot, then over the middle")
        write_png(fig, path)

    return Outcome(middle_best_verdict(table, rivals), reason, {"rows": out_table.to_dict("records"),
                   "checkpoints": marks.to_dict("records")}, out_table, figure,
                   {"smoke": "(12, 4)-parity, teacher 256 at rate 0.1, students 48, 1 teacher x 2 student seeds",
                    "cpu": "R2's cpu setup with the teachers at rate 0.1 (R2: 0.05; the paper: 1e-2 against 5e-3): "
                           "(24, 4)-parity, teacher 512, students 48, T = 2304 (the paper's Figure 9: T = 0.1M, a "
                           "tenth of Figure 2's; here R2's T, one factor changed), 3 teacher x 5 student seeds",
                    "paper": "(100, 6)-parity, teacher 50k at rate 1e-2, students 100, T = 1M (a GPU job)"}[tier])


register(Claim(
    "f9-higher-rate-middle-best", "Figure 9: with a teacher trained at twice the rate, the checkpoint in the middle "
    "of its transition accelerates (2, T)-progressive distillation the most", "mlp",
    Source("progressive", "Figure 9", PAPER, 702,
           "For $(2, 0.1M)$ progressive distillation, the checkpoint that lies in the middle of the second phase "
           "accelerates training the most."),
    Rule(f"R2's experiment with teachers trained at {FASTER}x R2's rate (the paper: 1e-2 against 5e-3), candidates "
         "read off each teacher's own curve: each candidate's speed-up over one-shot and, for every other candidate "
         "c, median(samples to 95% of the middle's students) / median(c's), paired over the (teacher seed, student "
         "seed) runs, 95% bootstrap intervals (2000 resamples, seed 0).",
         "PASS if the middle's speed-up interval lies above 1 and its point estimate is the largest of the five "
         "candidates'; FAIL if the middle's interval lies at or below 1, or another candidate beats the middle (its "
         "interval of median(middle) / median(c) lies above 1); otherwise INCONCLUSIVE.", FIXED,
         TAU_CHANGED + "At tau = 1 the verdict was INCONCLUSIVE: middle 1.33x [0.93, 2.88], the largest point "
         "estimate, no candidate beating the middle."),
    _f9_middle))


def probe_rates(tier: str, out: Path, progress: bool = False):
    """Figure 9's probed teachers at the base rate and at :data:`FASTER` times it (same seeds, so the same inits
    and samples): ``(rows, logs)``, R1's :func:`.mlp_claims_r1.transition_rows` of both with ``lr`` and ``seed``
    columns and the signal-to-background ratios ``snr{g} = corr{g}_in_mean / corr{g}_off_mean``."""
    p, parts, logs = _PROBE[tier], [], {}
    for lr in (p["lr"], FASTER * p["lr"]):
        logs[lr] = probed_teachers({**p, "lr": lr}, out, progress)
        rows = transition_rows(logs[lr]).assign(lr=lr)
        rows["seed"] = [p["seeds"][r] for r in rows["run"]]
        parts.append(rows)
    rows = pd.concat(parts, ignore_index=True)
    for g in (1, 2, 3):
        rows[f"snr{g}"] = rows[f"corr{g}_in_mean"] / rows[f"corr{g}_off_mean"]
    return rows, logs


def degree23_verdict(fast: pd.DataFrame) -> str:
    """f9-degree23-gap's decision on the faster teachers' transition rows."""
    pos = [fast[f"gap{g}_mean"] > 0 for g in (2, 3)]
    return "PASS" if all(v.all() for v in pos) else "FAIL" if any(not v.any() for v in pos) else "INCONCLUSIVE"


def degree1_weaker_verdict(base: pd.Series, fast: pd.Series) -> str:
    """f9-degree1-gap-weaker's decision on the degree-1 ratios per seed (two Series indexed by seed)."""
    lower = fast.loc[base.index] < base
    return "PASS" if lower.all() else "FAIL" if not lower.any() else "INCONCLUSIVE"


def _probe_figure(rows: pd.DataFrame, logs: dict, path) -> None:
    fig, axes = _plt().subplots(1, 4, figsize=(17, 3.8))
    colours = dict(zip(logs, ("#1f77b4", "#d62728")))
    for ax, g in zip(axes, (1, 2, 3)):
        for lr, log in logs.items():
            stats = log.dropna(subset=[f"corr{g}_in_mean"]).groupby("step")
            for side, ls in (("in", "-"), ("off", "--")):
                ax.plot(stats[f"corr{g}_{side}_mean"].mean(), ls=ls, color=colours[lr], lw=1,
                        label=f"rate {lr:g}, {side}-support mean")
            for t in rows.loc[(rows["lr"] == lr) & (rows["at"] == "transition"), "step"]:
                ax.axvline(t, color=colours[lr], lw=0.5, ls=":")
        ax.set(xlabel="teacher step (samples)", ylabel=f"|E p(x) chi_U(x)|, |U| = {g} (mean over seeds)",
               title=f"degree {g} (dotted: each run's 80% point)")
        ax.legend(fontsize=6)
    mid = rows[rows["at"] == "transition"]
    for i, (lr, at) in enumerate(mid.groupby("lr")):
        for g in (1, 2, 3):
            axes[3].scatter(np.full(len(at), g + 0.1 * (2 * i - 1)), at[f"snr{g}"], color=colours[lr], s=14,
                            label=f"rate {lr:g}" if g == 1 else None)
    axes[3].axhline(1.0, ls="--", color="gray", lw=1)
    axes[3].set(yscale="log", xlabel="degree |U|", ylabel="in-support mean / off-support mean",
                title="at each run's 80% point")
    axes[3].set_xticks([1, 2, 3])
    axes[3].legend(fontsize=7)
    write_png(fig, path)


_F9_PROBE_SCALE = {"smoke": "(10, 4)-parity, width 256, rates 0.05 and 0.1, 2 teachers, exact probes every 100 steps",
                   "cpu": "R1's setup at rates 0.05 and 0.1 (the paper: 5e-3 and 1e-2): (16, 4)-parity, width 512, "
                          "10240 steps, 5 teachers per rate, exact probes over {+-1}^16 every 128 steps (degrees 2 "
                          "and 3: the in-support monomials against 100 sampled off-support ones); the paper: (100, 6), "
                          "width 50000",
                   "paper": "(100, 6)-parity, width 50000, rates 5e-3 and 1e-2, Monte Carlo probes (a GPU job)"}


def _f9_probes(tier: str, out: Path, progress: bool, decide) -> Outcome:
    rows, logs = probe_rates(tier, out.parent / "f9-degree23-gap", progress)
    mid = rows[rows["at"] == "transition"]
    base, fast = (mid[mid["lr"] == lr].set_index("seed") for lr in logs)
    verdict, reason = decide(base, fast)
    return Outcome(verdict, reason, {"transition": mid.to_dict("records")}, rows,
                   lambda path: _probe_figure(rows, logs, path), _F9_PROBE_SCALE[tier])


def _f9_gap(base, fast):
    return (degree23_verdict(fast),
            f"at rate {fast['lr'].iloc[0]:g}, at each run's first evaluation at >= 80% accuracy, in-support mean minus "
            f"off-support mean: degree 2 {_fmt(fast['gap2_mean'])}, degree 3 {_fmt(fast['gap3_mean'])}, degree 1 "
            f"{_fmt(fast['gap1_mean'])} (min minus max: degree 2 {_fmt(fast['gap2_max'])}, degree 3 "
            f"{_fmt(fast['gap3_max'])}); at rate {base['lr'].iloc[0]:g}: degree 2 {_fmt(base['gap2_mean'])}, degree 3 "
            f"{_fmt(base['gap3_mean'])}")


def _f9_degree1(base, fast):
    return (degree1_weaker_verdict(base["snr1"], fast["snr1"]),
            f"degree-1 in-support mean / off-support mean at each run's 80% point, seeds {list(base.index)}: rate "
            f"{fast['lr'].iloc[0]:g} {_fmt(fast['snr1'], '.3g')} against rate {base['lr'].iloc[0]:g} "
            f"{_fmt(base['snr1'], '.3g')}; at the higher rate degree 2 {_fmt(fast['snr2'], '.3g')}, degree 3 "
            f"{_fmt(fast['snr3'], '.3g')}")


_F9_STAT = (f"Teachers of R1's setup at its rate and at {FASTER}x it (the paper: 5e-3 and 1e-2; the same seeds, so the "
            "same inits and samples), probed exactly over {+-1}^d (d <= 20); at each run's first evaluation with >= "
            "80% test accuracy (the middle of its transition): ")
register(Claim(
    "f9-degree23-gap", "Figure 9: a teacher trained at twice the rate correlates more with the in-support "
    "degree-2 and degree-3 monomials than with the rest, in the middle of its transition", "mlp",
    Source("progressive", "Figure 9", PAPER, 702,
           "correlations to degree-2 and degree-3 monomials showed a clean gap between in-support and off-support "
           "variables at the middle of the phase transition"),
    Rule(_F9_STAT + "per degree g in {2, 3} of the faster teachers, the in-support mean of |E p(x) chi_U(x)| minus "
         "the mean over the probed off-support U (the paper's 'rest': at least one index outside S), like with like; "
         "degree 1, the in-support min minus off-support max, and the base rate reported alongside.",
         "PASS if at both degree 2 and degree 3 the in-support mean exceeds the off-support mean in every run; FAIL "
         "if at degree 2 or at degree 3 it exceeds it in no run; otherwise INCONCLUSIVE.", FIXED),
    lambda tier, out, progress=False: _f9_probes(tier, out, progress, _f9_gap)))

register(Claim(
    "f9-degree1-gap-weaker", "Figure 9: the degree-1 in/off-support gap at the middle of the transition is less "
    "clean for a teacher trained at twice the rate", "mlp",
    Source("progressive", "Figure 9", PAPER, 702,
           "for a teacher that is trained with a higher learning rate 10^{-2} , we didn't find such a clean gap in "
           "correlations for degree-1 monomials"),
    Rule(_F9_STAT + "per seed, the degree-1 signal-to-background ratio in-support mean / off-support mean of "
         "|E p(x) x_j| of the faster teacher against the base-rate teacher of the same seed; degrees 2 and 3 reported "
         "alongside.",
         "PASS if the ratio is lower at the higher rate for every seed; FAIL if it is at least as high for every "
         "seed; otherwise INCONCLUSIVE.", FIXED),
    lambda tier, out, progress=False: _f9_probes(tier, out, progress, _f9_degree1),
    run_dirs=("f9-degree23-gap",)))
