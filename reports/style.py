"""One figure style for every drawing of :mod:`reports`: tick labels, colours, panel grids, saving.

* :func:`format_eng` / :func:`count_axis`: engineering tick labels (``20k``, ``1.5M``, ``0.001``) on every
  axis of steps, samples or d, with few enough ticks that labels never run together; on log axes ticks at
  the data's values (``at=``, e.g. the swept d) or at 1-2-5 / decade steps.
* :data:`STRATEGY_STYLES`, :func:`colour_of`, :func:`marker_of` (from :mod:`infra.palette`): one fixed colour and marker per strategy
  (``infra.schedule.STRATEGIES``), per Algorithm 1 supervision (``simulate.two_stage_config.SUPERVISIONS``:
  ``labels`` takes ``ce``'s place) and for the teacher; an unknown name gets a colour of
  :data:`FALLBACK_COLOURS` chosen by a CRC of its name (never one a strategy owns). Lines that are not a
  strategy (a k, an n, a measure) cycle through :data:`OTHER_COLOURS`, which no strategy owns either.
* :func:`panel_grid` / :func:`group_grid`: at most :data:`MAX_COLUMNS` panels per row, wrapped.
* :func:`save`: ``<stem>.png`` at :data:`DPI` and ``<stem>.pdf`` beside it.
* :func:`styled`: a decorator that draws a figure function under :data:`RC` (font sizes in points).

Mathtext labels for the paper's symbols: :data:`D`, :data:`K`, :data:`TAU`, :data:`D_KM1`.
"""
from __future__ import annotations

import functools
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from cycler import cycler  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, Locator, MaxNLocator, NullLocator  # noqa: E402

from infra.palette import (ALIASES, FALLBACK_COLOURS, OTHER_COLOURS, STRATEGY_STYLES,  # noqa: E402,F401
                           SUPPORT_COLOURS, colour_of, marker_of, style_of)
from theory._checks import ParameterError  # noqa: E402

__all__ = ["DPI", "MAX_COLUMNS", "PANEL", "RC", "STRATEGY_STYLES", "FALLBACK_COLOURS", "OTHER_COLOURS",
           "SUPPORT_COLOURS", "D", "K", "TAU", "D_KM1", "format_eng", "ENG", "count_axis", "colour_of", "marker_of",
           "style_of", "panel_grid", "group_grid", "save", "styled", "no_hash", "HASH", "legend_below"]

#: Raster resolution of every saved PNG (dots per inch).
DPI = 200
#: Panels per row at most; more wrap onto further rows.
MAX_COLUMNS = 3
#: One panel's size in inches (width, height): at 3 per row the figure is 14.4 in wide, so a 9-point tick
#: label stays about 11 px tall when the HTML report scales it to a 1150 px column.
PANEL = (4.8, 3.6)
#: Mathtext labels of the papers' symbols.
D, K, TAU, D_KM1 = r"$d$", r"$k$", r"$\tau$", r"$d^{k-1}$"

#: Matplotlib settings of every figure (sizes in points): readable at :data:`PANEL` and in print.
RC = {
    "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
    "legend.fontsize": 8, "figure.titlesize": 11, "axes.prop_cycle": cycler(color=list(OTHER_COLOURS)),
    "savefig.dpi": DPI, "pdf.fonttype": 42, "axes.grid": False, "lines.linewidth": 1.5,
}

#: A run hash as the store names run directories (12 hex digits).
HASH = re.compile(r"\b[0-9a-f]{12}\b")
_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def format_eng(value: float, pos=None) -> str:
    """A tick label with three significant digits and an SI prefix: 20000 -> ``20k``, 1500000 -> ``1.5M``,
    150 -> ``150``, 0.001 -> ``0.001``, 0.00002 -> ``2e-5``, 0 -> ``0``. ``pos`` is matplotlib's (unused)."""
    x = float(value)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    sign, x = ("-" if x < 0 else ""), abs(float(f"{abs(x):.3g}"))
    if x < 1e-3:
        mant, exp = f"{x:.2e}".split("e")
        return f"{sign}{float(mant):g}e{int(exp)}"
    if x >= 1e15:
        return f"{sign}{x:.3g}"
    for scale, prefix in _PREFIXES:
        if x >= scale:
            return f"{sign}{x / scale:.3g}{prefix}"
    return f"{sign}{x:.3g}"


#: :func:`format_eng` as a matplotlib formatter.
ENG = FuncFormatter(format_eng)


