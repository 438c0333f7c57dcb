"""Matplotlib (Agg) drawings of the tables of :mod:`reports.data`; each function saves one PNG."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .data import BW_AXES, SETTING, TEACHER_SETTING, batch_width_varies  # noqa: E402

__all__ = ["plot_strategies", "plot_curriculum", "plot_theory", "plot_scaling", "plot_batch_width"]


def _label(keys, values) -> str:
    values = values if isinstance(values, tuple) else (values,)
    return ", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) and not pd.isna(v) else f"{k}={v}"
                     for k, v in zip(keys, values) if not pd.isna(v))


def _panels(n: int, width: float = 5.0, height: float = 3.6):
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, axes[0]


def _save(fig, path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_strategies(curves: pd.DataFrame, path) -> None:
    """One panel per setting: median test accuracy vs samples per strategy, interquartile band."""
    groups = list(curves.groupby(SETTING, dropna=False, sort=True))
    fig, axes = _panels(len(groups))
    for ax, (setting, grp) in zip(axes, groups):
        for strategy, s in grp.groupby("strategy", sort=True):
            s = s.sort_values("samples")
            line, = ax.plot(s["samples"], s["median"], label=f"{strategy} (n={int(s['n'].max())})")
            ax.fill_between(s["samples"], s["q25"], s["q75"], color=line.get_color(), alpha=0.2)
        ax.set(xlabel="samples", ylabel="student test accuracy", title=_label(SETTING, setting), ylim=(0.4, 1.02))
        ax.legend(fontsize=8)
    _save(fig, path)


def plot_curriculum(curves: pd.DataFrame, marks: pd.DataFrame, path) -> None:
    """Per teacher setting: test accuracy (left axis) and degree-1 correlations in/off support
    (right axis) vs teacher step; dashed lines at the checkpoints the automatic rule chose."""
    groups = list(curves.groupby(TEACHER_SETTING, dropna=False, sort=True))
    fig, axes = _panels(len(groups), width=5.5)
    for ax, (setting, grp) in zip(axes, groups):
        acc = grp.dropna(subset=["test_accuracy_median"])
        ax.plot(acc["step"], acc["test_accuracy_median"], color="k", label="test accuracy")
        ax.fill_between(acc["step"], acc["test_accuracy_q25"], acc["test_accuracy_q75"], color="k", alpha=0.15)
        ax.set(xlabel="teacher step", ylabel="teacher test accuracy", title=_label(TEACHER_SETTING, setting))
        ax2 = ax.twinx()
        for col, color, name in (("corr1_in_mean", "tab:blue", "corr1 in-support (mean)"),
                                 ("corr1_off_max", "tab:red", "corr1 off-support (max)")):
            if f"{col}_median" not in grp.columns:
                continue
            c = grp.dropna(subset=[f"{col}_median"])
            ax2.plot(c["step"], c[f"{col}_median"], color=color, marker=".", label=name)
            ax2.fill_between(c["step"], c[f"{col}_q25"], c[f"{col}_q75"], color=color, alpha=0.15)
        ax2.set_ylabel("|degree-1 correlation|")
        if not marks.empty:
            sel = np.ones(len(marks), bool)
            for key, value in zip(TEACHER_SETTING, setting):
                sel &= (marks[key].isna() & pd.isna(value)) | (marks[key] == value)
            for step, rule in marks[sel][["checkpoint_step", "checkpoint_rule"]].drop_duplicates().itertuples(
                    index=False):
                ax.axvline(step, color="tab:green", ls="--", lw=1, label=f"chosen checkpoint ({rule})")
        handles = ax.get_legend_handles_labels()
        handles2 = ax2.get_legend_handles_labels()
        ax.legend(handles[0] + handles2[0], handles[1] + handles2[1], fontsize=7, loc="center right")
    _save(fig, path)


def plot_theory(zetas: pd.DataFrame, gaps: pd.DataFrame, path) -> None:
    """Left: exact |zeta_i(d)| vs the stated and corrected orders. Right: Fourier gap vs the paper's bound."""
    fig, (ax1, ax2) = _panels(2)
    ax1.semilogy(zetas["i"], zetas["abs_zeta"], "o-", label="exact |zeta_i(d)|")
    ax1.semilogy(zetas["i"], zetas["stated_order"], "s--", label="stated i^(-1/3)/C(d,i)")
    ax1.semilogy(zetas["i"], zetas["corrected_order"], "^:", label="corrected i^(-3/4)/sqrt(C(d,i))")
    ax1.set(xlabel="degree i (odd)", ylabel="magnitude", title=f"Majority coefficients, d={int(zetas['d'].iloc[0])}")
    ax1.legend(fontsize=8)
    for k, grp in gaps.groupby("k"):
        pos = grp[grp["gap"] > 0]
        line, = ax2.loglog(pos["d"], pos["gap"], "o-", ms=3, label=f"exact gap, k={k}")
        ax2.loglog(grp["d"], grp["paper_bound"], "--", color=line.get_color(), label=f"0.03(d-1)^(-(k-1)/2), k={k}")
        fails = grp[grp["gap"] < grp["paper_bound"]]  # below the bound, zero or negative gaps included
        if len(fails):  # marked on the bound's line, where a gap <= 0 cannot be drawn on a log axis
            ax2.loglog(fails["d"], fails["paper_bound"], "x", color="red", ms=7, mew=1.5,
                       label=f"bound fails, k={k} ({len(fails)} d)")
    ax2.set(xlabel="d", ylabel="|zeta_{k-1}| - |zeta_{k+1}|", title="Fourier gap vs the paper's bound (x: fails)")
    ax2.legend(fontsize=7)
    _save(fig, path)


