"""Claims of the ledger on the hierarchical parity of Appendix C.3 (Figures 15-19, lines 800-852): the
teacher's degree-1 correlations with the features of different tree levels spike at different steps
(Figure 17), progressive distillation teaches a smaller student faster than one-shot (Figure 15), and
(3, T)-progressive from two in-transition checkpoints beats any single in-transition checkpoint while a
checkpoint outside the transition adds nothing (Figure 18). Rules written 2026-11-30, before the cpu-tier
experiments ran; before them only a teacher exploration ran (test-accuracy curves of depth-2 / depth-3
trees, to choose a setting with a visible transition) and one 5-seed student exploration on one teacher of
that setting (width 32, 40k steps; ce, one-shot, (12, 2000)-progressive, one (3, 2000) and one (2, 2000)
student), which reached 95% with progressive and not with one-shot, then a ce / one-shot budget check.

Setting (cpu tier): depth D = 2 (4 classes), k = 4, d = 16 (12 coordinates in supports, 4 irrelevant),
teachers of width 512 (24k online-SGD steps, checkpoints every 250) and students of width 32 (80k steps),
3 teacher seeds x 5 student seeds (the same student seeds under every schedule: paired). Levels count
from the root (level 1; the paper's Figure 17 counts from the leaves): :mod:`simulate.hier_probes`. The
three claims share one teacher and the students below ``<runs>/hier-shared`` (whichever runs first trains).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from .ledger import Claim, Outcome, Rule, Source, interval_verdict, register, write_png
from .mlp_claims import FIXED, PAPER, ratio_interval, ratio_panel

_SETUP = {
    "smoke": dict(d=11, depth=2, k=3, tw=256, tlr=0.05, tmult=1.0, tsteps=4000, every=100, tseeds=(0,), sw=32,
                  lr=0.05, ssteps=24000, seval=200, T=500, N=8, sseeds=(0, 1)),
    "cpu": dict(d=16, depth=2, k=4, tw=512, tlr=0.05, tmult=1.0, tsteps=24000, every=250, tseeds=(0, 1, 2), sw=32,
                lr=0.05, ssteps=80000, seval=500, T=3000, N=8, sseeds=(0, 1, 2, 3, 4)),
    "paper": dict(d=100, depth=3, k=5, tw=50000, tlr=0.005, tmult=0.002, tsteps=10_000_000, every=250_000,
                  tseeds=(0, 1, 2), sw=1000, lr=0.005, ssteps=10_000_000, seval=100_000, T=2_000_000, N=5,
                  sseeds=(0, 1, 2, 3, 4)),
}
_SCALE = {"smoke": "depth 2, k = 3, d = 11, teacher 256 (4k steps), students 32 (24k), 1 x 2 seeds",
          "cpu": "depth 2 (4 classes), k = 4, d = 16, teacher width 512 (24k steps), students 32 (80k steps, "
                 "T = 3000, teacher temperature 1), "
                 "3 teacher x 5 student seeds; the paper: depth 3 (8 classes), k = 5, d = 100, teacher 50k, students "
                 "100 / 1000, 2M-step stages",
          "paper": "depth 3, k = 5, d = 100, teacher 50000 (10M steps), students 1000, T = 2M (a GPU job; Monte Carlo "
                   "level probes)"}
MARGIN = 0.1  # claim 1: peaks at least this fraction of the teacher's steps to 99% apart
STUDENTS = ("ce", "oneshot", "progressive", "p3-in", "p2-early", "p2-middle", "p2-late", "p3-out")


def _teacher(p: dict, shared: Path, progress: bool):
    from infra.config import config_hash
    from simulate.config import TeacherConfig
    from simulate.teacher import train_teacher

    cfg = TeacherConfig(task="hierarchical", d=p["d"], depth=p["depth"], k=p["k"], width=p["tw"], steps=p["tsteps"],
                        lr=p["tlr"], lr_a_mult=p["tmult"], eval_every=p["every"], checkpoint_every=p["every"],
                        probe_every=0, seeds=p["tseeds"], device="cpu")
    tdir = shared / "teacher" / config_hash(cfg)
    return cfg, tdir, train_teacher(cfg, tdir, progress=progress)


def _levels(tdir: Path) -> pd.DataFrame:
    """The teacher's level measurements at every checkpoint (:func:`simulate.hier_probes.checkpoint_levels`),
    cached beside its run directory."""
    from infra.rundir import atomic_write_text
    from simulate.hier_probes import checkpoint_levels

    cache = tdir.parent / f"{tdir.name}-levels.csv"
    if cache.is_file():
        return pd.read_csv(cache)
    levels = checkpoint_levels(tdir)
    atomic_write_text(cache, levels.to_csv(index=False))
    return levels


def _first(g: pd.DataFrame, col: str, t: float) -> int:
    hit = g.loc[g[col] >= t, "step"]
    return int(hit.iloc[0]) if len(hit) else int(g["step"].iloc[-1])


def peak_rows(levels: pd.DataFrame, log: pd.DataFrame, depth: int) -> pd.DataFrame:
    """Claim 1's statistic per (run, level): the step of the peak of the degree-1 gap ``corr1_in_l{l} -
    corr1_off`` (``peak1``, the first of ties), whether it is a spike (in-support mean >= 2x the off-support
    mean there), the degree-2 peak (``corr2_in_l{l} - corr2_off``), the first step with level accuracy >= 90%,
    and the run's steps to 99% test accuracy (``s99``, from ``log``)."""
    rows = []
    for run, g in levels.groupby("run"):
        g = g.sort_values("step").reset_index(drop=True)
        lg = log[log["run"] == run].sort_values("step")
        s99 = _first(lg, "test_accuracy", 0.99)
        for level in range(1, depth + 1):
            gap1 = g[f"corr1_in_l{level}"] - g["corr1_off"]
            gap2 = g[f"corr2_in_l{level}"] - g["corr2_off"]
            i1, i2 = int(gap1.idxmax()), int(gap2.idxmax())
            rows.append({"run": int(run), "seed": int(g["seed"].iloc[0]), "level": level, "s99": s99,
                         "peak1": int(g["step"][i1]), "corr1_in_at_peak": float(g[f"corr1_in_l{level}"][i1]),
                         "corr1_off_at_peak": float(g["corr1_off"][i1]), "gap1_at_peak": float(gap1[i1]),
                         "spike": bool(g[f"corr1_in_l{level}"][i1] >= 2 * g["corr1_off"][i1]),
                         "peak2": int(g["step"][i2]), "gap2_at_peak": float(gap2[i2]),
                         "acc90": _first(g, f"acc_l{level}", 0.9)})
    return pd.DataFrame(rows)


