"""Matplotlib (Agg) drawings of the tables of :mod:`reports.data`; each function saves one PNG."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .data import BW_AXES, SETTING, TEACHER_SETTING, batch_width_varies, probed_degrees  # noqa: E402

__all__ = ["plot_strategies", "plot_curriculum", "curriculum_panels", "plot_theory", "plot_scaling", "plot_batch_width"]


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


#: Curriculum figure styles, fixed across panels: colour = where the monomials lie, line = statistic.
_WHERE = {"in": ("tab:blue", "in-support"), "off": ("tab:red", "off-support")}
_STAT = {"mean": ("-", "mean over monomials"), "max": ("--", "max over monomials")}
_DEGREE = {1: "x_j", 2: "x_i x_j", 3: "x_i x_j x_l"}
_CHECKPOINT = dict(color="tab:green", ls="-.", lw=1.2)


def curriculum_panels(curves: pd.DataFrame) -> list[tuple[tuple, int]]:
    """The panels of :func:`plot_curriculum` in drawing order: ``(teacher setting, degree)`` for every
    setting and every degree probed in it."""
    return [(setting, g) for setting, grp in curves.groupby(TEACHER_SETTING, dropna=False, sort=True)
            for g in probed_degrees(grp)]


def _setting_marks(marks: pd.DataFrame, setting) -> pd.DataFrame:
    if marks.empty:
        return marks
    sel = np.ones(len(marks), bool)
    for key, value in zip(TEACHER_SETTING, setting):
        sel &= (marks[key].isna() & pd.isna(value)) | (marks[key] == value)
    return marks[sel][["checkpoint_step", "checkpoint_rule"]].drop_duplicates()


def _step_label(grp: pd.DataFrame) -> str:
    same = "samples_median" in grp and np.allclose(grp["samples_median"].to_numpy(float), grp["step"].to_numpy(float),
                                                   equal_nan=True)
    return "teacher step (samples)" if same else "teacher step"


def _corr_panel(ax, grp: pd.DataFrame, g: int) -> None:
    """One degree: like-with-like pairs (means solid, maxima dashed), the seeds' min-max band, +-2 SE bars."""
    se_col = f"corr{g}_se_median"
    mc = se_col in grp and bool((grp[se_col].fillna(0) > 0).any())
    pairs = [s for s in ("mean", "max") if all(f"corr{g}_{w}_{s}_median" in grp for w in _WHERE)]
    for stat in pairs:
        for where, (color, _) in _WHERE.items():
            col = f"corr{g}_{where}_{stat}"
            c = grp.dropna(subset=[f"{col}_median"])
            ax.plot(c["step"], c[f"{col}_median"], color=color, ls=_STAT[stat][0], lw=1.4)
            if (c[f"{col}_n"] > 1).any():
                ax.fill_between(c["step"], c[f"{col}_min"], c[f"{col}_max"], color=color, alpha=0.12, lw=0)
            if mc:
                ax.errorbar(c["step"], c[f"{col}_median"], yerr=2 * c[se_col].fillna(0), fmt="none",
                            ecolor=color, elinewidth=0.7, capsize=1.5, alpha=0.5)
    if mc:
        c = grp.dropna(subset=[se_col])
        ax.plot(c["step"], 2 * c[se_col], color="0.4", ls=":", lw=1.2)
    ax.set_ylim(bottom=0)


def plot_curriculum(curves: pd.DataFrame, marks: pd.DataFrame, path) -> list[str]:
    """Figure 2 (middle) and Figure 9, like with like: per teacher setting a row of panels, one per
    probed degree (at most three per row, wrapped), each with the in-support (blue) vs off-support
    (red) correlation ``|E p(x) chi_U(x)|`` averaged over monomials (solid) and maximized over them
    (dashed) vs teacher step: median over teacher seeds, band = min-max over seeds, bars = +-2 Monte
    Carlo standard errors of one monomial's estimate (grey dotted: 2 SE itself; none for exact
    probes). Right axis (grey): teacher test accuracy; green dash-dot: the checkpoints the automatic
    rule chose. One legend by meaning below the panels; returns its labels."""
    panels = curriculum_panels(curves)
    ncols = min(3, max(1, len(panels)))
    rows_of = {}
    for setting, _ in panels:
        rows_of[setting] = rows_of.get(setting, 0) + 1
    nrows = sum(-(-n // 3) for n in rows_of.values())
    fig, grid = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 3.7 * nrows), squeeze=False)
    places = []
    r = 0
    for setting, n in rows_of.items():
        places += [(r + i // 3, i % 3) for i in range(n)]
        r += -(-n // 3)
    used = set(places)
    for (i, j) in np.ndindex(nrows, ncols):
        if (i, j) not in used:
            grid[i, j].axis("off")
    groups = dict(list(curves.groupby(TEACHER_SETTING, dropna=False, sort=True)))
    rules, mc_any, seeds_any = set(), False, False
    for (setting, g), (i, j) in zip(panels, places):
        ax, grp = grid[i, j], groups[setting]
        _corr_panel(ax, grp, g)
        mc_any |= f"corr{g}_se_median" in grp and bool((grp[f"corr{g}_se_median"].fillna(0) > 0).any())
        seeds_any |= bool((grp.filter(like="_n").max() > 1).any())
        chi = _DEGREE.get(g, f"degree-{g} monomial")
        ax.set(xlabel=_step_label(grp), ylabel="|E p(x) chi_U(x)|",
               title=f"{_label(TEACHER_SETTING, setting)}\ndegree {g}: chi_U = {chi}")
        acc = grp.dropna(subset=["test_accuracy_median"])
        ax2 = ax.twinx()
        ax2.plot(acc["step"], acc["test_accuracy_median"], color="0.55", lw=1.0)
        if (acc["test_accuracy_n"] > 1).any():
            ax2.fill_between(acc["step"], acc["test_accuracy_min"], acc["test_accuracy_max"], color="0.55", alpha=0.12,
                             lw=0)
        ax2.set_ylim(0.4, 1.02)
        ax2.set_ylabel("teacher test accuracy", color="0.4")
        ax2.tick_params(axis="y", colors="0.4")
        for step, rule in _setting_marks(marks, setting).itertuples(index=False):
            ax.axvline(step, **_CHECKPOINT)
            rules.add(rule)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Line2D([], [], color=color, ls=ls, lw=1.4, label=f"{name} {stat_name}")
               for stat, (ls, stat_name) in _STAT.items() for color, name in _WHERE.values()]
    if seeds_any:
        handles.append(Patch(color="0.5", alpha=0.25, label="band: min-max over teacher seeds (line: median)"))
    if mc_any:
        handles += [Line2D([], [], color="0.3", marker="|", ls="none", ms=9, label="bars: +-2 Monte Carlo SE"),
                    Line2D([], [], color="0.4", ls=":", lw=1.2, label="2 SE of one monomial (MC noise level)")]
    handles.append(Line2D([], [], color="0.55", lw=1.0, label="teacher test accuracy (right axis)"))
    handles += [Line2D([], [], **_CHECKPOINT, label=f"chosen checkpoint ({rule} rule)") for rule in sorted(rules)]
    n = len(handles)  # legend in 2 rows under 3 panels (filled by column: in/off pairs stay together)
    ncol = -(-n // {3: 2, 2: 3}.get(ncols, n))  # under one panel: one column
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    legend_in = 0.2 * -(-n // ncol) + 0.1  # inches: legend rows of 8-point text, and a margin
    fig.set_figheight(3.7 * nrows + legend_in)
    fig.tight_layout(rect=(0, legend_in / fig.get_figheight(), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [h.get_label() for h in handles]


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
