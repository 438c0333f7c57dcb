"""Matplotlib (Agg) drawings of the Transformer tables of :mod:`reports.transformer_data`; each
function saves one PNG (200 dpi) and its PDF, with one group of panels per experiment (one teacher and
its students), at most three panels per row (:mod:`reports.style`: fixed strategy colours, engineering
tick labels on steps and samples; panel titles name the experiment by its setting, never by run hash).
"""
from __future__ import annotations

import textwrap

import pandas as pd

from . import style as S
from .transformer_data import bayes_of, measure_columns

__all__ = ["pcfg_teacher_panels", "parity_teacher_panels", "plot_pcfg_teacher", "plot_pcfg_students",
           "plot_pcfg_features", "plot_parity_transformer"]

_MEASURE_TITLES = {"m_robust_": (r"$M_{\mathrm{robust}}(n)$ (eq. 5)", "median TV distance", "n"),
                   "m_close_": (r"$M_{\mathrm{close}}(n)$ (eq. 6)", "median TV distance", "n"),
                   "probe_level_": ("non-terminal probe (Def. 4.3)", "probe accuracy", "level")}


def _grid(counts, width: float = S.PANEL[0], height: float = S.PANEL[1]):
    """One group of panels per experiment (``counts``: panels per experiment), wrapped at three per row."""
    return S.group_grid(counts, panel=(width, height))


def _label(experiments: pd.DataFrame, exp: str) -> str:
    """The experiment's label without its run hash; a number when two experiments share one setting."""
    labels = {e: S.no_hash(lab) or "experiment" for e, lab in zip(experiments["experiment"], experiments["label"])}
    text = labels.get(exp, S.no_hash(str(exp)) or "experiment")
    same = [e for e, lab in labels.items() if lab == text]
    if len(same) > 1:
        text += f" (teacher {same.index(exp) + 1} of {len(same)})"
    return textwrap.fill(text, 60)


def _title(ax, title: str, experiments: pd.DataFrame, exp: str, first: bool) -> None:
    """Panel title; the row's first panel also names the experiment (one teacher and its students)."""
    ax.set_title(f"{_label(experiments, exp)}\n{title}" if first else title, fontsize=9)


#: Reference lines and marks that are not strategies: no strategy's colour (:data:`reports.style.OTHER_COLOURS`).
_BAYES, _MARK = "#a55194", "#e7ba52"


def pcfg_teacher_panels(curve: pd.DataFrame) -> list[str]:
    """The panels :func:`plot_pcfg_teacher` draws: ``loss``, ``accuracy`` and each measure prefix with data."""
    acc = ["accuracy"] if "test_accuracy" in curve.columns and curve["test_accuracy"].notna().any() else []
    return ["loss"] + acc + [p for p in _MEASURE_TITLES if measure_columns(curve, p)]


def _bayes_line(ax, value: float | None, se: float | None, what: str) -> None:
    """The exact Bayes-optimal ``what`` (accuracy or loss) as a dotted line, +-2 SE shaded."""
    if value is None:
        return
    ax.axhline(value, color=_BAYES, ls=":", lw=1.5, label=f"Bayes-optimal {what} ({value:.3f})")
    if se is not None and se > 0:
        ax.axhspan(value - 2 * se, value + 2 * se, color=_BAYES, alpha=0.1, lw=0)