def separation(peaks: pd.DataFrame, margin: float = MARGIN) -> pd.DataFrame:
    """Per run: the smallest distance between two levels' degree-1 peaks, the allowed ``margin * s99``, and
    ``separated``: every level spikes and the peaks are at least that far apart."""
    out = []
    for run, g in peaks.groupby("run"):
        steps = sorted(g["peak1"])
        gap = min(b - a for a, b in zip(steps, steps[1:])) if len(steps) > 1 else 0
        need = margin * int(g["s99"].iloc[0])
        out.append({"run": int(run), "seed": int(g["seed"].iloc[0]), "min_peak_distance": gap, "margin": need,
                    "all_spike": bool(g["spike"].all()), "separated": bool(g["spike"].all() and gap >= need),
                    "first_level": int(g.sort_values(["peak1", "level"])["level"].iloc[0])})
    return pd.DataFrame(out)


def _c1(tier: str, out: Path, progress: bool = False) -> Outcome:
    p = _SETUP[tier]
    _, tdir, teacher = _teacher(p, out.parent / "hier-shared", progress)
    levels, log = _levels(tdir), teacher.metrics()
    peaks = peak_rows(levels, log, p["depth"])
    sep = separation(peaks)
    verdict = "PASS" if sep["separated"].all() else "FAIL" if not sep["separated"].any() else "INCONCLUSIVE"

    def by(col: str) -> str:
        return "; ".join(f"seed {s}: " + ", ".join(f"L{x.level} {getattr(x, col)}" for x in g.itertuples())
                         for s, g in peaks.groupby("seed"))

    reason = (f"degree-1 peak steps {by('peak1')} (margin {MARGIN:g} x steps to 99% = "
              f"{', '.join(f'{m:.0f}' for m in sep['margin'])}; separated in {int(sep['separated'].sum())} of "
              f"{len(sep)} teachers, every level spiking in {int(sep['all_spike'].sum())}); degree-2 peaks "
              f"{by('peak2')}; level accuracy >= 90% at {by('acc90')}")
    table = peaks.merge(sep, on=["run", "seed"])
    return Outcome(verdict, reason, {"peaks": peaks.to_dict("records"), "separation": sep.to_dict("records")},
                   table, lambda path: _c1_figure(levels, peaks, p["depth"], path), _SCALE[tier])