def plot_scaling(points: pd.DataFrame, fits: pd.DataFrame, path) -> None:
    """Per k: samples to the target vs d (log-log) per strategy, medians with the fitted power law."""
    ks = sorted(fits["k"].unique())
    fig, axes = _panels(len(ks))
    for ax, k in zip(axes, ks):
        for row in fits[fits["k"] == k].itertuples(index=False):
            pts = points[(points["strategy"] == row.strategy) & (points["k"] == k)].dropna(subset=["samples"])
            pts = pts[pts["samples"] > 0]
            med = pts.groupby("d")["samples"].median()
            line, = ax.loglog(med.index, med.values, "o", label=f"{row.strategy}: p={row.exponent:.2f} "
                              f"[{row.ci_lo:.2f}, {row.ci_hi:.2f}]")
            ax.loglog(pts["d"], pts["samples"], ".", color=line.get_color(), alpha=0.3)
            dd = np.linspace(med.index.min(), med.index.max(), 50)
            ax.loglog(dd, np.exp(row.log_const) * dd ** row.exponent, "-", color=line.get_color())
        ax.set(xlabel="d", ylabel="samples to target accuracy", title=f"k={k}")
        ax.legend(fontsize=7)
    _save(fig, path)


def plot_batch_width(table: pd.DataFrame, frontier: pd.DataFrame, path, *, target: int, delta: float,
                     tau: float) -> None:
    """Steps (left) and samples (right) to the target vs batch size (top row) and vs width (bottom
    row), log-log: one line per strategy, d, k and the other axis's value, median with interquartile
    bars over seeds; a row only for an axis the directory varies. The width/steps panel adds Lemma
    B.10's frontier ``(1/2) C(d,k) delta tau^2 / m`` per (d, k), a lower bound on steps."""
    axes_drawn = [a for a in BW_AXES if batch_width_varies(table, a)]
    fig, grid = plt.subplots(len(axes_drawn), 2, figsize=(11, 3.8 * len(axes_drawn)), squeeze=False)
    ok = table[table["steps_median"].notna() & (table["steps_median"] > 0)]
    for row, axis in zip(grid, axes_drawn):
        other = "width" if axis == "batch" else "batch"
        keys = ["strategy", "d", "k", other]
        for ax, qty in zip(row, ("steps", "samples")):
            for key, grp in ok.groupby(keys, dropna=False, sort=True):
                grp = grp.sort_values(axis)
                med = grp[f"{qty}_median"].to_numpy(float)
                err = np.vstack([med - grp[f"{qty}_q25"].to_numpy(float), grp[f"{qty}_q75"].to_numpy(float) - med])
                ax.errorbar(grp[axis], med, yerr=err, marker="o", ms=4, capsize=3,
                            label=f"{_label(keys, key)} (n={int(grp['n'].max())})")
            if axis == "width" and qty == "steps" and not frontier.empty:
                for (d, k), f in frontier.groupby(["d", "k"], sort=True):
                    c = float((f["frontier_steps"] * f["width"]).iloc[0])  # steps x width is constant
                    ww = np.geomspace(f["width"].min(), f["width"].max(), 50)
                    ax.plot(ww, c / ww, "k--", lw=1,
                            label=f"Lemma B.10 lower bound, d={d}, k={k}: (1/2)C(d,k) delta tau^2/m")
                ax.text(0.02, 0.02, f"frontier: delta={delta:g}, tau={tau:g}", transform=ax.transAxes, fontsize=8)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set(xlabel="batch size" if axis == "batch" else "hidden width",
                   ylabel=f"{qty} to {target}% test accuracy", title=f"{qty} vs {axis}")
            ax.legend(fontsize=6)
    _save(fig, path)
