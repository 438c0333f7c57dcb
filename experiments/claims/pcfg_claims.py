"""The PCFG claims of the ledger (Section 4.1, Appendix D of ``001_eef68ba6c826acd6.txt``, lines 150-230, 855-1000):
BERT masked prediction (Definition 4.1: mask rate 0.3, 80/10/10) on a layered PCFG. Rules written 2026-11-30 after
the pilots below (teacher seed 0, student seed 0) and before the cpu-tier runs (teacher seed 1, students 1-5).

One set of runs below ``out.parent / pcfg-shared`` serves the four claims: one teacher (held-out loss / accuracy
and a checkpoint every ``every`` steps, M_robust / M_close every ``measure``; its ``summary.json`` holds the exact
Bayes-optimal accuracy, drawn with the unigram predictor on every accuracy plot) and students of the same seeds
(inits, samples) at tau = 1e-4 (App. D.6): ``ce``, ``oneshot``, ``equal-split`` (T0/2-equal-split over C_1, 2 C_1,
..., App. D.2; M_robust / M_close at steps 0 and end), and ``two-shot`` from each R4 candidate for ``stage`` steps.
The probe reads final checkpoints only (:func:`_probes`; in training it would also run at step 0).

Choosing the cpu tier (pilots; one core; 2 layers, head dim 8, batch 64, cosine after warmup). The engine's
defaults (random:levels=5,seed=1: 49-61 tokens, Bayes accuracy 0.955, unigram 0.417; an 8-head teacher of 600
steps at 0.709; 2-head students of 600 steps, lr 3e-3) leave every student on a plateau at 0.50 (ce 0.523) while
the teacher still drops. ce students on that grammar: 4 heads, 600 steps, lr 3e-3: 0.566; 2 heads, lr 1e-2: 0.521;
4 heads, lr 1e-2: 0.662 (the plateau ends near step 300); 2 / 4 heads, 1800 steps, lr 3e-3: 0.683 / 0.771. With a
1200-step teacher (0.792) 4-head students at lr 1e-2 for 600 steps reach ce 0.662, one-shot 0.697, two-shot (C_1 =
250, T = 150) 0.706, equal-split 0.710, the distilled ones leaving the plateau 50-100 steps earlier: the cpu tier.
random:levels=4,seed=1 (19 tokens; Bayes 0.908, unigram 0.472) is 3x cheaper, but its 2-head students have no
plateau and no strategy is faster (400 steps: ce 0.694, one-shot 0.663, two-shot 0.676, equal-split 0.669; teacher
0.822). cfg3b (251-342 tokens) is out of CPU reach. Steps: teacher 0.12 s, 4-head student 0.047 s (0.09 s with its
teacher's forward). The cpu tier took 22 min on one core (teacher 2 min, 6 student programs of 5 seeds 2-3 min each,
probes 3 min).

The non-terminal probe (App. D.3, ``probe_level_l``; random:levels=5,seed=1; level 4 is the pre-terminal, i.e. the
token) at the engine's default size (512 / 256 sentences, 200 steps) reads levels 1-4 as 0.865 / 0.768 / 0.890 /
1.000 on the 1200-step pilot teacher at step 0 and 0.875 / 0.742 / 0.886 / 0.991 at the end: at the level of the same
probe on one-hot (position, token) features, 0.854 / 0.756 / 0.836 / 1.000 (position alone: 0.855 / 0.674 / 0.523).
On planted one-hot non-terminals (every position or boundaries only) it reads 1.000 at every level, so the probe
decodes what is there; a supervised 2-layer tagger reaches 0.998 / 0.996 / 0.954, so the grammar leaves room. With
2048 / 512 sentences and 600 steps the (position, token) baseline is 0.884 / 0.794 / 0.891; a 4-layer 8-head
teacher of 2400 steps (0.848) reads 0.897 / 0.855 / 0.916 at its output and 0.908 / 0.875 / 0.922 after block 3
(untrained: 0.895 / 0.823 / 0.907 and 0.891 / 0.754 / 0.874): above the baseline at level 2 (+0.06 to +0.08), within
0.01-0.03 at levels 1 and 3. The models hold little of the parse at this size (accuracy 0.85 against 0.955); the
default probe is also too small to reach its own baseline.

M_close (eq. 6; line 196: large when the model uses context outside the n-gram window) is tested in the direction
the paper reports for progressive students (line 216, Figure 5: lower), which by line 196 reads as less, not more,
use of outside context: the ledger tests the reported measurement, not its reading.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from infra.palette import colour_of

from .ledger import Claim, Outcome, Rule, Source, exact_verdict, interval_verdict, register, write_png
from .mlp_claims import FIXED, PAPER, ratio_interval, ratio_panel

__all__ = ["SETUP", "teacher_config", "student_config", "three_phases", "candidate_steps", "diff_interval",
           "r4_verdict", "all_below", "paired", "phases_text", "accuracy_lines", "figure_setup", "teacher_dir"]

_SHARED = "pcfg-shared"
TAU = 1e-4  # the teacher temperature of App. D.6 (line 936)
TARGET = "samples_to_80pct_of_teacher"  # the speed target: samples to 80% of the teacher's final accuracy
CANDIDATES = ("plateau", "inflection", "after")
#: Phase detection: a drop interval is one whose smoothed loss falls at least this fraction of the steepest rate.
STEEP = 0.25

SETUP = {
    "smoke": dict(grammar="random:levels=3,seed=1", tlayers=2, theads=4, tsteps=160, tlr=3e-3, twarmup=20, ckpt=10,
                  slayers=2, sheads=2, ssteps=120, slr=1e-2, swarmup=20, batch=32, every=10, measure=40, stage=30,
                  tseed=0, seeds=(0, 1), eval_size=128, positions=64, probe=(128, 64, 50), device="cpu"),
    "cpu": dict(grammar="random:levels=5,seed=1", tlayers=2, theads=8, tsteps=1200, tlr=3e-3, twarmup=100, ckpt=25,
                slayers=2, sheads=4, ssteps=600, slr=1e-2, swarmup=100, batch=64, every=25, measure=50, stage=150,
                tseed=1, seeds=(1, 2, 3, 4, 5), eval_size=256, positions=256, probe=(1024, 256, 400), device="cpu"),
    # Section 4 / App. D.5-D.6: cfg3b, 4 layers, 32 / 8 heads of dim 8, batch 512, 8000 teacher steps, 4000 student
    # steps (Figure 4 right), T grid {500, 1000, 2000} (we fix 1000), probe 51200 / 1024 sentences
    "paper": dict(grammar="cfg3b", tlayers=4, theads=32, tsteps=8000, tlr=1e-3, twarmup=400, ckpt=100, slayers=4,
                  sheads=8, ssteps=4000, slr=1e-3, swarmup=200, batch=512, every=100, measure=500, stage=1000,
                  tseed=0, seeds=(0, 1, 2, 3, 4), eval_size=1024, positions=1024, probe=(51200, 1024, 2000),
                  device="auto"),
}
_SCALE = {"smoke": "random:levels=3,seed=1, 2 layers, 4-head teacher (160 steps), 2-head students (120 steps), "
                   "batch 32, 2 student seeds",
          "cpu": "random:levels=5,seed=1 (49-61 tokens), 2 layers, 8-head teacher (width 64, 1200 steps, lr 3e-3), "
                 "4-head students (width 32, 600 steps, lr 1e-2, T = 150), batch 64, 1 teacher x 5 student seeds; "
                 "the paper: cfg3b (251-342 tokens), 4 layers, 32 / 8 heads, 8000 / 4000 steps at batch 512",
          "paper": "cfg3b, 4 layers, 32-head teacher (8000 steps) and 8-head students (4000 steps, T = 1000), "
                   "batch 512, 5 student seeds (a GPU job)"}


def teacher_config(p: dict):
    """The teacher of setup ``p`` (one run, seed ``tseed``): a checkpoint every ``ckpt`` steps, measures every
    ``measure``."""
    from distill.config import PcfgTeacherConfig

    return PcfgTeacherConfig(grammar=p["grammar"], layers=p["tlayers"], heads=p["theads"], steps=p["tsteps"],
                             batch=p["batch"], lr=p["tlr"], warmup=p["twarmup"], eval_every=p["every"],
                             eval_size=p["eval_size"], checkpoint_every=p["ckpt"], measure_every=p["measure"],
                             measure_positions=p["positions"], probe_every=0, seeds=(p["tseed"],), device=p["device"])


def student_config(p: dict, teacher: str, strategy: str, first: int | None = None, *, measures: bool = True):
    """A student of setup ``p`` (all its seeds): ``first`` is C_1 of two-shot / equal-split; M_robust / M_close at
    step 0 and at the end when ``measures``. The probe never runs in training (it would run at step 0 too); its
    sizes are stored for :func:`_probes`, which probes the final checkpoint."""
    from distill.config import PcfgStudentConfig

    ntr, nte, nsteps = p["probe"]
    return PcfgStudentConfig(teacher=teacher, strategy=strategy, layers=p["slayers"], heads=p["sheads"],
                             steps=p["ssteps"], batch=p["batch"], lr=p["slr"], warmup=p["swarmup"], seeds=p["seeds"],
                             temperature=TAU, first_checkpoint=str(first) if first else "auto",
                             stage_steps=p["stage"], eval_every=p["every"], eval_size=p["eval_size"],
                             measure_every=p["ssteps"] if measures else 0, measure_positions=p["positions"],
                             probe_every=0, probe_train=ntr, probe_test=nte, probe_steps=nsteps, device=p["device"])


def three_phases(log: pd.DataFrame) -> dict:
    """Figure 4 (left), operationally, on a teacher's ``step`` / ``test_loss`` log (mean over runs).

    From the first logged step after 0 (``s1``; the step-0 model is left out, its first interval is the unigram
    fit) the loss is smoothed by a centred 3-point mean. The steepest interval (largest fall per step) anchors
    phase 2: the longest run of consecutive intervals around it falling at least ``STEEP`` times that rate. Phase 1
    is ``[0, p2_start]`` (its fall measured from ``s1``), phase 3 ``[p2_end, T0]``. ``total`` is the smoothed fall
    from ``s1`` to ``T0``. The three phases hold when phase 2 starts after ``s1`` and after 5% of T0 (the paper's
    "first 5%") and phase 1 falls by at most 10% of ``total`` (plateau), phase 2 spans at most 30% of T0 and falls
    by at least 40% of ``total`` (rapid drop), and phase 3 falls by at least 5% of ``total`` at a mean rate at most
    a third of phase 2's (slow decline)."""
    g = log.groupby("step")["test_loss"].mean().sort_index()
    g = g[g.index > 0]
    s = g.index.to_numpy(float)
    loss = pd.Series(g.to_numpy(float)).rolling(3, center=True, min_periods=1).mean().to_numpy()
    if len(s) < 4:
        raise ValueError(f"three_phases needs at least 4 logged steps after 0, got {len(s)}")
    rate = -np.diff(loss) / np.diff(s)
    k = int(np.argmax(rate))
    a = b = k
    while a > 0 and rate[a - 1] >= STEEP * rate[k]:
        a -= 1
    while b < len(rate) - 1 and rate[b + 1] >= STEEP * rate[k]:
        b += 1
    p2s, p2e = s[a], s[b + 1]
    total = loss[0] - loss[-1]
    f1, f2, f3 = loss[0] - loss[a], loss[a] - loss[b + 1], loss[b + 1] - loss[-1]
    r2 = f2 / (p2e - p2s)
    r3 = f3 / (s[-1] - p2e) if s[-1] > p2e else 0.0
    frac = lambda f: float(f / total) if total > 0 else np.nan  # noqa: E731
    out = {"s1": int(s[0]), "p2_start": int(p2s), "p2_end": int(p2e), "T0": int(s[-1]), "total_fall": float(total),
           "inflection": int(s[int(np.argmin(np.gradient(loss, s)))]),  # the logged step of steepest descent
           "phase1_intervals": a, "phase1_frac": frac(f1), "phase2_frac": frac(f2), "phase3_frac": frac(f3),
           "phase2_span": float((p2e - p2s) / s[-1]), "rate3_over_rate2": float(r3 / r2) if r2 > 0 else np.nan}
    out["plateau"] = bool(total > 0 and a >= 1 and p2s >= 0.05 * s[-1] and out["phase1_frac"] <= 0.10)
    out["rapid_drop"] = bool(total > 0 and out["phase2_span"] <= 0.30 and out["phase2_frac"] >= 0.40)
    out["slow_decline"] = bool(total > 0 and out["phase3_frac"] >= 0.05 and out["rate3_over_rate2"] <= 1 / 3)
    out["holds"] = out["plateau"] and out["rapid_drop"] and out["slow_decline"]
    return out