class _LogSteps(Locator):
    """Log-axis ticks at 1..9 x 10^n (span under 0.8 decades), 1-2-5 x 10^n (up to 2.5 decades), every decade
    (up to 8), else every other one."""

    def __call__(self):
        lo, hi = sorted(self.axis.get_view_interval())
        return self.tick_values(lo, hi)

    def tick_values(self, vmin, vmax):
        lo, hi = sorted((vmin, vmax))
        if not (hi > 0 and math.isfinite(hi)):
            return []
        lo = lo if lo > 0 and math.isfinite(lo) else hi / 1e3
        decades = math.log10(hi / lo)
        subs, step = ((1, 2, 5), 1) if decades <= 2.5 else ((1,), 1 if decades <= 8 else 2)
        if decades < 0.8:  # under a decade: every integer multiple, so that two or more ticks fall inside
            subs = tuple(range(1, 10))
        first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        ticks = [s * 10.0 ** e for e in range(first, last + 1) if (e - first) % step == 0 for s in subs]
        inside = [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]
        return inside if len(inside) >= 2 else ticks


def count_axis(ax, which: str = "x", *, log: bool = False, at=None, nbins: int = 5) -> None:
    """Engineering tick labels on ``ax``'s ``which`` axis ("x" or "y") of steps, samples or d.

    ``log``: a log axis (set here); ``at``: tick exactly at these values (the data's: the swept d), no minor
    ticks; otherwise at most ``nbins`` + 1 ticks on a linear axis, 1-2-5 or decade ticks on a log one."""
    if which not in ("x", "y"):
        raise ParameterError(f"which must be 'x' or 'y', got {which!r}")
    axis = ax.xaxis if which == "x" else ax.yaxis
    if log:
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    if at is not None:
        values = sorted({float(v) for v in at if v is not None and math.isfinite(float(v)) and (not log or v > 0)})
        axis.set_major_locator(FixedLocator(values))
    elif log:
        axis.set_major_locator(_LogSteps())
    else:
        axis.set_major_locator(MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]))
    axis.set_major_formatter(ENG)
    if log or at is not None:
        axis.set_minor_locator(NullLocator())


def no_hash(text: str) -> str:
    """``text`` without run hashes (12 hex digits) and the ``run``/``,`` words left around them."""
    text = re.sub(r"(,\s*)?\brun\s+[0-9a-f]{12}\b", "", str(text))
    return re.sub(r"\s{2,}", " ", HASH.sub("", text)).strip(" ,")


def group_grid(counts, *, panel=PANEL, columns: int = MAX_COLUMNS):
    """A figure for groups of panels (e.g. one experiment or setting per group): each group starts a new
    row and wraps after ``columns`` panels. Returns ``(fig, [[axes of group 0], [axes of group 1], ...])``;
    grid cells left over are hidden. ``panel``: one panel's (width, height) in inches."""
    counts = [max(int(c), 0) for c in counts]
    ncols = max(1, min(columns, max(counts, default=1)))
    rows = [max(1, -(-c // ncols)) for c in counts] or [1]
    fig, grid = plt.subplots(sum(rows), ncols, figsize=(panel[0] * ncols, panel[1] * sum(rows)), squeeze=False)
    groups, r = [], 0
    for c, nr in zip(counts, rows):
        groups.append([grid[r + i // ncols, i % ncols] for i in range(c)])
        for i in range(c, nr * ncols):
            grid[r + i // ncols, i % ncols].set_visible(False)
        r += nr
    return fig, groups


def panel_grid(n: int, *, panel=PANEL, columns: int = MAX_COLUMNS):
    """``n`` panels, at most ``columns`` per row (5 -> 2 rows of 3, the last cell hidden): ``(fig, axes)``."""
    fig, groups = group_grid([n], panel=panel, columns=columns)
    return fig, groups[0]


def save(fig, path, *, tight: bool = True, vector=("pdf",)) -> list[Path]:
    """Save ``fig`` as ``path`` (PNG, :data:`DPI` dots per inch) and one vector copy per suffix of ``vector``
    beside it (same stem; PDF without a creation date, so a redraw is byte-stable), cropped to what is drawn
    (nothing outside the canvas is cut off), then close it.
    ``tight``: apply ``tight_layout`` first (off when the caller laid the figure out). Returns the paths."""
    path = Path(path)
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=DPI, bbox_inches="tight", pad_inches=0.05)
    out = [path]
    for suffix in vector:
        v = path.with_suffix("." + suffix)
        fig.savefig(v, bbox_inches="tight", pad_inches=0.05,
                    metadata={"CreationDate": None} if suffix == "pdf" else {"Date": None})
        out.append(v)
    plt.close(fig)
    return out


def styled(fn):
    """Run a drawing function under :data:`RC`."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with plt.rc_context(RC):
            return fn(*args, **kwargs)

    return wrapper


def legend_below(fig, handles, *, ncol: int | None = None, fontsize: float | None = None) -> float:
    """One figure legend under the panels; returns the height (inches) it takes, for ``tight_layout(rect=)``."""
    n = len(handles)
    ncol = ncol or min(n, 3)
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=fontsize, frameon=False)
    size = fontsize or plt.rcParams["legend.fontsize"]
    return (size / 72) * 1.6 * -(-n // ncol) + 0.15
