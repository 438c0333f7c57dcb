"""The MLP ablations of the ledger (Appendix C.1): Figure 14 (the teacher's temperature) and Figure 8 (students
10x wider); Figure 9 (a teacher trained at twice the rate) is :mod:`.mlp_claims_fig9`. Every rule was written on 2026-11-30, before
its experiment ran at any tier.

The experiments are R2's and R1's (:mod:`.mlp_claims_r2`, :mod:`.mlp_claims_r1`) with another setup dict.
Claims of one figure share one experiment directory, ``runs/<the figure's first claim>`` (runs are named by
their config's hash, so the second claim reuses the first's runs). Figure 14: per teacher seed one batched
program of two-shot (R2's middle candidate) and one-shot students, every student seed at every temperature
(``StudentConfig.run_temperatures``), so the runs pair by (teacher seed, student seed) across temperatures.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from infra.palette import colour_of

from .ledger import Claim, Outcome, Rule, Source, interval_verdict, register, write_png
from .mlp_claims import FIXED, PAPER, ratio_interval, ratio_panel
from .mlp_claims_r2 import _SETUP as _R2
from .mlp_claims_r2 import (
    TAU_CHANGED, candidate_runs, candidate_steps, r2_verdict, speedup_table, speedup_text, student_config, teacher_panel,
    teachers,
)

#: Figure 14's temperatures (0: the teacher's argmax label); the paper's choice is 1e-4.
TEMPERATURES = (0.0, 1e-4, 1e-2, 1.0)
#: "qualitatively similar": paired median ratios within this factor of 1.
ALIKE = 1.25
WIDER = 10  # Figure 8: students of width 1000 against 100


def _tau(t: float) -> str:
    return "0 (argmax)" if t == 0 else f"{t:g}"


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ------------------------------------------------------------------ Figure 14: the teacher's temperature

def temperature_config(p: dict, tdir, run: int, first: int):
    """Setup ``p``'s students of teacher run ``run`` with first checkpoint ``first``: every student seed at
    every temperature of :data:`TEMPERATURES` (run ``i * len(sseeds) + j``: temperature i, seed j)."""
    n = len(p["sseeds"])
    return dataclasses.replace(student_config(p, tdir), teacher_run=run, first_checkpoint=str(first),
                               seeds=tuple(p["sseeds"]) * len(TEMPERATURES),
                               run_temperatures=tuple(t for t in TEMPERATURES for _ in range(n)))


def temperature_runs(p: dict, out: Path, progress: bool = False):
    """Figure 14's runs for setup ``p``: ``(runs, log, marks)`` as :func:`.mlp_claims_r2.candidate_runs`, the rows
    with a ``temperature`` column and ``student`` in {two-shot, oneshot}."""
    from infra.config import config_hash
    from simulate.student import train_strategies

    tdir, log, saved = teachers(p, out, progress)
    rows, marks = [], []
    for run, tseed in enumerate(p["tseeds"]):
        mid = candidate_steps(log[log["run"] == run], saved)["middle"]
        marks.append({"teacher_seed": tseed, "candidate": "middle", "step": mid})
        cfg = temperature_config(p, tdir, run, mid)
        names = ["two-shot", "oneshot"]
        outs = [out / "students" / config_hash(dataclasses.replace(cfg, strategy=s)) for s in names]
        for name, rd in zip(names, train_strategies(cfg, names, outs, progress=progress)):
            for r in rd.read_json("summary.json")["runs"]:
                rows.append({"teacher_seed": tseed, "student_seed": r["seed"], "student": name,
                             "temperature": cfg.run_temperatures[r["run"]], "samples_to_95": r.get("samples_to_95")})
    runs = pd.DataFrame(rows)
    runs["pair"] = runs["teacher_seed"].astype(str) + "-" + runs["student_seed"].astype(str)
    return runs, log, pd.DataFrame(marks)


def temperature_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The paired ratios median(numerator) / median(denominator) of samples to 95% with 95% bootstrap intervals:
    ``speedup`` (one-shot / two-shot at each tau), ``vs_argmax`` (two-shot at tau / at 0) and ``tau1`` (tau = 1 /
    tau = 1e-4, two-shot and one-shot)."""
    wide = runs.pivot(index="pair", columns=["student", "temperature"], values="samples_to_95")
    specs = [("speedup", t, ("oneshot", t), ("two-shot", t), f"1-shot / 2-shot\ntau {t:g}") for t in TEMPERATURES]
    specs += [("vs_argmax", t, ("two-shot", t), ("two-shot", 0.0), f"2-shot tau {t:g}\n/ tau 0")
              for t in TEMPERATURES[1:]]
    specs += [("tau1", 1.0, (s, 1.0), (s, 1e-4), f"{s} tau 1\n/ tau 1e-4") for s in ("two-shot", "oneshot")]
    med = lambda c: float(np.median(wide[c].astype(float).fillna(np.inf)))  # noqa: E731
    rows = []
    for kind, t, num, den, label in specs:
        est, lo, hi = ratio_interval(wide[num], wide[den])
        rows.append({"comparison": kind, "label": label, "temperature": t, "numerator": f"{num[0]} tau={num[1]:g}",
                     "denominator": f"{den[0]} tau={den[1]:g}", "ratio": est, "ci_lo": lo, "ci_hi": hi,
                     "median_numerator": med(num), "median_denominator": med(den), "pairs": len(wide)})
    return pd.DataFrame(rows)