def phases_text(ph: dict) -> str:
    """The three phases of :func:`three_phases` as one sentence of a claim's reason."""
    yn = {True: "yes", False: "no"}
    return (f"teacher loss from step {ph['s1']} to {ph['T0']}: phase 1 [{ph['s1']}, {ph['p2_start']}] falls "
            f"{ph['phase1_frac']:.1%} of the total {ph['total_fall']:.3f} (plateau {yn[ph['plateau']]}), phase 2 "
            f"[{ph['p2_start']}, {ph['p2_end']}] {ph['phase2_frac']:.1%} in {ph['phase2_span']:.0%} of training "
            f"(rapid drop {yn[ph['rapid_drop']]}), phase 3 {ph['phase3_frac']:.1%} at {ph['rate3_over_rate2']:.2f}x "
            f"phase 2's rate (slow decline {yn[ph['slow_decline']]}); steepest descent at step {ph['inflection']}")


def candidate_steps(phases: dict, saved: list[int]) -> dict[str, int]:
    """R4's first checkpoints, each the nearest saved intermediate checkpoint (the final and step 0 excluded) to:
    ``plateau`` the middle of phase 1, ``inflection`` the steepest descent, ``after`` twice the inflection step but
    at least the end of phase 2 (the paper's next checkpoint 2 C_1, App. D.2)."""
    inter = sorted(x for x in saved if 0 < x < phases["T0"])
    wanted = {"plateau": (phases["s1"] + phases["p2_start"]) / 2, "inflection": phases["inflection"],
              "after": max(2 * phases["inflection"], phases["p2_end"])}
    return {c: int(min(inter, key=lambda x: (abs(x - w), x))) for c, w in wanted.items()}