def _c1_figure(levels: pd.DataFrame, peaks: pd.DataFrame, depth: int, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = [("corr1_in_l{}", "corr1_off", "|E p_c(x) x_i| (mean over level, classes)", "peak1"),
              ("corr2_in_l{}", "corr2_off", "|E p_c(x) x_i x_j| (mean over level, classes)", "peak2"),
              ("acc_l{}", None, "level decision accuracy (fraction)", "acc90")]
    for ax, (col, off, ylabel, mark) in zip(axes, panels):
        for level in range(1, depth + 1):
            stats = levels.groupby("step")[col.format(level)].agg(["mean", "min", "max"])
            name = f"level {level}" + " (root)" * (level == 1)
            ax.plot(stats.index, stats["mean"], color=colours[level - 1], label=name)
            ax.fill_between(stats.index, stats["min"], stats["max"], color=colours[level - 1], alpha=0.2)
            for t in peaks.loc[peaks["level"] == level, mark]:
                ax.axvline(t, color=colours[level - 1], lw=0.7, ls=":")
        if off:
            stats = levels.groupby("step")[off].agg(["mean", "min", "max"])
            ax.plot(stats.index, stats["mean"], color="gray", label="irrelevant (off-support)")
            ax.fill_between(stats.index, stats["min"], stats["max"], color="gray", alpha=0.2)
        ax.set(xlabel="teacher step (samples)", ylabel=ylabel)
        ax.legend(fontsize=7)
    axes[0].set_title("degree 1 (dotted: each teacher's peak)", fontsize=9)
    axes[1].set_title("degree 2", fontsize=9)
    axes[2].set_title("levels learned (dotted: first >= 90%)", fontsize=9)
    write_png(fig, path)


def hier_candidates(log: pd.DataFrame, saved: list[int], classes: int, teacher_steps: int) -> dict[str, int]:
    """Claim 3's candidate checkpoints of one teacher run from its ``step`` / ``test_accuracy`` log: *early*,
    *middle*, *late* (first step at chance + 1/4, 1/2, 3/4 of the way from chance 1/C to 1), *end* (first at
    99%), *after* (halfway from the end to the final step: outside the transition), each snapped to the
    nearest saved intermediate checkpoint (the final excluded); *late* and *after* move to the next saved one
    when they would snap onto *early*."""
    log = log.sort_values("step")
    chance = 1 / classes
    inter = sorted(s for s in saved if s < teacher_steps)
    snap = lambda w: min(inter, key=lambda s: (abs(s - w), s))  # noqa: E731
    first = lambda t: _first(log, "test_accuracy", t)  # noqa: E731
    got = {name: snap(first(chance + q * (1 - chance))) for name, q in (("early", .25), ("middle", .5), ("late", .75))}
    got["end"] = snap(first(0.99))
    got["after"] = snap((first(0.99) + teacher_steps) / 2)
    for name in ("late", "after"):
        if got[name] <= got["early"]:
            later = [s for s in inter if s > got["early"]]
            got[name] = later[0] if later else got[name]
    return got


def _students(p: dict, shared: Path, which: tuple[str, ...], progress: bool):
    """Per teacher run, the students named in ``which`` (:data:`STUDENTS`), trained or reused below ``shared``;
    returns (one row per student run: samples to 95% / 99%, final accuracy; the candidates per teacher)."""
    from infra.config import config_hash
    from simulate.checkpoints import CheckpointDir
    from simulate.config import StudentConfig
    from simulate.student import train_strategies, train_student

    tcfg, tdir, teacher = _teacher(p, shared, progress)
    log, saved = teacher.metrics(), CheckpointDir(teacher.ckpt).steps()
    base = StudentConfig(teacher=str(tdir), width=p["sw"], steps=p["ssteps"], lr=p["lr"], eval_every=p["seval"],
                         probe_every=0, stage_steps=p["T"], seeds=p["sseeds"], device="cpu")
    rows, marks = [], []
    for run, tseed in enumerate(p["tseeds"]):
        cand = hier_candidates(log[log["run"] == run], saved, 2 ** p["depth"], p["tsteps"])
        marks += [{"teacher_seed": tseed, "candidate": c, "step": s} for c, s in cand.items()]
        cfg = dataclasses.replace(base, teacher_run=run)
        variants = {"progressive": dict(strategy="progressive", n_checkpoints=p["N"]),
                    "p3-in": dict(strategy="progressive", checkpoints=(cand["early"], cand["late"])),
                    "p3-out": dict(strategy="progressive", checkpoints=(cand["early"], cand["after"])),
                    **{f"p2-{c}": dict(strategy="two-shot", first_checkpoint=str(cand[c]))
                       for c in ("early", "middle", "late")}}
        dirs = {}
        plain = [s for s in ("ce", "oneshot") if s in which]
        if plain:
            outs = [shared / "students" / config_hash(dataclasses.replace(cfg, strategy=s)) for s in plain]
            dirs.update(zip(plain, train_strategies(cfg, plain, outs, progress=progress)))
        for name in which:
            if name in variants:
                sc = dataclasses.replace(cfg, **variants[name])
                dirs[name] = train_student(sc, shared / "students" / config_hash(sc), progress=progress)
        for name, rd in dirs.items():
            for r in rd.read_json("summary.json")["runs"]:
                rows.append({"teacher_seed": tseed, "student_seed": r["seed"], "student": name,
                             "samples_to_95": r.get("samples_to_95"), "samples_to_99": r.get("samples_to_99"),
                             "final_accuracy": r.get("final_accuracy")})
    return pd.DataFrame(rows), pd.DataFrame(marks), log


def _wide(runs: pd.DataFrame, col: str = "samples_to_95") -> pd.DataFrame:
    runs = runs.assign(pair=runs["teacher_seed"].astype(str) + "-" + runs["student_seed"].astype(str))
    return runs.pivot(index="pair", columns="student", values=col)


def _ratios(runs: pd.DataFrame, pairs) -> pd.DataFrame:
    """Speed-up ``median(samples of base) / median(samples of faster)`` with its 95% bootstrap interval over
    the (teacher seed, student seed) pairs, for every ``(faster, base)`` in ``pairs``, at 95% and 99%."""
    out = []
    for col in ("samples_to_95", "samples_to_99"):
        wide = _wide(runs, col)
        for faster, base in pairs:
            est, lo, hi = ratio_interval(wide[base], wide[faster])
            out.append({"target": col, "faster": faster, "base": base, "ratio": est, "ci_lo": lo, "ci_hi": hi,
                        "median_faster": float(np.median(wide[faster].astype(float).fillna(np.inf))),
                        "median_base": float(np.median(wide[base].astype(float).fillna(np.inf)))})
    return pd.DataFrame(out)


def _fmt(x) -> str:
    return f"{x.faster} vs {x.base} {x.ratio:.2f}x [{x.ci_lo:.2f}, {x.ci_hi:.2f}]"


def _c2(tier: str, out: Path, progress: bool = False) -> Outcome:
    p = _SETUP[tier]
    runs, marks, log = _students(p, out.parent / "hier-shared", ("ce", "oneshot", "progressive"), progress)
    table = _ratios(runs, [("progressive", "oneshot"), ("progressive", "ce"), ("oneshot", "ce")])
    marks = pd.DataFrame([{"teacher_seed": s, "candidate": "progressive's checkpoints",
                           "step": i * p["tsteps"] // p["N"]}
                          for s in p["tseeds"] for i in range(1, p["N"])])
    main = table[(table["target"] == "samples_to_95") & (table["base"] == "oneshot")].iloc[0]
    verdict, why = interval_verdict(main["ci_lo"], main["ci_hi"], 1.0)
    at99 = table[(table["target"] == "samples_to_99") & (table["base"] == "oneshot")].iloc[0]
    reason = (f"median samples to 95%: progressive {main['median_faster']:.0f}, one-shot {main['median_base']:.0f}; "
              f"{_fmt(main)} ({why}); to 99%: {_fmt(at99)}; "
              + "; ".join(_fmt(x) for x in table[(table["target"] == "samples_to_95")
                                                 & (table["base"] == "ce")].itertuples()))
    return Outcome(verdict, reason, {"ratios": table.to_dict("records")},
                   pd.concat([table.assign(kind="ratio"), runs.assign(kind="run")], ignore_index=True),
                   lambda path: _students_figure(log, marks, table, "Figure 15: progressive vs one-shot", path),
                   _SCALE[tier])


_C3_A = [("p3-in", "p2-early"), ("p3-in", "p2-middle"), ("p3-in", "p2-late")]
_C3_B = ("p3-out", "p2-early")


def c3_verdict(table: pd.DataFrame) -> tuple[str, str]:
    """Claim 3's decision on its samples-to-95% ratio rows (``faster``, ``base``, ``ci_lo``, ``ci_hi``)."""
    t = table[table["target"] == "samples_to_95"].set_index(["faster", "base"])
    a = [interval_verdict(t.loc[fb, "ci_lo"], t.loc[fb, "ci_hi"], 1.0)[0] for fb in _C3_A]
    b = interval_verdict(t.loc[_C3_B, "ci_lo"], t.loc[_C3_B, "ci_hi"], 1.0)[0]
    if all(v == "PASS" for v in a) and b != "PASS":
        return "PASS", "two in-transition checkpoints beat every single one, and an outside one adds nothing"
    if any(v == "FAIL" for v in a) or b == "PASS":
        return "FAIL", ("a single in-transition checkpoint is as fast" if any(v == "FAIL" for v in a)
                        else "the checkpoint outside the transition helped")
    return "INCONCLUSIVE", "an interval straddles 1 or is undefined (students that never reached 95%)"


def _c3(tier: str, out: Path, progress: bool = False) -> Outcome:
    p = _SETUP[tier]
    which = ("oneshot", "p3-in", "p2-early", "p2-middle", "p2-late", "p3-out")
    runs, marks, log = _students(p, out.parent / "hier-shared", which, progress)
    pairs = [*_C3_A, _C3_B, ("p3-in", "p3-out"), *[(s, "oneshot") for s in which[1:]]]
    table = _ratios(runs, pairs)
    verdict, why = c3_verdict(table)
    at95 = table[table["target"] == "samples_to_95"]
    reason = f"{why}: " + "; ".join(_fmt(x) for x in at95.itertuples())
    reached = runs.groupby("student")["final_accuracy"].median()
    reason += "; median final accuracy " + ", ".join(f"{s} {reached[s]:.3f}" for s in which)
    return Outcome(verdict, reason, {"ratios": table.to_dict("records"), "candidates": marks.to_dict("records")},
                   pd.concat([table.assign(kind="ratio"), runs.assign(kind="run"), marks.assign(kind="candidate")],
                             ignore_index=True),
                   lambda path: _students_figure(log, marks, at95, "Figure 18: (3, T) vs (2, T)", path),
                   _SCALE[tier])


def _students_figure(log, marks, table, title, path) -> None:
    """Left: the teachers' test accuracy with the checkpoints marked; right: the speed-ups at 95% with their
    intervals (a lower end at 0, from students that never got there, is drawn as an arrow at a quarter of the
    estimate)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4.4), gridspec_kw={"width_ratios": [1, 1.3]})
    for run, g in log.groupby("run"):
        a.plot(g["step"], g["test_accuracy"], lw=1, label=f"teacher run {run}")
    for c, g in marks.groupby("candidate", sort=False):
        a.scatter(g["step"], [1.03] * len(g), marker="v", s=25, label=c)
    a.set(xlabel="teacher step (samples)", ylabel="test accuracy (fraction)", title="teachers, checkpoints marked")
    a.legend(fontsize=6)
    t95 = table[table["target"] == "samples_to_95"].reset_index(drop=True)
    floor = (t95["ci_lo"] <= 0) & (t95["ratio"] > 0)
    lo = t95["ci_lo"].where(~floor, t95["ratio"] / 4)
    ratio_panel(b, [f"{x.base} /\n{x.faster}" for x in t95.itertuples()], t95["ratio"], lo, t95["ci_hi"],
                ylabel="speed-up: base / faster\n(median samples to 95%)", title=f"{title}; 95% bootstrap intervals")
    if floor.any():
        b.scatter(t95.index[floor], lo[floor], marker="v", color="#2ca02c", label="interval reaches 0")
        b.legend(fontsize=7)
    b.tick_params(axis="x", labelrotation=35)
    write_png(fig, path)


register(Claim(
    "hier-levels-spike-apart", "Hierarchical parity: the teacher's degree-1 correlations with the features of "
    "different tree levels spike at different training steps", "mlp",
    Source("progressive", "Appendix C.3, Figure 17", PAPER, 848,
           "we see a difference in the time-frames at which the spikes appear in the degree-1 monomials of the "
           "features"),
    Rule("Per teacher run (exact over {+-1}^d at every saved checkpoint, simulate.hier_probes): for each tree level "
         "l, the gap g_l(t) = (mean over classes c and over the coordinates i of c's node at level l of "
         "|E p_c(x) x_i|) - (the same mean over the irrelevant coordinates); its peak step t_l (argmax, first of "
         "ties), a spike when the in-support mean there is at least twice the off-support mean; the smallest "
         "|t_l - t_l'| over pairs of levels against 0.1 x the run's steps to 99% test accuracy. Degree-2 peaks "
         "and the steps at which each level's decision accuracy reaches 90% reported alongside.",
         "PASS if in every teacher run every level spikes and the peaks are at least the margin apart; FAIL if "
         "in no run; otherwise INCONCLUSIVE.", FIXED),
    _c1,
    run_dirs=("hier-shared",)))

register(Claim(
    "hier-progressive-faster", "Hierarchical parity: progressive distillation teaches a smaller student faster "
    "than one-shot distillation from the final checkpoint", "mlp",
    Source("progressive", "Appendix C.3, Figure 15", PAPER, 804,
           "Progressive distillation helps student learn faster from a width-50k teacher, compared to one-shot "
           "distillation from the final checkpoint."),
    Rule("(N, T)-progressive students (N = 8 equally spaced teacher checkpoints, T steps each, then the final "
         "teacher) against one-shot students (the final teacher throughout), same student seeds: the ratio "
         "median(samples to 95% test accuracy, one-shot) / median(progressive) over the (teacher seed, student "
         "seed) pairs (3 x 5 at the cpu tier), 95% percentile bootstrap interval over the pairs (2000 resamples, "
         "seed 0); 99% and cross-entropy students reported alongside.",
         "PASS if the interval lies above 1; FAIL if it lies at or below 1; otherwise INCONCLUSIVE.", FIXED),
    _c2,
    run_dirs=("hier-shared",)))

register(Claim(
    "hier-two-checkpoints-in-transition", "Hierarchical parity: (3, T)-progressive from two in-transition "
    "checkpoints beats (2, T) from any single one, and a checkpoint outside the transition adds nothing", "mlp",
    Source("progressive", "Appendix C.3, Figure 18", PAPER, 850,
           "we find that a distillation strategy with only a single intermediate checkpoint and the final "
           "checkpoint is insufficient for the student to achieve 100% accuracy"),
    Rule("Candidates per teacher run from its own test-accuracy curve (hier_candidates: early / middle / late at "
         "chance + 1/4, 1/2, 3/4 of the way to 1; after = halfway from the first 99% step to the final step, "
         "outside the transition). Students (same seeds, T steps per intermediate checkpoint): p3-in = "
         "(3, T)-progressive from (early, late); p2-c = (2, T) from c in {early, middle, late}; p3-out = "
         "(3, T) from (early, after). Ratios median(samples to 95%) base / faster over the (teacher seed, student "
         "seed) pairs with 95% bootstrap intervals: A = p2-c / p3-in for the three c; B = p2-early / p3-out.",
         "PASS if all three A intervals lie above 1 and B's does not; FAIL if any A interval lies at or below 1 "
         "or B's lies above 1; otherwise INCONCLUSIVE.", FIXED),
    _c3,
    run_dirs=("hier-shared",)))