@S.styled
def plot_pcfg_teacher(curve: pd.DataFrame, marks: pd.DataFrame, experiments: pd.DataFrame, path) -> None:
    """Figure 4 (left, middle) and Figure 22: per experiment, the supervising teacher run's held-out
    loss vs step with triangles at the students' checkpoints (C_1 labelled), its held-out accuracy,
    then M_robust(n), M_close(n) (one line per n) and the probe accuracy per level vs step (at the
    steps measured). Dotted on loss and accuracy: the exact Bayes-optimal values, when known."""
    panels = pcfg_teacher_panels(curve)
    exps = list(dict.fromkeys(curve["experiment"]))
    fig, axes = _grid([len(panels)] * len(exps))
    for row, exp in zip(axes, exps):
        c = curve[curve["experiment"] == exp]
        for ax, panel in zip(row, panels):
            if panel == "loss":
                ax.plot(c["step"], c["test_loss"], color="k", label="held-out loss (eq. 3)")
                m = marks[marks["experiment"] == exp] if not marks.empty else marks
                if not m.empty:
                    ax.plot(m["step"], m["test_loss"], "v", color=_MARK, mec="k", mew=0.6, ms=8, ls="none",
                            label="students' checkpoints")
                    for r in m[m["first"]].itertuples(index=False):
                        ax.annotate(f"$C_1$={S.format_eng(r.step)}" + (f" ({r.rule})" if r.rule else ""),
                                    (r.step, r.test_loss), xytext=(4, 8), textcoords="offset points", fontsize=8)
                _bayes_line(ax, bayes_of(experiments, exp, "bayes_loss"), bayes_of(experiments, exp, "bayes_loss_se"),
                            "loss")
                ax.set(xlabel="teacher step", ylabel="held-out loss")
                _title(ax, "teacher held-out loss (Figure 4, left)", experiments, exp, True)
            elif panel == "accuracy":
                ax.plot(c["step"], c["test_accuracy"], color="k", label="held-out masked accuracy")
                _bayes_line(ax, bayes_of(experiments, exp), bayes_of(experiments, exp, "bayes_accuracy_se"),
                            "accuracy")
                ax.set(xlabel="teacher step", ylabel="held-out accuracy")
                _title(ax, "teacher held-out accuracy", experiments, exp, False)
            else:
                title, ylabel, key = _MEASURE_TITLES[panel]
                for col in measure_columns(c, panel):
                    d = c.dropna(subset=[col])
                    ax.plot(d["step"], d[col], marker=".", label=f"${key}$={col[len(panel):]}")
                ax.set(xlabel="teacher step", ylabel=ylabel)
                _title(ax, title, experiments, exp, False)
            S.count_axis(ax, "x")
            ax.legend(fontsize=7)
    S.save(fig, path)


def _bands(ax, curves: pd.DataFrame, reference: float | None, bayes: tuple = (None, None)) -> None:
    for strategy, s in curves.groupby("strategy", sort=True):
        colour = S.colour_of(strategy)
        ax.plot(s["samples"], s["median"], color=colour, label=f"{strategy} (n={int(s['n'].max())})")
        if (s["n"] > 1).any():
            ax.fill_between(s["samples"], s["min"], s["max"], color=colour, alpha=0.2, lw=0)
    if reference is not None and pd.notna(reference):
        ax.axhline(reference, color="k", ls="--", lw=1, label=f"teacher final ({reference:.3f})")
    _bayes_line(ax, *bayes, "accuracy")
    ax.set(xlabel="samples (steps x batch)", ylabel="student held-out accuracy")
    S.count_axis(ax, "x")
    ax.legend(fontsize=7, title="strategy (seeds); band: min-max", title_fontsize=7)


@S.styled
def plot_pcfg_students(curves: pd.DataFrame, experiments: pd.DataFrame, path) -> None:
    """Figure 1 (right) / Figure 24: student held-out accuracy vs samples per strategy (median over
    seeds, min-max band), the teacher's final accuracy dashed, the Bayes-optimal accuracy dotted
    (when known); one panel per experiment."""
    exps = list(dict.fromkeys(curves["experiment"]))
    fig, axes = S.panel_grid(len(exps))
    for ax, exp in zip(axes, exps):
        ref = experiments.loc[experiments["experiment"] == exp, "reference_accuracy"]
        _bands(ax, curves[curves["experiment"] == exp], float(ref.iloc[0]) if len(ref) else None,
               (bayes_of(experiments, exp), bayes_of(experiments, exp, "bayes_accuracy_se")))
        _title(ax, "students", experiments, exp, True)
    S.save(fig, path)