def _row(table: pd.DataFrame, kind: str, t: float, numerator: str = "") -> pd.Series:
    at = table[(table["comparison"] == kind) & (table["temperature"] == t)]
    return at[at["numerator"].str.startswith(numerator)].iloc[0]


def _iv(r) -> str:
    return f"{r['ratio']:.2f}x [{r['ci_lo']:.2f}, {r['ci_hi']:.2f}]"


def _fmt(values, spec: str = "+.3g") -> str:
    return ", ".join(f"{v:{spec}}" for v in values)


def alike_verdict(intervals) -> str:
    """PASS if every ``(lo, hi)`` lies inside [1/ALIKE, ALIKE], FAIL if any lies wholly outside, else INCONCLUSIVE."""
    if all(1 / ALIKE <= lo and hi <= ALIKE for lo, hi in intervals):
        return "PASS"
    if any(lo > ALIKE or hi < 1 / ALIKE for lo, hi in intervals):
        return "FAIL"
    return "INCONCLUSIVE"


def _temperature_figure(runs, table, marks, log, path) -> None:
    fig, (a, b, c) = _plt().subplots(1, 3, figsize=(18, 4), gridspec_kw={"width_ratios": (1, 1, 1.9)})
    teacher_panel(a, log, marks, "teachers and the two-shot checkpoints")
    xs = np.arange(len(TEMPERATURES))
    for off, (s, colour) in zip((-0.1, 0.1), (("two-shot", colour_of("two-shot")), ("oneshot", colour_of("oneshot")))):
        at = runs[runs["student"] == s]
        v = [at.loc[at["temperature"] == t, "samples_to_95"].astype(float).fillna(np.inf) for t in TEMPERATURES]
        med, q1, q3 = (np.array([np.percentile(x, q) for x in v]) for q in (50, 25, 75))
        b.errorbar(xs + off, med, yerr=[med - q1, q3 - med], fmt="o", capsize=3, color=colour,
                   label=f"{s} (median, quartiles)")
    b.set_yscale("log")
    b.set_xticks(xs, [_tau(t) for t in TEMPERATURES])
    b.set(xlabel="teacher temperature tau", ylabel="student samples to 95% test accuracy", title="students by tau")
    b.legend(fontsize=7)
    ratio_panel(c, list(table["label"]), table["ratio"], table["ci_lo"], table["ci_hi"],
                ylabel="ratio of median samples to 95%", title="paired ratios, 95% bootstrap intervals")
    c.tick_params(axis="x", labelsize=6)
    write_png(fig, path)


_F14_SCALE = {"smoke": "(12, 4)-parity, teacher 256, students 48, tau 0 / 1e-4 / 1e-2 / 1, 1 teacher x 2 student seeds",
              "cpu": "R2's cpu setup: (24, 4)-parity, teacher 512 (23k steps), students 48 (102k steps, T = 2304), "
                     "tau 0 / 1e-4 / 1e-2 / 1, 3 teacher x 5 student seeds; the paper: (100, 6), 50k / 100, 20M "
                     "steps (its Figure 14 sits among the Transformer results of Appendix C.2)",
              "paper": "R2's paper setup: (100, 6)-parity, 50k / 100, 20M steps, T = 1M, 4 temperatures (a GPU job)"}


