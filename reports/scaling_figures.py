"""Matplotlib (Agg) drawings of :mod:`reports.scaling_data`: log-log, x = d with ticks at the swept d,
y in samples; one panel per k (three per row). One colour per supervision in every figure
(:func:`reports.style.colour_of`: labels take the colour of the online strategy ``ce``, the two-stage
progressive that of ``progressive``); engineering tick labels (:mod:`reports.style`); measured points
with error bars (bracket or interquartile range), censored
points open with an arrow off the grid edge, the fitted line solid, the predicted slope dashed
(anchored at the first measured point), the predicted value with unit constants dotted. Each
function writes ``<path>`` (PNG, 200 dpi) and the PDF beside it."""
from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from . import style as S
from .scaling_data import KEYS
from .style import colour_of

__all__ = ["colour_of", "plot_b1", "plot_total", "plot_teacher_width", "plot_online"]

_MARKERS = ("o", "s", "^", "D", "v", "P")
#: One panel (inches): square, with room for the legend below it.
_PANEL = (5.2, 5.2)


def _grid(n: int):
    fig, axes = S.panel_grid(max(n, 1), panel=_PANEL)
    return fig, axes


#: Horizontal nudges (factors of d) of censored markers, which sit at the same grid edge for every supervision.
_NUDGE = {"labels": 0.95, "oneshot": 1.0, "progressive": 1.05}


def _log_axes(ax, xs, xlabel: str, ylabel: str, title: str, styles: int = 3) -> None:
    S.count_axis(ax, "x", log=True, at=sorted({int(x) for x in xs}))
    S.count_axis(ax, "y", log=True)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(True, which="major", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    names = ["fit", "predicted slope (anchored at the first point)", "predicted value, unit constants"]
    handles += [Line2D([], [], color="gray", ls=ls) for ls in ("-", "--", ":")[:styles]]  # line styles, in grey
    labels += names[:styles]
    if handles:  # below the panel, so that it never hides a point
        ax.legend(handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14),
                  ncol=2 if max(map(len, labels)) < 40 else 1, frameon=False)


def _name(sup, sw, tw=np.nan) -> str:
    return f"{sup}, student {int(sw)}" + ("" if pd.isna(tw) else f", teacher {int(tw)}")


def _select(frame: pd.DataFrame, key: tuple) -> pd.DataFrame:
    sel = np.ones(len(frame), bool)
    for col, val in zip(KEYS, key):
        sel &= (frame[col].isna() & pd.isna(val)) | (frame[col] == val)
    return frame[sel]


