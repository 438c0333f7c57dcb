"""Matplotlib (Agg) drawings of :mod:`reports.scaling_data`: log-log, x = d with ticks at the swept d,
y in samples; one panel per k (three per row). One colour per supervision in every figure
(:data:`COLOURS`: labels take the colour of the online strategy ``ce``, the two-stage progressive
that of ``progressive``); measured points with error bars (bracket or interquartile range), censored
points open with an arrow off the grid edge, the fitted line solid, the predicted slope dashed
(anchored at the first measured point), the predicted value with unit constants dotted. Each
function writes ``<path>`` (PNG, 200 dpi) and the PDF beside it."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FixedLocator, NullLocator  # noqa: E402

from .scaling_data import KEYS  # noqa: E402

__all__ = ["COLOURS", "colour_of", "plot_b1", "plot_total", "plot_teacher_width", "plot_online"]

#: Fixed colours: online strategies, and the two-stage supervisions mapped onto them.
COLOURS = {"ce": "tab:blue", "oneshot": "tab:orange", "progressive": "tab:green", "two-shot": "tab:red",
           "equal-split": "tab:purple", "extraction": "tab:brown", "teacher": "black"}
_ALIAS = {"labels": "ce"}
_MARKERS = ("o", "s", "^", "D", "v", "P")


def colour_of(name: str) -> str:
    """The colour of a strategy or supervision (labels = ce); grey for an unknown name."""
    return COLOURS.get(_ALIAS.get(name, name), "tab:gray")


def _grid(n: int):
    ncols = min(3, max(n, 1))
    nrows = math.ceil(max(n, 1) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 5.2 * nrows), squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    return fig, list(axes.ravel())


#: Horizontal nudges (factors of d) of censored markers, which sit at the same grid edge for every supervision.
_NUDGE = {"labels": 0.95, "oneshot": 1.0, "progressive": 1.05}


def _log_axes(ax, xs, xlabel: str, ylabel: str, title: str, styles: int = 3) -> None:
    ax.set_xscale("log")
    ax.set_yscale("log")
    xs = sorted({int(x) for x in xs})
    ax.xaxis.set_major_locator(FixedLocator(xs))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(True, which="major", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    names = ["fit", "predicted slope (anchored at the first point)", "predicted value, unit constants"]
    handles += [Line2D([], [], color="gray", ls=ls) for ls in ("-", "--", ":")[:styles]]  # line styles, in grey
    labels += names[:styles]
    if handles:  # below the panel, so that it never hides a point
        ax.legend(handles, labels, fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2,
                  frameon=False)


def _save(fig, path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=200)
    fig.savefig(Path(path).with_suffix(".pdf"))
    plt.close(fig)


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
        suffix = f": p={r['exponent']:.2f} [{r['ci_lo']:.2f}, {r['ci_hi']:.2f}]"
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
        _log_axes(ax, pts.loc[pts["k"] == k, "d"], "d", "B1* (stage-1 batch, samples per step)", f"k={k}")
    _save(fig, path)


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
        _log_axes(ax, s.loc[s["k"] == k, "d"], "d", "samples to test loss eps (B1 T1 + B2 T2)", f"k={k}")
    _save(fig, path)


def plot_teacher_width(points: pd.DataFrame, path) -> None:
    """Progressive supervision against the teacher width m, per k with two or more widths: top row, B1* at
    each d (bracket bars; censored open, at the grid's edge); bottom row, the success rate at the largest
    batch evaluated (what a censored search leaves to see), with the target rate dashed."""
    pts = points[(points["supervision"] == "progressive") & points["teacher_width"].notna()]
    ks = [k for k in sorted(pts["k"].unique()) if pts.loc[pts["k"] == k, "teacher_width"].nunique() >= 2]
    fig, grid = plt.subplots(2, len(ks), figsize=(5.2 * len(ks), 9.0), squeeze=False)
    for col, k in enumerate(ks):
        p = pts[pts["k"] == k]
        ds = sorted(p["d"].unique())
        top, bottom = grid[0][col], grid[1][col]
        for (d, sw), g in p.groupby(["d", "student_width"], sort=True):
            g = g.sort_values("teacher_width")
            ok, cens = g[g["censored"] == ""], g[g["censored"] != ""]
            colour = matplotlib.colors.to_rgba(colour_of("progressive"), 0.35 + 0.65 * ds.index(d) / max(len(ds) - 1, 1))
            marker, label = _MARKERS[ds.index(d) % len(_MARKERS)], f"d={int(d)}, student {int(sw)}"
            top.plot(g["teacher_width"], g["y"], "-", color=colour, lw=1)
            top.errorbar(ok["teacher_width"], ok["hi"], yerr=[ok["hi"] - ok["lo"], np.zeros(len(ok))], fmt=marker,
                         color=colour, ms=5, capsize=3, label=label)
            top.plot(cens["teacher_width"], cens["y"], marker, mfc="none", color=colour, ms=7)
            bottom.plot(g["teacher_width"], g["top_rate"], "-" + marker, color=colour, ms=5, label=label)
        _log_axes(top, p["teacher_width"], "teacher width m", "progressive B1* (samples per step)", f"k={k}", styles=0)
        target = float(p["target_rate"].iloc[0]) if p["target_rate"].notna().any() else np.nan
        bottom.axhline(target, ls="--", color="gray", lw=1)
        bottom.set_xscale("log")
        widths = sorted({int(w) for w in p["teacher_width"]})
        bottom.set_xticks(widths, [str(w) for w in widths])
        bottom.xaxis.set_minor_locator(NullLocator())
        bottom.set(xlabel="teacher width m", ylabel="success rate at the largest B1 evaluated", ylim=(-0.05, 1.05),
                   title=f"k={k}: largest B1 {int(p['top_B1'].max())}; dashed: target rate")
        bottom.grid(True, alpha=0.3)
    _save(fig, path)


def plot_online(points: pd.DataFrame, fits: pd.DataFrame, path) -> None:
    """Online SGD: samples to 95% accuracy (top row) and to test loss eps (bottom row) vs d per strategy and
    k; median over runs with interquartile bars, fitted line solid, predicted slope dashed."""
    measures = [m for m in ("95% accuracy", "loss eps") if (points["measure"] == m).any()]
    ks = sorted(points["k"].unique())
    fig, grid = plt.subplots(len(measures), len(ks), figsize=(5.2 * len(ks), 4.0 * len(measures)), squeeze=False)
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
                    label += f": p={r['exponent']:.2f} [{r['ci_lo']:.2f}, {r['ci_hi']:.2f}]"
                    if not pd.isna(r["predicted_exponent"]):
                        ax.plot(dd, q[0.5].iloc[0] * (dd / dd[0]) ** r["predicted_exponent"], "--", color=colour)
                        label += f", predicted {r['predicted_exponent']:.2g}"
                ax.errorbar(q.index, q[0.5], yerr=[q[0.5] - q[0.25], q[0.75] - q[0.5]], fmt="o", color=colour, ms=4,
                            capsize=3, label=label)
            _log_axes(ax, p["d"] if len(p) else [1], "d", f"samples to {measure}", f"online SGD, k={k}: {measure}",
                      styles=2)
    _save(fig, path)