def _f14(tier: str, out: Path, progress: bool, decide) -> Outcome:
    runs, log, marks = temperature_runs(_R2[tier], out.parent / "f14-hard-labels", progress)
    table = temperature_table(runs)
    verdict, reason = decide(table)
    return Outcome(verdict, reason, {"ratios": table.to_dict("records"), "checkpoints": marks.to_dict("records")},
                   table, lambda path: _temperature_figure(runs, table, marks, log, path), _F14_SCALE[tier])


def _f14_hard(table):
    r = _row(table, "speedup", 1e-4)
    others = "; ".join(f"tau {_tau(t)}: {_iv(_row(table, 'speedup', t))}" for t in TEMPERATURES if t != 1e-4)
    return (interval_verdict(r["ci_lo"], r["ci_hi"], 1.0)[0],
            f"two-shot (middle checkpoint) over one-shot at tau = 1e-4: {_iv(r)} (median samples to 95% "
            f"{r['median_denominator']:.0f} against {r['median_numerator']:.0f}); at {others}")


def _f14_alike(table):
    rs = [_row(table, "vs_argmax", t) for t in (1e-4, 1e-2)]
    return (alike_verdict([(r["ci_lo"], r["ci_hi"]) for r in rs]),
            "two-shot students' median samples to 95% at tau / at tau = 0 (argmax): "
            + "; ".join(f"tau {r['temperature']:g}: {_iv(r)}" for r in rs)
            + f" (alike: inside [{1 / ALIKE:g}, {ALIKE:g}]); tau 1: {_iv(_row(table, 'vs_argmax', 1.0))}")


def _f14_one(table):
    r, o = _row(table, "tau1", 1.0, "two-shot"), _row(table, "tau1", 1.0, "oneshot")
    return (interval_verdict(r["ci_lo"], r["ci_hi"], 1.0)[0],
            f"two-shot students' median samples to 95% at tau = 1 / at tau = 1e-4: {_iv(r)} "
            f"({r['median_numerator']:.0f} against {r['median_denominator']:.0f}); one-shot's: {_iv(o)}")


_F14_STAT = ("R2's teachers and students (the tier's setup) with the teacher's softmax at temperature tau in {0 "
             "(argmax), 1e-4, 1e-2, 1}, the same tau for two-shot students (first checkpoint: R2's middle candidate, "
             "the first step at 80% test accuracy) and one-shot students; ratios of median samples to 95% test accuracy "
             "paired over the (teacher seed, student seed) runs, 95% percentile bootstrap intervals (2000 resamples, "
             "seed 0): ")
register(Claim(
    "f14-hard-labels", "Figure 14: the benefit of (2, T)-progressive over one-shot distillation holds with hard "
    "labels (teacher temperature 1e-4)", "mlp",
    Source("progressive", "Figure 14, Appendix C.2", PAPER, 751,
           "The benefit of progressive distillation holds with hard labels"),
    Rule(_F14_STAT + "median(one-shot) / median(two-shot) per tau, decided at tau = 1e-4 (the paper's choice); "
         "the other temperatures reported alongside.",
         "PASS if the interval at tau = 1e-4 lies above 1; FAIL if it lies at or below 1; otherwise INCONCLUSIVE.",
         FIXED),
    lambda tier, out, progress=False: _f14(tier, out, progress, _f14_hard)))

register(Claim(
    "f14-low-temperatures-alike", "Figure 14: teacher temperatures at or below 0.01 give two-shot students "
    "qualitatively the results of tau = 0 (argmax labels)", "mlp",
    Source("progressive", "Appendix C.2, ablation with various temperatures", PAPER, 727,
           "setting the temperature to be below 0.01 is sufficient to get results that are qualitatively similar "
           "to using $\\tau = 0$"),
    Rule(_F14_STAT + f"median(two-shot at tau) / median(two-shot at tau = 0) for tau = 1e-4 and 1e-2; 'qualitatively "
         f"similar' read as within a factor {ALIKE:g}; tau = 1 reported alongside.",
         f"PASS if both intervals lie inside [{1 / ALIKE:g}, {ALIKE:g}]; FAIL if either lies wholly outside it; "
         "otherwise INCONCLUSIVE.", FIXED),
    lambda tier, out, progress=False: _f14(tier, out, progress, _f14_alike),
    run_dirs=("f14-hard-labels",)))

