"""The R5 claims of the ledger (Section 4.1.2, Figure 5 of ``001_eef68ba6c826acd6.txt``, line 216): M_robust / M_close
and the non-terminal probe of progressive (equal-split) students against one-shot and ce students, on the runs of
:mod:`.pcfg_claims` (below ``out.parent / "pcfg-shared"``; its module docstring holds the setting, the pilots, the
probe's baselines and the reading of M_close these claims test). Rules written 2026-11-30, before the cpu-tier runs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from infra.palette import colour_of

from .ledger import Claim, Outcome, Rule, Source, interval_verdict, register, write_png
from .mlp_claims import FIXED, PAPER
from .pcfg_claims import (_SCALE, _SHARED, SETUP, _probes, _runs, all_below, combine, diff_interval, figure_setup,
                          paired, teacher_dir)

_R5 = ("ce", "oneshot", "equal-split")


def _differences(runs: pd.DataFrame, columns, decisive) -> pd.DataFrame:
    """Per column and baseline (one-shot, ce): progressive (equal-split) minus baseline, :func:`diff_interval`."""
    rows = []
    for col in columns:
        w = paired(runs, col)
        for base in ("oneshot", "ce"):
            est, lo, hi = diff_interval(w["equal-split"], w[base])
            rows.append({"column": col, "baseline": base, "progressive": float(w["equal-split"].median()),
                         "base": float(w[base].median()), "diff": est, "ci_lo": lo, "ci_hi": hi,
                         "decisive": decisive(col)})
    return pd.DataFrame(rows)


def _r5_measures(tier: str, out: Path, progress: bool = False) -> Outcome:
    _, _, _, cands, runs, _ = _runs(tier, out.parent / _SHARED, _R5, progress)
    ns = sorted(int(c.split("_")[-1]) for c in runs.columns if c.startswith("final_m_robust_"))
    cols = [f"final_{k}_{n}" for k in ("m_robust", "m_close") for n in ns]
    table = _differences(runs, cols, lambda c: "robust" in c or c.endswith(f"_{ns[-1]}"))
    reason = (f"final median TV, progressive (equal-split from C_1 = {cands['inflection']}) minus baseline, 95% "
              f"interval over {runs['seed'].nunique()} paired seeds: "
              + "; ".join(f"{x.column[6:]} vs {x.baseline} {x.diff:+.3f} [{x.ci_lo:+.3f}, {x.ci_hi:+.3f}]"
                          for x in table.itertuples() if x.decisive))

    def figure(path) -> None:
        plt = figure_setup()
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        for ax, kind in zip(axes, ("m_close", "m_robust")):
            for j, name in enumerate(_R5):
                v = runs.loc[runs["student"] == name, [f"final_{kind}_{n}" for n in ns]]
                med, lo, hi = v.median().to_numpy(), v.min().to_numpy(), v.max().to_numpy()
                ax.errorbar(np.arange(len(ns)) + 0.2 * (j - 1), med, yerr=[med - lo, hi - med], fmt="o", capsize=3,
                            color=colour_of(name), label=name)
            ax.set_xticks(np.arange(len(ns)), [f"{n}-gram" for n in ns])
            ax.set(ylabel="median TV (seed median, range)", title=f"Figure 5: {kind} of the students")
            ax.legend(fontsize=7)
        write_png(fig, path)

    return Outcome(all_below(table), reason,
                   {"rows": table.to_dict("records"), "first_checkpoint": cands["inflection"]}, table, figure,
                   _SCALE[tier])


register(Claim(
    "pcfg-r5-ngram-measures", "R5 (Figure 5 left, middle): progressive students have lower M_robust (every n) and "
    "lower M_close (longest n) than one-shot and ce students", "transformer",
    Source("progressive", "Section 4.1.2 (R5), Figure 5", PAPER, 216,
           "progressive distillation makes the student better utilize long contexts rather than local n -gram windows, "
           "evidenced by a lower M_{robust} and M_{close}"),
    Rule("At the end of training, per student seed: M_robust(n) (eq. 5) and M_close(n) (eq. 6), medians over the same "
         "held-out positions, n in {3, 5, 7}; statistic: median over seeds of the T0/2-equal-split student (C_1 = the "
         "inflection candidate of R4) minus that of the one-shot / ce student, paired by seed, 95% bootstrap interval "
         "(2000 resamples, seed 0). Decisive: M_robust at every n and M_close at the largest n (Figure 5: 'lower "
         "M_close with longer n-gram context'), each against one-shot and ce; M_close tested as lower, the direction "
         "the paper reports (its line 196 reads a lower M_close as less use of outside context).",
         "PASS if all 8 decisive intervals lie below 0; FAIL if any lies at or above 0; otherwise INCONCLUSIVE.",
         FIXED),
    _r5_measures,
    run_dirs=(_SHARED,)))


def _r5_probe(tier: str, out: Path, progress: bool = False) -> Outcome:
    _, _, _, _, runs, _ = _runs(tier, out.parent / _SHARED, _R5, progress)
    p = SETUP[tier]
    probed = pd.concat([_probes(tier, d, str(p["ssteps"]), False).assign(student=name)
                        for name, d in runs.groupby("student")["dir"].first().items()], ignore_index=True)
    levels = sorted(int(c.split("_")[-1]) for c in probed.columns if c.startswith("probe_level_"))[:-1]
    cols = [f"probe_level_{lv}" for lv in levels]
    teacher = _probes(tier, teacher_dir(tier, out.parent / _SHARED), f"0,{p['tsteps']}", True)
    for df in (probed, teacher):
        df["probe_mean"] = df[cols].mean(axis=1)
    ref = {"untrained teacher": float(teacher["probe_mean"].iloc[0]),
           "trained teacher": float(teacher["probe_mean"].iloc[-1])}
    table = _differences(probed, ("probe_mean", *cols), lambda c: c == "probe_mean")
    d = table[table["decisive"]]
    verdict = combine(interval_verdict(x.ci_lo, x.ci_hi, 0.0)[0] for x in d.itertuples())
    med = probed.groupby("student")["probe_mean"].median().to_dict()
    reason = (f"probe accuracy at the level boundaries, mean over levels {levels[0]}-{levels[-1]} (the pre-terminal "
              "level left out), median over seeds: " + ", ".join(f"{s} {v:.3f}" for s, v in med.items())
              + "; " + ", ".join(f"{k} {v:.3f}" for k, v in ref.items()) + "; progressive minus "
              + "; ".join(f"{x.baseline} {x.diff:+.4f} [{x.ci_lo:+.4f}, {x.ci_hi:+.4f}]" for x in d.itertuples()))

    def figure(path) -> None:
        plt = figure_setup()
        fig, ax = plt.subplots(figsize=(6.4, 3.6))
        for name in _R5:
            ax.plot(levels, probed.loc[probed["student"] == name, cols].median(), marker="o", color=colour_of(name), label=name)
        for i, label, style in ((0, "untrained teacher", "k:"), (-1, "trained teacher", "k--")):
            ax.plot(levels, teacher[cols].iloc[i], style, marker=".", label=label)
        ax.set(xlabel="non-terminal level (from the root)", ylabel="probe accuracy (median over seeds)",
               title="Figure 5 (right): non-terminal probe")
        ax.set_xticks(levels)
        ax.legend(fontsize=7)
        write_png(fig, path)

    return Outcome(verdict, reason, {"rows": table.to_dict("records"), "medians": med, "references": ref,
                                     "levels": levels},
                   pd.concat([table.assign(kind="difference"), probed.drop(columns=["run"]).assign(kind="run")],
                             ignore_index=True), figure, _SCALE[tier])


register(Claim(
    "pcfg-r5-nonterminal-probe", "R5 (Figure 5 right): the non-terminal probe reads progressive students better than "
    "one-shot and ce students", "transformer",
    Source("progressive", "Figure 5 (right)", PAPER, 227,
           "Progressive distilled student performs better when probed for higher level non-terminals"),
    Rule("At the end of training, per student seed: the App. D.3 probe's test accuracy (its engine settings, the "
         "tier's probe sizes) at the level-l boundaries, averaged over the levels below the root except the "
         "pre-terminal one (whose non-terminal is the token); statistic: median over seeds of the T0/2-equal-split "
         "student minus that of the one-shot / ce student, paired by seed, 95% bootstrap interval (2000 resamples, "
         "seed 0). Per level, and the teacher untrained (step 0) and trained (the same probe), reported alongside.",
         "PASS if both intervals lie above 0; FAIL if either lies at or below 0; otherwise INCONCLUSIVE.", FIXED),
    _r5_probe,
    run_dirs=(_SHARED,)))