def _main_width(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the largest teacher width per (k, supervision, student width): the setting these figures draw."""
    tw = frame["teacher_width"].fillna(-1)
    return frame[tw == tw.groupby([frame[c] for c in KEYS[:3]]).transform("max")]


def _lines(ax, key, ds, y0, fits: pd.DataFrame, absolute: pd.DataFrame, colour: str) -> str:
    """The fitted (solid), predicted-slope (dashed) and unit-constant (dotted) lines; the legend suffix."""
    suffix = ""
    f = _select(fits, key) if not fits.empty else fits
    dd = np.geomspace(min(ds), max(ds), 40)
    if len(f):
        r = f.iloc[0]
        ax.plot(dd, np.exp(r["log_const"]) * dd ** r["exponent"], "-", color=colour, lw=1.2)
        suffix = f": $p$={r['exponent']:.2f} [{r['ci_lo']:.2f}, {r['ci_hi']:.2f}]"
        if not pd.isna(r["predicted_exponent"]):
            ax.plot(dd, y0 * (dd / min(ds)) ** r["predicted_exponent"], "--", color=colour, lw=1)
            suffix += f", predicted {r['predicted_exponent']:.2g}"
    a = _select(absolute, key).sort_values("d") if not absolute.empty else absolute
    if len(a):
        ax.plot(a["d"], a["predicted"], ":", color=colour, lw=1.5)
    return suffix


def _series(frame: pd.DataFrame, k: int):
    """``(key, rows, colour, marker)`` per setting (:data:`KEYS`) of ``k``: colour by supervision, marker by
    student width."""
    widths = sorted(frame.loc[frame["k"] == k, "student_width"].unique())
    for key, g in frame[frame["k"] == k].groupby(KEYS, dropna=False, sort=True):
        yield key, g, colour_of(key[1]), _MARKERS[widths.index(key[2]) % len(_MARKERS)]


@S.styled
def plot_b1(points: pd.DataFrame, fits: pd.DataFrame, absolute: pd.DataFrame, path) -> None:
    """B1* vs d per k: bracket as error bar; censored searches open, arrowed off the grid edge."""
    pts = _main_width(points)
    ks = sorted(pts["k"].unique())
    fig, axes = _grid(len(ks))
    for ax, k in zip(axes, ks):
        for key, g, colour, marker in _series(pts, k):
            ok, cens = g[g["censored"] == ""].sort_values("d"), g[g["censored"] != ""]
            suffix = _lines(ax, key, ok["d"], float(ok["hi"].iloc[0]), fits, absolute, colour) if len(ok) else ""
            ax.errorbar(ok["d"], ok["hi"], yerr=[ok["hi"] - ok["lo"], np.zeros(len(ok))], fmt=marker, color=colour,
                        ms=5, capsize=3, label=_name(*key[1:]) + suffix)
            for r in cens.itertuples(index=False):  # censored at the grid's edge: side by side per supervision
                up, x = r.censored == "above", r.d * _NUDGE.get(key[1], 1.0)
                ax.plot([x], [r.y], marker, mfc="none", color=colour, ms=7)
                ax.annotate("", xy=(x, r.y * (2.0 if up else 0.5)), xytext=(x, r.y),
                            arrowprops={"arrowstyle": "->", "color": colour})
        _log_axes(ax, pts.loc[pts["k"] == k, "d"], S.D, "$B_1^*$ (stage-1 batch, samples per step)", f"$k$={k}")
    S.save(fig, path)


@S.styled
def plot_total(summary: pd.DataFrame, fits: pd.DataFrame, absolute: pd.DataFrame, path) -> None:
    """Samples to test loss eps at B1* vs d per k: median over seeds, interquartile bars."""
    s = _main_width(summary)
    s = s[s["median"].notna()]  # a k whose searches never reached eps has no panel (nothing to draw on log axes)
    ks = sorted(s["k"].unique())
    fig, axes = _grid(len(ks))
    for ax, k in zip(axes, ks):
        for key, g, colour, marker in _series(s, k):
            ok = g[(g["censored"] == "") & g["median"].notna()].sort_values("d")
            open_ = g[(g["censored"] != "") & g["median"].notna()]
            suffix = _lines(ax, key, ok["d"], float(ok["median"].iloc[0]), fits, absolute, colour) if len(ok) else ""
            ax.errorbar(ok["d"], ok["median"], yerr=[ok["median"] - ok["q25"], ok["q75"] - ok["median"]], fmt=marker,
                        color=colour, ms=5, capsize=3, label=_name(*key[1:]) + suffix)
            ax.plot(open_["d"], open_["median"], marker, mfc="none", color=colour, ms=7)
        _log_axes(ax, s.loc[s["k"] == k, "d"], S.D, r"samples to test loss $\epsilon$ ($B_1 T_1 + B_2 T_2$)",
                  f"$k$={k}")
    S.save(fig, path)


@S.styled
def plot_teacher_width(points: pd.DataFrame, path) -> None:
    """Progressive supervision against the teacher width m, per k with two or more widths: top row, B1* at
    each d (bracket bars; censored open, at the grid's edge); bottom row, the success rate at the largest
    batch evaluated (what a censored search leaves to see), with the target rate dashed."""
    pts = points[(points["supervision"] == "progressive") & points["teacher_width"].notna()]
    ks = [k for k in sorted(pts["k"].unique()) if pts.loc[pts["k"] == k, "teacher_width"].nunique() >= 2]
    chunks = [ks[i:i + S.MAX_COLUMNS] for i in range(0, len(ks), S.MAX_COLUMNS)] or [[]]
    fig, groups = S.group_grid([n for c in chunks for n in (len(c), len(c))], panel=(5.2, 4.5))
    for i, k in enumerate(ks):  # k's of three per pair of rows: B1* on top, success rate below
        p = pts[pts["k"] == k]
        ds = sorted(p["d"].unique())
        pair, col = 2 * (i // S.MAX_COLUMNS), i % S.MAX_COLUMNS
        top, bottom = groups[pair][col], groups[pair + 1][col]
        for (d, sw), g in p.groupby(["d", "student_width"], sort=True):
            g = g.sort_values("teacher_width")
            ok, cens = g[g["censored"] == ""], g[g["censored"] != ""]
            shade = 0.35 + 0.65 * ds.index(d) / max(len(ds) - 1, 1)  # the progressive colour, darker with d
            colour = matplotlib.colors.to_rgba(colour_of("progressive"), shade)
            marker, label = _MARKERS[ds.index(d) % len(_MARKERS)], f"$d$={int(d)}, student {int(sw)}"
            top.plot(g["teacher_width"], g["y"], "-", color=colour, lw=1)
            top.errorbar(ok["teacher_width"], ok["hi"], yerr=[ok["hi"] - ok["lo"], np.zeros(len(ok))], fmt=marker,
                         color=colour, ms=5, capsize=3, label=label)
            top.plot(cens["teacher_width"], cens["y"], marker, mfc="none", color=colour, ms=7)
            bottom.plot(g["teacher_width"], g["top_rate"], "-" + marker, color=colour, ms=5, label=label)
        _log_axes(top, p["teacher_width"], "teacher width $m$", "progressive $B_1^*$ (samples per step)", f"$k$={k}",
                  styles=0)
        target = float(p["target_rate"].iloc[0]) if p["target_rate"].notna().any() else np.nan
        bottom.axhline(target, ls="--", color="gray", lw=1)
        S.count_axis(bottom, "x", log=True, at=sorted({int(w) for w in p["teacher_width"]}))
        bottom.set(xlabel="teacher width $m$", ylabel="success rate at the largest $B_1$ evaluated",
                   ylim=(-0.05, 1.05),
                   title=f"$k$={k}: largest $B_1$ {S.format_eng(int(p['top_B1'].max()))}; dashed: target rate")
        bottom.grid(True, alpha=0.3)
    S.save(fig, path)


@S.styled
def plot_online(points: pd.DataFrame, fits: pd.DataFrame, path) -> None:
    """Online SGD: samples to 95% accuracy (top row) and to test loss eps (bottom row) vs d per strategy and
    k; median over runs with interquartile bars, fitted line solid, predicted slope dashed."""
    measures = [m for m in ("95% accuracy", "loss eps") if (points["measure"] == m).any()]
    ks = sorted(points["k"].unique())
    fig, grid = S.group_grid([len(ks)] * len(measures), panel=(5.2, 4.6))  # one group (rows of three) per measure
    for row, measure in zip(grid, measures):
        for ax, k in zip(row, ks):
            p = points[(points["measure"] == measure) & (points["k"] == k)]
            p = p[p["samples"].astype(float) > 0]
            f = fits[(fits["measure"] == measure) & (fits["k"] == k)] if not fits.empty else fits
            for strategy, g in p.groupby("strategy", sort=True):
                colour = colour_of(strategy)
                q = g.groupby("d")["samples"].quantile([0.25, 0.5, 0.75]).unstack()
                label = strategy
                r = f[f["strategy"] == strategy]
                if len(r):
                    r = r.iloc[0]
                    dd = np.geomspace(q.index.min(), q.index.max(), 40)
                    ax.plot(dd, np.exp(r["log_const"]) * dd ** r["exponent"], "-", color=colour, lw=1.2)
                    label += f": $p$={r['exponent']:.2f} [{r['ci_lo']:.2f}, {r['ci_hi']:.2f}]"
                    if not pd.isna(r["predicted_exponent"]):
                        ax.plot(dd, q[0.5].iloc[0] * (dd / dd[0]) ** r["predicted_exponent"], "--", color=colour)
                        label += f", predicted {r['predicted_exponent']:.2g}"
                ax.errorbar(q.index, q[0.5], yerr=[q[0.5] - q[0.25], q[0.75] - q[0.5]], fmt=S.marker_of(strategy),
                            color=colour, ms=4, capsize=3, label=label)
            shown = measure.replace("eps", r"$\epsilon$")
            _log_axes(ax, p["d"] if len(p) else [1], S.D, f"samples to {shown}", f"online SGD, $k$={k}: {shown}",
                      styles=2)
    S.save(fig, path)