register(Claim(
    "f14-temperature-one-slower", "Figure 14: a teacher temperature of 1 makes two-shot students learn slower "
    "than tau = 1e-4", "mlp",
    Source("progressive", "Appendix C.2, ablation with various temperatures", PAPER, 727,
           "Note that using a higher temperature such as $\\tau = 1$ can make learning slower"),
    Rule(_F14_STAT + "median(two-shot at tau = 1) / median(two-shot at tau = 1e-4); the one-shot students' ratio "
         "reported alongside.",
         "PASS if the interval lies above 1 (tau = 1 slower); FAIL if it lies at or below 1; otherwise INCONCLUSIVE.",
         FIXED),
    lambda tier, out, progress=False: _f14(tier, out, progress, _f14_one),
    run_dirs=("f14-hard-labels",)))


# ------------------------------------------------------------------ Figure 8: students 10x wider

def _f8(tier: str, out: Path, progress: bool = False) -> Outcome:
    p = _R2[tier]
    teacher = teachers(p, out, progress)
    tables = {}
    for width in (p["sw"], WIDER * p["sw"]):
        runs, _, _ = candidate_runs({**p, "sw": width}, out, progress, teacher=teacher)
        tables[width] = speedup_table(runs)
    narrow, wide = tables.values()
    reason = (f"students of width {WIDER * p['sw']}, speed-up over one-shot (median samples to 95%, 95% interval): "
              f"{speedup_text(wide)}; at R2's width {p['sw']} (the same teachers): {speedup_text(narrow)}")
    table = pd.concat([t.reset_index().assign(student_width=w) for w, t in tables.items()], ignore_index=True)

    def figure(path) -> None:
        fig, ax = _plt().subplots(figsize=(7, 3.8))
        xs = np.arange(len(narrow))
        for i, (w, t) in enumerate(tables.items()):
            est, lo, hi = (t[c].to_numpy(float) for c in ("speedup_vs_oneshot", "ci_lo", "ci_hi"))
            ax.errorbar(xs + 0.15 * (2 * i - 1), est, yerr=[est - lo, hi - est], fmt="o", capsize=3,
                        label=f"students of width {w}")
        ax.axhline(1.0, ls="--", color="gray", lw=1)
        ax.set_yscale("log")
        ax.set_xticks(xs, list(narrow.index), fontsize=7)
        ax.set(xlabel="first checkpoint of the two-shot students (and ce)",
               ylabel="one-shot / student (median samples to 95%)",
               title="(2, T)-progressive by first checkpoint, two student widths, 95% intervals")
        ax.legend(fontsize=7)
        write_png(fig, path)

    return Outcome(r2_verdict(wide), reason, {"candidates": table.to_dict("records")}, table, figure,
                   {"smoke": "(12, 4)-parity, teacher 256, students 48 and 480, 1 teacher x 2 student seeds",
                    "cpu": "R2's cpu setup with students 480 beside R2's 48 (the paper: 1000 beside 100): "
                           "(24, 4)-parity, teacher 512, 102k student steps, T = 2304, 3 teacher x 5 student seeds",
                    "paper": "(100, 6)-parity, teacher 50k, students 1000 and 100, 20M steps, T = 1M (GPU)"}[tier])


register(Claim(
    "f8-wide-students", "Figure 8: R2 for students 10x wider: (2, T)-progressive beats one-shot only with a "
    "checkpoint inside the teacher's phase transition", "mlp",
    Source("progressive", "Footnote 7, Figure 8", PAPER, 107,
           "We show similar results for width-1000 students (Figure 8)"),
    Rule(f"R2's statistic (each candidate's two-shot students against one-shot: median samples to 95% paired over "
         f"the (teacher seed, student seed) runs, 95% bootstrap interval) for students {WIDER}x as wide as R2's (the "
         "paper: 1000 against 100), with R2's teachers, rates, steps, T and seeds; R2's width reported alongside.",
         "R2's decision on the wide students: PASS if the middle candidate's interval lies above 1 and neither the "
         "beginning's nor the end's does; FAIL if the middle's lies at or below 1, or the beginning's or end's lies "
         "above 1 with a point estimate at least the middle's; otherwise INCONCLUSIVE.", FIXED,
         TAU_CHANGED + "At tau = 1 the verdict was INCONCLUSIVE: middle 1.06x [0.94, 1.21], end 1.06x [1.00, 1.13], "
         "beginning 1.00x, plateau 0.85x [0.77, 0.89]."),
    _f8))