@S.styled
def plot_pcfg_features(table: pd.DataFrame, experiments: pd.DataFrame, path) -> None:
    """Figure 5: per strategy, the final M_close(n), M_robust(n) (vs n) and probe accuracy (vs level),
    median over seeds with min-max bars; one row per experiment."""
    measures = [m for m in ("m_close", "m_robust", "probe_level") if (table["measure"] == m).any()]
    exps = list(dict.fromkeys(table["experiment"]))
    fig, axes = _grid([len(measures)] * len(exps))
    for row, exp in zip(axes, exps):
        t = table[table["experiment"] == exp]
        for j, (ax, measure) in enumerate(zip(row, measures)):
            title, ylabel, key = _MEASURE_TITLES[measure + "_"]
            for strategy, s in t[t["measure"] == measure].groupby("strategy", sort=True):
                s = s.sort_values("n")
                colour, marker = S.style_of(strategy)
                ax.errorbar(s["n"], s["median"], yerr=[s["median"] - s["min"], s["max"] - s["median"]],
                            marker=marker, color=colour, capsize=3, label=f"{strategy} (n={int(s['seeds'].max())})")
            ax.set(xlabel=f"${key}$", ylabel=f"final {ylabel}")
            ax.set_xticks(sorted(t.loc[t["measure"] == measure, "n"].unique()))
            _title(ax, f"students' final {title}", experiments, exp, j == 0)
            ax.legend(fontsize=7, title="strategy (seeds); bars: min-max", title_fontsize=7)
    S.save(fig, path)


_PARITY_PANELS = (("test_accuracy", (("test_accuracy", "k", "teacher test accuracy"),), "accuracy"),
                  ("corr1", (("corr1_in_mean", S.SUPPORT_COLOURS["in"], "in-support (mean)"),
                             ("corr1_off_mean", S.SUPPORT_COLOURS["off"], "off-support (mean)"),
                             ("corr1_off_max", "#ff9896", "off-support (max)")), "|degree-1 correlation|"),
                  ("attn", (("attn_in_support", S.SUPPORT_COLOURS["in"], "in-support"),
                            ("attn_off_support", S.SUPPORT_COLOURS["off"], "off-support")),
                   "path attention per bit (median; mean over bits)"))

_PARITY_TITLES = {"test_accuracy": "teacher test accuracy", "corr1": "degree-1 correlations (Figure 12)",
                  "attn": "attention on the support (Figure 11)"}


def parity_teacher_panels(curve: pd.DataFrame) -> list[str]:
    """The teacher panels :func:`plot_parity_transformer` draws (those whose columns hold data)."""
    return [name for name, cols, _ in _PARITY_PANELS if any(c in curve.columns and curve[c].notna().any()
                                                            for c, _, _ in cols)]


@S.styled
def plot_parity_transformer(curve: pd.DataFrame, marks: pd.DataFrame, curves: pd.DataFrame,
                            experiments: pd.DataFrame, path) -> None:
    """Figures 11-13: per experiment, the teacher's accuracy, degree-1 correlations in- vs off-support
    (Figure 12) and attention on in- vs off-support coordinates (Figure 11) vs teacher step on a
    shared x axis, dashed at the students' checkpoints; then students' accuracy vs samples per
    strategy (Figure 13; median over seeds, min-max band)."""
    panels = [p for p in _PARITY_PANELS if p[0] in parity_teacher_panels(curve)]
    exps = list(dict.fromkeys([*curve["experiment"], *(curves["experiment"] if not curves.empty else [])]))
    fig, axes = _grid([len(panels) + 1] * len(exps))
    for row, exp in zip(axes, exps):
        c = curve[curve["experiment"] == exp]
        steps = sorted(marks.loc[marks["experiment"] == exp, "step"].unique()) if not marks.empty else []
        for j, (ax, (name, cols, ylabel)) in enumerate(zip(row, panels)):
            if j:
                ax.sharex(row[0])
            for col, color, label in cols:
                if col in c.columns and c[col].notna().any():
                    d = c.dropna(subset=[col])
                    ax.plot(d["step"], d[col], color=color, marker="." if name != "test_accuracy" else None,
                            label=label)
            for k, s in enumerate(steps):
                ax.axvline(s, color="gray", ls="--", lw=1, label="students' checkpoints" if k == 0 else None)
            ax.set(xlabel="teacher step", ylabel=ylabel)
            S.count_axis(ax, "x")
            _title(ax, _PARITY_TITLES[name], experiments, exp, j == 0)
            ax.legend(fontsize=7)
        ax = row[len(panels)]
        s = curves[curves["experiment"] == exp] if not curves.empty else curves
        if not s.empty:
            _bands(ax, s, None)
        _title(ax, "students (Figure 13)", experiments, exp, not panels)
    S.save(fig, path)
