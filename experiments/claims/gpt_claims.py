"""The GPT claims of the ledger (Appendix E, R7, Figures 30-31 of ``001_eef68ba6c826acd6.txt``, lines 984-1090):
next-token students trained with the boundary-level losses of eqs. (9)-(10) at levels 4, 3 and 2, T0/2-equal-split
progressive distillation against one-shot distillation. Rules written 2026-11-30 after the pilots below (teacher
seed 0, student seeds 0-2) and before the cpu-tier runs (teacher seed 1, student seeds 10-12).

Levels. The engine's ``boundary_level`` (:class:`distill.tasks.NextTokenTask`) numbers levels as Appendix E does,
from the leaves: level 1 selects every token (the usual autoregressive loss), and level l the right ends of the
spans of the non-terminals at distance ``D - l`` from the root, Definition 4.3's level ``D - l`` (``D`` = the
grammar's depth, the root at distance 0 and the pre-terminals at ``D - 1``). So ``C^(l1)`` is contained in
``C^(l2)`` for ``l1 >= l2`` (line 996) and fewer tokens count as the level rises. cfg3f has D = 7 ("6 levels in the
generation process", line 1000): App. E levels 4 / 3 / 2 are Definition 4.3's levels 3 / 4 / 5. On the cpu tier's
random:levels=5 (D = 5) they are Definition 4.3's levels 1 / 2 / 3: the ends of the root's children (2-3 tokens a
sentence), of their children, and of the spans just above the pre-terminals (every 2-3 tokens).

One teacher per level (App. E trains the teacher with l^(l), eq. (9), and the students with l_DL^(l), eq. (10);
in the engine a student inherits its teacher's task), and per level two student programs of the same seeds (inits,
samples): ``oneshot`` and ``equal-split`` (kappa = 1/2, split over the teacher's steps: T0/2 student steps over C_1,
2 C_1, ..., then the final teacher), tau = 1e-4 (App. D.6). C_1 is the engine's automatic choice, the middle of the
teacher's rapid rise of held-out accuracy after its first 10% (Figure 29's caption: "roughly picked at the center of
the second phase"); the paper tier takes T0/20 = 400 (App. E's "1/20th fraction of training"). Runs live below
``out.parent / "gpt-shared"`` (named by config hash), shared by both claims and reused by a rerun.

Choosing the cpu tier (pilots; one core; 2 layers, head dim 8, batch 64, cosine after warmup, 256 held-out
sentences). random:levels=5,seed=1 (36-69 tokens), 8-head teachers of 400 steps at lr 3e-3 (0.1 s a step): held-out
accuracy on the level's tokens 0.979 (level 4), 0.999 (level 3), 0.909 (level 2); each reaches ~0.85 by step 50-100
with no plateau (level 4 rises 0.83 -> 0.96 between steps 100 and 200). Students of the level-4 teacher, 300 steps,
3 seeds (65-80 s a program; 2 and 4 heads cost the same): 2 heads at lr 1e-2, C_1 = 25 (T0/20): one-shot ahead at
every evaluation (0.840 / 0.803 at step 50, 0.945 / 0.926 at 300); 2 heads at lr 3e-3, C_1 = 25: one-shot ahead
(0.850 / 0.793 at 50, 0.922 / 0.910 at 300); 4 heads at lr 1e-2, C_1 = auto (150: schedule 150 / 300 / final,
100 steps each): one-shot ahead to step 150 (0.908 / 0.895), progressive ahead at 200 (0.932 / 0.926), one-shot at
300 (0.954 / 0.949), held-out loss lower for one-shot throughout. random:levels=5,seed=1,rules=4 (App. D.5: cfg3f has
3-4 rules per non-terminal; 28-81 tokens, 0.2 s a teacher step) is harder (a level-4 teacher of 400 steps: 0.63)
but shows no transition either. random:levels=4 makes level 4 the root (one token a sentence) and levels=6 (72-207
tokens) is 3x dearer. No student showed a plateau that distillation could shorten: the setting is the last pilot's
(4 heads, lr 1e-2, C_1 auto), where the curves are closest to the paper's regime (the student learns the teacher's
late improvement), and the pilots predict that one-shot leads at the budget. The cpu tier took 7.5 min on one
core (2026-11-30): both claims FAIL by their rules (one-shot's loss is lower over the budget at every level, the
gap largest at level 4); past the budget (after C_1 = 100, 200, 300 and on the
final teacher) the progressive students' median loss is the lower one at all three levels (the figure), which no
rule here tests.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .ledger import Claim, Outcome, Rule, Source, interval_verdict, register, write_png
from .mlp_claims import FIXED, PAPER
from .pcfg_claims import combine, diff_interval

__all__ = ["SETUP", "LEVELS", "teacher_config", "student_config", "window_means", "level_gaps", "progressive_verdict",
           "shrink_verdict"]

_SHARED = "gpt-shared"
TAU = 1e-4  # the teacher temperature of App. D.6 (line 936)
LEVELS = (4, 3, 2)  # App. E's losses L^(4), L^(3), L^(2) (line 1000)
STUDENTS = ("oneshot", "equal-split")

SETUP = {
    "smoke": dict(grammar="random:levels=4,seed=1", tlayers=2, theads=4, tsteps=80, tlr=3e-3, twarmup=8, every=10,
                  slayers=2, sheads=2, ssteps=40, slr=1e-2, swarmup=4, budget=20, batch=32, tseed=0, seeds=(0, 1),
                  eval_size=64, first="auto", device="cpu"),
    "cpu": dict(grammar="random:levels=5,seed=1", tlayers=2, theads=8, tsteps=400, tlr=3e-3, twarmup=40, every=25,
                slayers=2, sheads=4, ssteps=300, slr=1e-2, swarmup=30, budget=150, batch=64, tseed=1,
                seeds=(10, 11, 12), eval_size=256, first="auto", device="cpu"),
    # App. E / D.5-D.6: cfg3f, 4 layers, a 32-head teacher (8000 steps at batch 512), 8-head students (Figure 30;
    # Figure 31: 16), C_1 = T0/20 (line 1027)
    "paper": dict(grammar="cfg3f", tlayers=4, theads=32, tsteps=8000, tlr=1e-3, twarmup=400, every=100, slayers=4,
                  sheads=8, ssteps=4000, slr=1e-3, swarmup=200, budget=1000, batch=512, tseed=0,
                  seeds=(0, 1, 2, 3, 4), eval_size=1024, first="400", device="auto"),
}
_SCALE = {"smoke": "random:levels=4,seed=1 (15-23 tokens; level 4 is the root: the last token only), 2 layers, 4-head "
                   "teachers (80 steps), 2-head students (40 steps, budget 20), batch 32, 2 student seeds",
          "cpu": "random:levels=5,seed=1 (36-69 tokens, depth 5), 2 layers, 8-head teachers (width 64, 400 steps, "
                 "lr 3e-3) per level, 4-head students (width 32, 300 steps, lr 1e-2, budget 150 steps), batch 64, "
                 "1 teacher x 3 student seeds per level; the paper: cfg3f (depth 7, 191-364 tokens), 4 layers, a "
                 "32-head teacher of 8000 steps and 8- and 16-head students at batch 512",
          "paper": "cfg3f, 4 layers, 32-head teachers (8000 steps) per level and 8-head students (4000 steps, C_1 = "
                   "400, budget 1000 steps), batch 512, 5 student seeds (a GPU job)"}


def teacher_config(p: dict, level: int):
    """The next-token teacher of setup ``p`` trained with l^(level) (eq. (9)); a checkpoint every ``every`` steps,
    no measures or probes."""
    from distill.config import PcfgTeacherConfig

    return PcfgTeacherConfig(grammar=p["grammar"], objective="next-token", boundary_level=level, layers=p["tlayers"],
                             heads=p["theads"], steps=p["tsteps"], batch=p["batch"], lr=p["tlr"], warmup=p["twarmup"],
                             eval_every=p["every"], eval_size=p["eval_size"], checkpoint_every=p["every"],
                             measure_every=0, probe_every=0, seeds=(p["tseed"],), device=p["device"])


def student_config(p: dict, teacher: str, strategy: str):
    """A student of setup ``p`` (all its seeds) of the teacher in directory ``teacher``: ``oneshot`` or
    ``equal-split`` (kappa = 1/2 over the teacher's steps, C_1 = ``p["first"]``), tau = 1e-4."""
    from distill.config import PcfgStudentConfig

    return PcfgStudentConfig(teacher=teacher, strategy=strategy, layers=p["slayers"], heads=p["sheads"],
                             steps=p["ssteps"], batch=p["batch"], lr=p["slr"], warmup=p["swarmup"], seeds=p["seeds"],
                             temperature=TAU, first_checkpoint=p["first"] if strategy == "equal-split" else "auto",
                             kappa=0.5, split="teacher", eval_every=p["every"], eval_size=p["eval_size"],
                             measure_every=0, probe_every=0, device=p["device"])


def window_means(log: pd.DataFrame, budget: int) -> pd.DataFrame:
    """Per run of a student log (``step``, ``seed``, ``test_loss``, ``test_accuracy``): the means over its
    evaluations at steps in ``(0, budget]``: one row per seed, columns ``window_loss`` (nats) and
    ``window_accuracy``."""
    w = log[(log["step"] > 0) & (log["step"] <= budget)]
    if w.empty:
        raise ValueError(f"no evaluation in (0, {budget}]")
    g = w.groupby("seed")[["test_loss", "test_accuracy"]].mean()
    return g.rename(columns={"test_loss": "window_loss", "test_accuracy": "window_accuracy"})


def level_gaps(runs: pd.DataFrame) -> pd.DataFrame:
    """Per level of ``runs`` (rows ``level``, ``student``, ``seed``, ``window_loss``): the gap one-shot minus
    progressive (equal-split) window loss, median over seeds with its paired 95% bootstrap interval
    (:func:`~experiments.claims.pcfg_claims.diff_interval`); one row per level."""
    rows = []
    for level, at in runs.groupby("level", sort=False):
        w = at.pivot(index="seed", columns="student", values="window_loss")
        est, lo, hi = diff_interval(w["oneshot"], w["equal-split"])
        rows.append({"level": int(level), "gap": est, "ci_lo": lo, "ci_hi": hi, "seeds": len(w),
                     "oneshot": float(w["oneshot"].median()), "progressive": float(w["equal-split"].median())})
    return pd.DataFrame(rows)


def progressive_verdict(gaps: pd.DataFrame) -> str:
    """Claim (a): PASS if every level's gap interval lies above 0, FAIL if any lies at or below 0."""
    return combine(interval_verdict(x.ci_lo, x.ci_hi, 0.0)[0] for x in gaps.itertuples())


def shrink_verdict(runs: pd.DataFrame, high: int = 4, low: int = 2) -> tuple[str, tuple[float, float, float]]:
    """Claim (b) on ``runs`` (as :func:`level_gaps`): the per-seed gap at level ``high`` against that at level
    ``low``, ``median(gap_high) - median(gap_low)`` paired by seed with its 95% bootstrap interval; PASS if it lies
    above 0, FAIL if at or below 0, otherwise INCONCLUSIVE. Returns ``(verdict, (estimate, lo, hi))``."""
    def gap(level):
        w = runs[runs["level"] == level].pivot(index="seed", columns="student", values="window_loss")
        return w["oneshot"] - w["equal-split"]

    g_hi, g_lo = gap(high), gap(low)
    seeds = g_hi.index.intersection(g_lo.index)
    est, lo, hi = diff_interval(g_hi[seeds], g_lo[seeds])
    return interval_verdict(lo, hi, 0.0)[0], (est, lo, hi)


# ------------------------------------------------------------------ the shared runs

def _runs(tier: str, root: Path, progress: bool):
    """Train (or reuse) per level the teacher and its one-shot and equal-split students below ``root``. Returns
    ``(runs, logs, teachers)``: ``runs`` one row per (level, student, seed) with the window means and final
    numbers, ``logs[(level, student)]`` the student's metrics, ``teachers[level]`` its summary and C_1."""
    from distill.runs import train_student, train_teacher
    from infra.config import config_hash

    p = SETUP[tier]
    rows, logs, teachers = [], {}, {}
    for level in LEVELS:
        tcfg = teacher_config(p, level)
        trd = train_teacher(tcfg, root / "teacher" / config_hash(tcfg), progress=progress)
        tsum = trd.read_json("summary.json")
        t0 = tsum["runs"][0]
        teachers[level] = {"final_accuracy": t0["final_accuracy"], "final_loss": t0["final_loss"]}
        for name in STUDENTS:
            cfg = student_config(p, str(trd.path), name)
            rd = train_student(cfg, root / "students" / config_hash(cfg), progress=progress)
            log, summ = rd.metrics(), rd.read_json("summary.json")
            if name == "equal-split":
                teachers[level]["first_checkpoint"] = summ["checkpoint_choice"].get("step")
                teachers[level]["schedule"] = summ["schedule"]
            logs[(level, name)] = log
            win = window_means(log, p["budget"])
            for r in summ["runs"]:
                rows.append({"level": level, "student": name, "seed": r["seed"], **win.loc[r["seed"]].to_dict(),
                             "final_loss": r["final_loss"], "final_accuracy": r["final_accuracy"]})
    return pd.DataFrame(rows), logs, teachers


def _figure(logs: dict, gaps: pd.DataFrame, runs: pd.DataFrame, budget: int, batch: int, title: str):
    def draw(path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(LEVELS) + 1, figsize=(4 * (len(LEVELS) + 1), 3.6))
        for ax, level in zip(axes, LEVELS):
            for name, label in (("oneshot", "one-shot"), ("equal-split", "T0/2-equal-split")):
                g = logs[(level, name)].groupby("samples")["test_loss"].median()
                ax.plot(g.index, g.to_numpy(), lw=1.2, label=label)
            ax.axvline(budget * batch, color="gray", ls="--", lw=0.8, label="budget")
            ax.set_yscale("log")
            ax.set(xlabel="student samples", ylabel=f"held-out loss on level-{level} tokens",
                   title=f"loss l_DL^({level}) (median over seeds)")
            ax.legend(fontsize=7)
        ax = axes[-1]
        xs = np.arange(len(gaps))
        ax.errorbar(xs, gaps["gap"], yerr=[gaps["gap"] - gaps["ci_lo"], gaps["ci_hi"] - gaps["gap"]], fmt="o",
                    capsize=4, color="#2ca02c", label="median, 95% interval")
        for i, level in enumerate(gaps["level"]):
            w = runs[runs["level"] == level].pivot(index="seed", columns="student", values="window_loss")
            ax.scatter(np.full(len(w), i + 0.12), w["oneshot"] - w["equal-split"], s=10, color="k", zorder=3)
        ax.axhline(0.0, color="gray", ls="--", lw=1)
        ax.set_xticks(xs, [f"level {lv}" for lv in gaps["level"]])
        ax.set(ylabel="one-shot minus progressive loss", title=title)
        ax.legend(fontsize=7)
        write_png(fig, path)

    return draw


def _outcome(tier: str, out: Path, progress: bool, which: str) -> Outcome:
    p = SETUP[tier]
    runs, logs, teachers = _runs(tier, out.parent / _SHARED, progress)
    gaps = level_gaps(runs)
    shrink, (est, lo, hi) = shrink_verdict(runs)
    per = "; ".join(f"level {x.level} {x.gap:+.4f} [{x.ci_lo:+.4f}, {x.ci_hi:+.4f}] (one-shot {x.oneshot:.4f}, "
                    f"progressive {x.progressive:.4f})" for x in gaps.itertuples())
    head = (f"held-out loss on the level's tokens, mean over student steps (0, {p['budget']}], one-shot minus "
            f"T0/2-equal-split (C_1 = " + ", ".join(f"{lv}: {t.get('first_checkpoint')}" for lv, t in teachers.items())
            + f"), median over {runs['seed'].nunique()} paired seeds, 95% interval: {per}")
    if which == "a":
        verdict, reason = progressive_verdict(gaps), head
    else:
        verdict = shrink
        reason = f"gap at level 4 minus gap at level 2: {est:+.4f} [{lo:+.4f}, {hi:+.4f}]; {head}"
    numbers = {"gaps": gaps.to_dict("records"), "gap4_minus_gap2": {"estimate": est, "ci_lo": lo, "ci_hi": hi},
               "teachers": {str(k): v for k, v in teachers.items()}, "budget_steps": p["budget"]}
    table = pd.concat([gaps.assign(kind="gap"), runs.assign(kind="run"),
                       pd.DataFrame([{"kind": "gap4_minus_gap2", "gap": est, "ci_lo": lo, "ci_hi": hi}])],
                      ignore_index=True)
    title = ("progressive beats one-shot if above 0" if which == "a"
             else f"gap4 - gap2 = {est:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    return Outcome(verdict, reason, numbers, table, _figure(logs, gaps, runs, p["budget"], p["batch"], title),
                   _SCALE[tier])


def _r7_progressive(tier: str, out: Path, progress: bool = False) -> Outcome:
    return _outcome(tier, out, progress, "a")


def _r7_shrinks(tier: str, out: Path, progress: bool = False) -> Outcome:
    return _outcome(tier, out, progress, "b")


_STATISTIC = ("Per level l in {4, 3, 2} (App. E numbering, the engine's boundary_level): a next-token teacher trained "
              "with l^(l) (eq. 9) and, of the same student seeds, a one-shot and a T0/2-equal-split student (kappa 1/2 "
              "over the teacher's steps, C_1 the engine's automatic choice, tau = 1e-4) trained with l_DL^(l) "
              "(eq. 10); "
              "per student: its held-out loss l^(l) (true next tokens at the level-l boundary tokens, the fixed "
              "held-out sentences) averaged over its evaluations at steps in (0, budget] (the tier's budget: half "
              "the student's steps); per seed the gap = one-shot minus progressive.")

register(Claim(
    "gpt-r7-progressive-beats-oneshot", "R7 (Figures 30-31): with boundary-level losses l_DL^(4), l_DL^(3), "
    "l_DL^(2), T0/2-equal-split progressive distillation trains a GPT student faster than one-shot distillation",
    "transformer",
    Source("progressive", "Appendix E.1 (R7), Figures 30-31", PAPER, 1035,
           "We observe that progressive distillation help the student learn faster than one-shot distillation"),
    Rule(_STATISTIC + " Statistic: per level, the median gap over seeds, paired by seed, 95% bootstrap interval "
         "(2000 resamples, seed 0).",
         "PASS if the interval lies above 0 at all three levels; FAIL if it lies at or below 0 at any level; "
         "otherwise INCONCLUSIVE.", FIXED),
    _r7_progressive,
    run_dirs=(_SHARED,)))

register(Claim(
    "gpt-r7-gap-shrinks", "R7 (Figures 30-31): the gap between progressive and one-shot distillation is smaller "
    "when the loss covers more tokens (level 2) than fewer (level 4)", "transformer",
    Source("progressive", "Appendix E.1 (R7), Figures 30-31", PAPER, 1035,
           "the gap between progressive distillation and distillation decreases as more tokens are involved in the "
           "loss function"),
    Rule(_STATISTIC + " Statistic: median over seeds of the level-4 gap minus median of the level-2 gap, seeds "
         "paired (each seed's level-4 and level-2 gaps resampled together), 95% bootstrap interval (2000 "
         "resamples, seed 0); level 3 reported alongside.",
         "PASS if the interval lies above 0; FAIL if it lies at or below 0; otherwise INCONCLUSIVE (a gap that "
         "is negative at both levels and less negative at level 4 also counts as above 0: the rule tests the "
         "ordering, claim gpt-r7-progressive-beats-oneshot the sign).", FIXED),
    _r7_shrinks,
    run_dirs=(_SHARED,)))
