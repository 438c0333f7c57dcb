"""Matplotlib (Agg) drawings of the tables of :mod:`reports.data`; each function saves one PNG (200 dpi)
and its PDF beside it, in the package's one style (:mod:`reports.style`: fixed strategy colours,
engineering tick labels, at most three panels per row)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from . import style as S
from .data import BW_AXES, SETTING, TEACHER_SETTING, batch_width_varies, probed_degrees

__all__ = ["plot_strategies", "plot_curriculum", "curriculum_panels", "plot_theory", "plot_scaling", "plot_batch_width"]

#: Mathtext names of setting keys in titles and legends.
_MATH = {"d": "$d$", "k": "$k$"}


def _label(keys, values) -> str:
    values = values if isinstance(values, tuple) else (values,)
    return ", ".join(f"{_MATH.get(k, k)}={v:g}" if isinstance(v, (int, float)) and not pd.isna(v)
                     else f"{_MATH.get(k, k)}={v}" for k, v in zip(keys, values) if not pd.isna(v))


@S.styled
def plot_strategies(curves: pd.DataFrame, path) -> None:
    """One panel per setting (three per row): median test accuracy vs samples per strategy (its fixed
    colour), band = interquartile range over seeds."""
    groups = list(curves.groupby(SETTING, dropna=False, sort=True))
    fig, axes = S.panel_grid(len(groups))
    for ax, (setting, grp) in zip(axes, groups):
        for strategy, s in grp.groupby("strategy", sort=True):
            s = s.sort_values("samples")
            colour = S.colour_of(strategy)
            ax.plot(s["samples"], s["median"], color=colour, label=f"{strategy} (n={int(s['n'].max())})")
            if (s["n"] > 1).any():
                ax.fill_between(s["samples"], s["q25"], s["q75"], color=colour, alpha=0.2, lw=0)
        ax.set(xlabel="samples", ylabel="student test accuracy", title=_label(SETTING, setting), ylim=(0.4, 1.02))
        S.count_axis(ax, "x")
        ax.legend(title="strategy (seeds); band: IQR", loc="lower right")
    S.save(fig, path)


#: Curriculum figure styles, fixed across panels: colour = where the monomials lie, line = statistic.
_WHERE = {"in": (S.SUPPORT_COLOURS["in"], "in-support"), "off": (S.SUPPORT_COLOURS["off"], "off-support")}
_STAT = {"mean": ("-", "mean over monomials"), "max": ("--", "max over monomials")}
_DEGREE = {1: "$x_j$", 2: "$x_i x_j$", 3: "$x_i x_j x_l$"}
_CHECKPOINT = dict(color="#637939", ls="-.", lw=1.4)  # olive green: no strategy's colour


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


@S.styled
def plot_curriculum(curves: pd.DataFrame, marks: pd.DataFrame, path) -> list[str]:
    """Figure 2 (middle) and Figure 9, like with like: per teacher setting a row of panels, one per
    probed degree (at most three per row, wrapped), each with the in-support (blue) vs off-support
    (red) correlation ``|E p(x) chi_U(x)|`` averaged over monomials (solid) and maximized over them
    (dashed) vs teacher step: median over teacher seeds, band = min-max over seeds, bars = +-2 Monte
    Carlo standard errors of one monomial's estimate (grey dotted: 2 SE itself; none for exact
    probes). Right axis (grey): teacher test accuracy; green dash-dot: the checkpoints the automatic
    rule chose. One legend by meaning below the panels; returns its labels."""
    panels = curriculum_panels(curves)
    counts = {}
    for setting, _ in panels:
        counts[setting] = counts.get(setting, 0) + 1
    fig, group_axes = S.group_grid(list(counts.values()))
    ncols = min(S.MAX_COLUMNS, max(counts.values(), default=1))
    axes = [ax for group in group_axes for ax in group]
    groups = dict(list(curves.groupby(TEACHER_SETTING, dropna=False, sort=True)))
    rules, mc_any, seeds_any = set(), False, False
    for (setting, g), ax in zip(panels, axes):
        grp = groups[setting]
        _corr_panel(ax, grp, g)
        mc_any |= f"corr{g}_se_median" in grp and bool((grp[f"corr{g}_se_median"].fillna(0) > 0).any())
        seeds_any |= bool((grp.filter(like="_n").max() > 1).any())
        chi = _DEGREE.get(g, f"degree-{g} monomial")
        ax.set(xlabel=_step_label(grp), ylabel=r"$|\mathrm{E}\,p(x)\,\chi_U(x)|$",
               title=f"{_label(TEACHER_SETTING, setting)}\ndegree {g}: $\\chi_U$ = {chi}")
        S.count_axis(ax, "x")
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
    height = fig.get_figheight()
    legend_in = S.legend_below(fig, handles, ncol=ncol)
    fig.set_figheight(height + legend_in)
    fig.tight_layout(rect=(0, legend_in / fig.get_figheight(), 1, 1))
    S.save(fig, path, tight=False)
    return [h.get_label() for h in handles]


@S.styled
def plot_theory(zetas: pd.DataFrame, gaps: pd.DataFrame, path) -> None:
    """Left: exact |zeta_i(d)| vs the stated and corrected orders. Right: Fourier gap vs the paper's bound
    (log-log in d, one colour per k)."""
    fig, (ax1, ax2) = S.panel_grid(2)
    ax1.semilogy(zetas["i"], zetas["abs_zeta"], "o-", label=r"exact $|\zeta_i(d)|$")
    ax1.semilogy(zetas["i"], zetas["stated_order"], "s--", label=r"stated $i^{-1/3}/\binom{d}{i}$")
    ax1.semilogy(zetas["i"], zetas["corrected_order"], "^:", label=r"corrected $i^{-3/4}/\sqrt{\binom{d}{i}}$")
    ax1.set(xlabel=r"degree $i$ (odd)", ylabel="magnitude",
            title=f"Majority coefficients, $d$={int(zetas['d'].iloc[0])}")
    ax1.legend()
    for k, grp in gaps.groupby("k"):
        pos = grp[grp["gap"] > 0]
        line, = ax2.loglog(pos["d"], pos["gap"], "o-", ms=3, label=f"exact gap, $k$={k}")
        ax2.loglog(grp["d"], grp["paper_bound"], "--", color=line.get_color(),
                   label=f"$0.03(d-1)^{{-(k-1)/2}}$, $k$={k}")
        fails = grp[grp["gap"] < grp["paper_bound"]]  # below the bound, zero or negative gaps included
        if len(fails):  # marked on the bound's line, where a gap <= 0 cannot be drawn on a log axis
            ax2.loglog(fails["d"], fails["paper_bound"], "x", color="red", ms=7, mew=1.5,
                       label=f"bound fails, $k$={k} ({len(fails)} $d$)")
    S.count_axis(ax2, "x", log=True)
    ax2.set(xlabel=S.D, ylabel=r"$|\zeta_{k-1}| - |\zeta_{k+1}|$", title="Fourier gap vs the paper's bound (x: fails)")
    ax2.legend(fontsize=7)
    S.save(fig, path)


@S.styled
def plot_scaling(points: pd.DataFrame, fits: pd.DataFrame, path) -> None:
    """Per k: samples to the target vs d (log-log, ticks at the swept d) per strategy, medians with the
    interquartile range over seeds as bars, seeds as faint dots, and the fitted power law."""
    ks = sorted(fits["k"].unique())
    fig, axes = S.panel_grid(len(ks))
    for ax, k in zip(axes, ks):
        ds = set()
        for row in fits[fits["k"] == k].itertuples(index=False):
            pts = points[(points["strategy"] == row.strategy) & (points["k"] == k)].dropna(subset=["samples"])
            pts = pts[pts["samples"] > 0]
            q = pts.groupby("d")["samples"].quantile([0.25, 0.5, 0.75]).unstack()
            colour, marker = S.style_of(row.strategy)
            ax.errorbar(q.index, q[0.5], yerr=[q[0.5] - q[0.25], q[0.75] - q[0.5]], fmt=marker, color=colour,
                        capsize=3, label=f"{row.strategy}: $p$={row.exponent:.2f} [{row.ci_lo:.2f}, {row.ci_hi:.2f}]")
            ax.plot(pts["d"], pts["samples"], ".", color=colour, alpha=0.3)
            dd = np.geomspace(q.index.min(), q.index.max(), 50)
            ax.plot(dd, np.exp(row.log_const) * dd ** row.exponent, "-", color=colour)
            ds |= set(q.index)
        S.count_axis(ax, "x", log=True, at=ds)
        S.count_axis(ax, "y", log=True)
        ax.set(xlabel=S.D, ylabel="samples to target accuracy", title=f"$k$={k}")
        ax.legend(fontsize=7, title="strategy: fitted exponent [95% CI]", title_fontsize=7)
    S.save(fig, path)


@S.styled
def plot_batch_width(table: pd.DataFrame, frontier: pd.DataFrame, path, *, target: int, delta: float,
                     tau: float) -> None:
    """Steps (left) and samples (right) to the target vs batch size (top row) and vs width (bottom
    row), log-log with ticks at the batch sizes / widths measured: one line per strategy (its colour),
    d, k and the other axis's value (markers), median with interquartile bars over seeds; a row only for
    an axis the directory varies. The width/steps panel adds Lemma B.10's frontier
    ``(1/2) C(d,k) delta tau^2 / m`` per (d, k), a lower bound on steps."""
    axes_drawn = [a for a in BW_AXES if batch_width_varies(table, a)]
    fig, groups = S.group_grid([2] * len(axes_drawn), panel=(5.6, 4.2))
    ok = table[table["steps_median"].notna() & (table["steps_median"] > 0)]
    for row, axis in zip(groups, axes_drawn):
        other = "width" if axis == "batch" else "batch"
        keys = ["strategy", "d", "k", other]
        for ax, qty in zip(row, ("steps", "samples")):
            for i, (key, grp) in enumerate(ok.groupby(keys, dropna=False, sort=True)):
                grp = grp.sort_values(axis)
                med = grp[f"{qty}_median"].to_numpy(float)
                err = np.vstack([med - grp[f"{qty}_q25"].to_numpy(float), grp[f"{qty}_q75"].to_numpy(float) - med])
                markers = ("o", "s", "^", "D", "v", "P")
                ax.errorbar(grp[axis], med, yerr=err, marker=markers[i % len(markers)], ms=4, capsize=3,
                            color=S.colour_of(key[0]), label=f"{_label(keys, key)} (n={int(grp['n'].max())})")
            if axis == "width" and qty == "steps" and not frontier.empty:
                for (d, k), f in frontier.groupby(["d", "k"], sort=True):
                    c = float((f["frontier_steps"] * f["width"]).iloc[0])  # steps x width is constant
                    ww = np.geomspace(f["width"].min(), f["width"].max(), 50)
                    ax.plot(ww, c / ww, "k--", lw=1, label=f"Lemma B.10 lower bound, $d$={d}, $k$={k}: "
                            + r"$\frac{1}{2}\binom{d}{k}\delta\tau^2/m$")
                ax.text(0.02, 0.02, f"frontier: $\\delta$={delta:g}, $\\tau$={tau:g}", transform=ax.transAxes,
                        fontsize=8)
            S.count_axis(ax, "x", log=True, at=ok[axis])
            S.count_axis(ax, "y", log=True)
            ax.set(xlabel="batch size" if axis == "batch" else "hidden width $m$",
                   ylabel=f"{qty} to {target}% test accuracy", title=f"{qty} vs {axis}")
            ax.legend(fontsize=7)
    S.save(fig, path)