def diff_interval(a, b, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """``median(a) - median(b)`` over paired runs and its percentile bootstrap interval (pairs resampled jointly,
    ``numpy.random.default_rng(seed)``), as :func:`ratio_interval` does for ratios."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("a and b must be paired, non-empty")
    rng = np.random.default_rng(seed)
    boots = [np.median(a[i]) - np.median(b[i]) for i in (rng.integers(0, a.size, a.size) for _ in range(n_boot))]
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(boots, [tail, 100 - tail])
    return float(np.median(a) - np.median(b)), float(lo), float(hi)


def combine(verdicts) -> str:
    """PASS if every interval verdict is PASS, FAIL if any is FAIL, otherwise INCONCLUSIVE."""
    verdicts = list(verdicts)
    return "PASS" if all(v == "PASS" for v in verdicts) else "FAIL" if "FAIL" in verdicts else "INCONCLUSIVE"


def r4_verdict(table: pd.DataFrame) -> str:
    """R4's decision (its Rule) on the ratio rows ``baseline`` in (plateau, after) of :func:`_r4`'s table."""
    rows = table.set_index("baseline").loc[["plateau", "after"]]
    return combine(interval_verdict(x.ci_lo, x.ci_hi, 1.0)[0] for x in rows.itertuples())


def all_below(rows: pd.DataFrame) -> str:
    """R5's decision on difference rows (``ci_lo``, ``ci_hi``, ``decisive``): every decisive interval below 0."""
    d = rows[rows["decisive"]]
    return combine(interval_verdict(x.ci_lo, x.ci_hi, 0.0, claimed="<")[0] for x in d.itertuples())


# ------------------------------------------------------------------ the shared runs

def _runs(tier: str, root: Path, strategies, progress: bool):
    """Train (or reuse) the teacher and the students ``strategies`` (names: ce, oneshot, equal-split, or an R4
    candidate) below ``root``. Returns ``(teacher summary, teacher log, phases, candidates, runs, logs)``:
    ``runs`` one row per (student, seed) with the summary's numbers, ``logs`` the students' metrics by name."""
    from distill.runs import train_student, train_teacher
    from infra.config import config_hash

    p = SETUP[tier]
    tcfg = teacher_config(p)
    trd = train_teacher(tcfg, teacher_dir(tier, root), progress=progress)
    tsum, tlog = trd.read_json("summary.json"), trd.metrics()
    phases = three_phases(tlog)
    cands = candidate_steps(phases, tsum["checkpoints"])
    rows, logs = [], {}
    for name in strategies:
        if name in CANDIDATES:
            cfg = student_config(p, str(trd.path), "two-shot", cands[name], measures=False)
        else:
            cfg = student_config(p, str(trd.path), name, cands["inflection"] if name == "equal-split" else None)
        rd = train_student(cfg, root / "students" / config_hash(cfg), progress=progress)
        logs[name] = rd.metrics()
        rows += [{"student": name, "seed": r["seed"], "checkpoint": cands.get(name), "dir": str(rd.path), **r}
                 for r in rd.read_json("summary.json")["runs"]]
    return tsum, tlog, phases, cands, pd.DataFrame(rows), logs


def teacher_dir(tier: str, root: Path) -> str:
    from infra.config import config_hash

    return str(root / "teacher" / config_hash(teacher_config(SETUP[tier])))


def _probes(tier: str, run_dir: str, steps: str, teacher: bool) -> pd.DataFrame:
    """``probe_level_{l}`` (App. D.3) of a run's checkpoints ``steps`` (:func:`distill.probe_runs.probe_run`; a
    teacher with the tier's probe sizes), one row per (step, run); cached as ``probe-<steps>.csv`` in the run."""
    from distill.probe_runs import probe_run

    cache = Path(run_dir) / f"probe-{steps.replace(',', '-')}.csv"
    if not cache.is_file():
        ntr, nte, nsteps = SETUP[tier]["probe"]
        words = [f"probe_train={ntr}", f"probe_test={nte}", f"probe_steps={nsteps}"] if teacher else []
        pd.DataFrame(probe_run(run_dir, steps=steps, overrides=words)).to_csv(cache, index=False)
    return pd.read_csv(cache)


def paired(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """``column`` by seed (rows) and student (columns); a missing value (never reached) is +inf."""
    wide = runs.pivot(index="seed", columns="student", values=column)
    return wide.astype(float).fillna(np.inf) if column.startswith("samples") else wide.astype(float)


def accuracy_lines(ax, tsum: dict) -> None:
    """The teacher's final accuracy, the Bayes ceiling and the unigram predictor as horizontal lines."""
    b = tsum.get("bayes_optimal", {})
    ax.axhline(tsum["runs"][0]["final_accuracy"], color="k", lw=0.8, ls="--", label="teacher final")
    if b:
        ax.axhline(b["accuracy"], color="purple", lw=0.8, ls=":", label=f"Bayes optimal {b['accuracy']:.3f}")
        ax.axhline(b["unigram_accuracy"], color="gray", lw=0.8, ls=":", label=f"unigram {b['unigram_accuracy']:.3f}")


def _student_curves(ax, logs: dict, tsum: dict, target: float | None = None) -> None:
    for name, df in logs.items():
        g = df.groupby("samples")["test_accuracy"].median()
        ax.plot(g.index, g.to_numpy(), lw=1.2, color=colour_of(name), label=name)
    accuracy_lines(ax, tsum)
    if target:
        ax.axhline(target, color="r", lw=0.6, label="target (80% of teacher)")
    ax.set(xlabel="student samples", ylabel="masked accuracy (median over seeds)")
    ax.legend(fontsize=6)


def figure_setup():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ------------------------------------------------------------------ Figure 4 (left): three phases of the teacher's loss

def _phases(tier: str, out: Path, progress: bool = False) -> Outcome:
    tsum, tlog, ph, cands, _, _ = _runs(tier, out.parent / _SHARED, (), progress)
    g = tlog.groupby("step").mean(numeric_only=True)
    mr = [c for c in g.columns if c.startswith("m_robust_")]
    peak = {c: int(g[c].dropna().idxmax()) for c in mr}
    reason = phases_text(ph) + "; M_robust peaks at " + ", ".join(f"{c[9:]}-gram step {s}" for c, s in peak.items())

    def figure(path) -> None:
        plt = figure_setup()
        fig, (a, b, c) = plt.subplots(1, 3, figsize=(13, 3.6))
        a.plot(g.index, g["test_loss"], "k-", lw=1.2)
        for lo, hi, col in ((ph["s1"], ph["p2_start"], "#cde"), (ph["p2_start"], ph["p2_end"], "#fdc"),
                            (ph["p2_end"], ph["T0"], "#dfd")):
            a.axvspan(lo, hi, color=col, alpha=0.6)
        for name, st in cands.items():
            a.scatter([st], [g.loc[st, "test_loss"]], marker="v", s=40, label=f"{name} ({st})", zorder=3)
        a.set(xlabel="teacher step", ylabel="held-out masked loss", title="Figure 4 (left): phases 1 / 2 / 3 shaded")
        b.plot(g.index, g["test_accuracy"], "k-", lw=1.2, label="teacher")
        accuracy_lines(b, tsum)
        b.set(xlabel="teacher step", ylabel="masked accuracy", title="teacher accuracy, Bayes ceiling")
        for col in mr:
            c.plot(g[col].dropna().index, g[col].dropna().to_numpy(), marker=".", label=f"M_robust, n={col[9:]}")
        c.axvline(ph["inflection"], color="gray", ls="--", lw=0.8)
        c.set(xlabel="teacher step", ylabel="median TV", title="Figure 4 (middle): M_robust")
        for ax in (a, b, c):
            ax.legend(fontsize=6)
        write_png(fig, path)

    return Outcome(exact_verdict(ph["holds"], "")[0], reason, {"phases": ph, "candidates": cands, "m_robust_peak": peak,
                   "bayes_optimal": tsum.get("bayes_optimal")}, g.reset_index(), figure, _SCALE[tier])


register(Claim(
    "pcfg-f4-three-phases", "Figure 4 (left): the PCFG teacher's loss has three phases (plateau, rapid drop, slow "
    "decline)", "transformer",
    Source("progressive", "Section 4.1.2, Figure 4 (left)", PAPER, 210,
           "we observe 3 distinct phases of training in the teacher’s loss (Figure 4 left): 1) an initial phase "
           "where the loss doesn’t change much"),
    Rule("On the teacher's held-out masked loss (logged every `every` steps; step 0 left out; centred 3-point "
         "mean): phase 2 = the longest run of logged intervals around the steepest one that fall at least 1/4 of "
         "its rate; phase 1 before it, phase 3 after it; fractions of the total fall from the first logged step to "
         "the end (experiments.claims.pcfg_claims.three_phases).",
         "PASS if phase 2 starts after the first logged step and after 5% of training and phase 1 falls <= 10% of "
         "the total, phase 2 spans <= 30% of training and "
         "falls >= 40%, and phase 3 falls >= 5% at a mean rate <= 1/3 of phase 2's; otherwise FAIL (an exact check "
         "of one teacher run, as Figure 4 plots one).", FIXED,
         "2026-11-30, after the first smoke-tier run (before any cpu-tier run): 'phase 2 starts after the first "
         "logged step' added, as a smoke teacher with no plateau (phase 2 from its first logged step) passed."),
    _phases,
    run_dirs=(_SHARED,)))


# ------------------------------------------------------------------ R4: the inflection checkpoint is best for (2, T)

def _r4(tier: str, out: Path, progress: bool = False) -> Outcome:
    tsum, tlog, ph, cands, runs, logs = _runs(tier, out.parent / _SHARED, ("ce", "oneshot", *CANDIDATES), progress)
    wide, final = paired(runs, TARGET), paired(runs, "final_accuracy")
    rows = []
    for base in ("plateau", "after", "oneshot", "ce"):
        est, lo, hi = ratio_interval(wide[base], wide["inflection"])
        rows.append({"baseline": base, "checkpoint": cands.get(base), "ratio": est, "ci_lo": lo, "ci_hi": hi,
                     "median_baseline": float(np.median(wide[base])),
                     "median_inflection": float(np.median(wide["inflection"])),
                     "final_acc_baseline": float(final[base].median()),
                     "final_acc_inflection": float(final["inflection"].median()), "decisive": base in CANDIDATES})
    table = pd.DataFrame(rows)
    target = 0.8 * tsum["runs"][0]["final_accuracy"]
    step = lambda x: f" (step {int(x.checkpoint)})" if x.checkpoint == x.checkpoint else ""  # noqa: E731
    reason = (f"samples to {target:.3f} (80% of the teacher's final accuracy), median over {len(wide)} seeds, "
              f"inflection (step {cands['inflection']}) {np.median(wide['inflection']):.0f}; other / inflection: "
              + "; ".join(f"{x.baseline}{step(x)} {x.ratio:.2f}x [{x.ci_lo:.2f}, {x.ci_hi:.2f}]"
                          for x in table.itertuples())
              + "; final accuracy " + ", ".join(f"{s} {final[s].median():.3f}" for s in final.columns))

    def figure(path) -> None:
        plt = figure_setup()
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
        _student_curves(a, logs, tsum, target)
        a.set_title("(2, T)-progressive students by first checkpoint", fontsize=9)
        vals = table[["ratio", "ci_lo", "ci_hi"]].to_numpy(float)
        cap = 2 * max(np.nanmax(np.where(np.isinf(vals), np.nan, vals), initial=1.0), 1.0)
        ratio_panel(b, [f"{x.baseline}\n/ inflection" for x in table.itertuples()],
                    *np.where(np.isinf(vals), cap, vals).T,  # a baseline that never reached the target: drawn at cap
                    ylabel="median samples to target, ratio", title="inflection is fastest if above 1")
        for i in np.flatnonzero(np.isinf(vals[:, 0])):
            b.annotate("inf: never reached", (i, cap), xytext=(0, -12), textcoords="offset points", fontsize=6,
                       ha="center")
        write_png(fig, path)

    per_run = runs[["student", "seed", "checkpoint", TARGET, "final_accuracy"]].assign(kind="run")
    return Outcome(r4_verdict(table), reason,
                   {"rows": rows, "candidates": cands, "phases": ph, "target_accuracy": target},
                   pd.concat([table.assign(kind="ratio"), per_run], ignore_index=True), figure, _SCALE[tier])


register(Claim(
    "pcfg-r4-inflection-best", "R4: among first checkpoints on the plateau, at the inflection and after it, the "
    "inflection gives the fastest (2, T)-progressive student", "transformer",
    Source("progressive", "Section 4.1.2 (R4), Figure 4 (right)", PAPER, 212,
           "(R4) The inflection point is best for $(2, T)$ -progressive distillation."),
    Rule("Candidates from the teacher's loss (three_phases): plateau = middle of phase 1, inflection = steepest "
         "descent, after = max(2 x inflection, end of phase 2), each snapped to a saved checkpoint; two-shot students "
         "(C_1 for T steps, then the final teacher, tau = 1e-4) of the same seeds per candidate. Statistic: "
         "median(samples to 80% of the teacher's final accuracy) of the plateau / after students over that of the "
         "inflection students, paired by seed, 95% bootstrap interval (2000 resamples, seed 0); a run that never "
         "gets there counts as infinite. One-shot and ce reported alongside.",
         "PASS if both intervals (plateau, after) lie above 1; FAIL if either lies at or below 1; otherwise "
         "INCONCLUSIVE.", FIXED),
    _r4,
    run_dirs=(_SHARED,)))
