"""The Curriculum Extraction section of a report (Gupta & Karmalkar, 2025).

Left panel (their Figure 2): per input coordinate ``j``, the spread over projected teacher units of
``corr((A f_T)(x), x_j)``, from the ``projection_correlations`` that MLP extraction students write
in ``summary.json``; in-support coordinates in blue (as in the curriculum figure). Right panel: the
held-out alignment error ``extract_mse`` of extraction students (MLP and Transformer) against samples,
median over the run directories of one setting (band: min-max), one line per setting and extracted
layer. Only run directories are read.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from infra.store import finished_runs

__all__ = ["correlation_table", "alignment_curves", "extraction_section"]


def correlation_table(root) -> pd.DataFrame:
    """One row per (extraction run directory, coordinate): ``run_hash, coordinate, spread, in_support``."""
    rows = []
    for path in finished_runs(root):
        try:
            summary = json.loads((path / "summary.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        # a student run's own summary, or a (split) compare's students
        corr = summary.get("projection_correlations") or \
            (summary.get("students") or {}).get("extraction", {}).get("projection_correlations")
        if not corr:
            continue
        support = set(corr["support"])
        rows += [{"run_hash": path.name, "coordinate": j, "spread": s, "in_support": j in support}
                 for j, s in enumerate(corr["per_coordinate_std"])]
    return pd.DataFrame(rows)


def alignment_curves(metrics: pd.DataFrame) -> pd.DataFrame:
    """Median ``extract_mse`` over runs per (run directory, extracted layer, samples)."""
    if metrics.empty or "extract_mse" not in metrics.columns:
        return pd.DataFrame()
    m = metrics.dropna(subset=["extract_mse"])
    if "source" in m.columns:  # the alignment stages only
        m = m[m["source"].astype(str).str.startswith("extract:")]
    layer = m["extract_layer"] if "extract_layer" in m.columns else pd.Series(1, index=m.index)
    m = m.assign(extract_layer=layer.fillna(1).astype(int))
    return (m.groupby(["run_hash", "extract_layer", "samples"], as_index=False)["extract_mse"].median()
            .sort_values(["run_hash", "extract_layer", "samples"]))


def _run_settings(metrics: pd.DataFrame) -> dict:
    """``run_hash -> "kind: d=.., k=.., width .."`` from the runs' config columns (legends name settings,
    never run hashes); the student's field first, then the run's own, then the teacher's."""
    out = {}
    if metrics.empty or "run_hash" not in metrics.columns:
        return out
    for run, g in metrics.groupby("run_hash", sort=True):
        row, parts = g.iloc[0], []
        for key, name in (("d", "$d$="), ("k", "$k$="), ("width", "width ")):
            for col in (f"student.{key}", key, f"teacher.{key}"):
                if col in row.index and pd.notna(row[col]):
                    v = row[col]
                    parts.append(f"{name}{int(v) if float(v).is_integer() else v}")
                    break
        kind = str(row["kind"]) if "kind" in row.index and pd.notna(row["kind"]) else "extraction"
        out[run] = f"{kind}: " + ", ".join(parts) if parts else kind
    return out


def _plot(table: pd.DataFrame, curves: pd.DataFrame, settings: dict, path: Path) -> None:
    import matplotlib.pyplot as plt

    from . import style as S

    with plt.rc_context(S.RC):
        fig, axes = S.panel_grid(int(not table.empty) + int(not curves.empty))
        if not table.empty:
            ax = axes.pop(0)
            per = table.groupby(["coordinate", "in_support"], as_index=False)["spread"].mean()
            colors = np.where(per["in_support"], S.SUPPORT_COLOURS["in"], S.SUPPORT_COLOURS["off"])
            ax.bar(per["coordinate"], per["spread"], color=colors)
            ax.set(xlabel="coordinate $j$ (blue: in the support)",
                   ylabel=r"std over units of corr$(A f_T, x_j)$",
                   title="projected teacher features (Fig. 2, Gupta & Karmalkar)")
        if not curves.empty:
            ax = axes.pop(0)
            c = curves.assign(setting=curves["run_hash"].map(lambda r: settings.get(r, "extraction")))
            g = c.groupby(["setting", "extract_layer", "samples"])["extract_mse"]
            stats = g.agg(["median", "min", "max", "size"]).reset_index()
            colour = S.colour_of("extraction")
            markers = {s: m for s, m in zip(sorted(stats["setting"].unique()), ("o", "s", "^", "D", "v", "P") * 9)}
            for (setting, layer), s in stats.groupby(["setting", "extract_layer"], sort=True):
                ls = ("-", "--", ":", "-.")[(int(layer) - 1) % 4]
                runs = int(s["size"].max())
                ax.plot(s["samples"], s["median"], ls=ls, marker=markers[setting], ms=3, color=colour,
                        label=f"{setting}, layer {layer} (runs={runs})")
                if runs > 1:
                    ax.fill_between(s["samples"], s["min"], s["max"], color=colour, alpha=0.15, lw=0)
            S.count_axis(ax, "x")
            S.count_axis(ax, "y", log=True)
            ax.set(xlabel="samples", ylabel="held-out alignment MSE", title="alignment stages")
            ax.legend(fontsize=7, title="median over runs; band: min-max", title_fontsize=7)
        S.save(fig, path)


def extraction_section(out: Path, root, metrics: pd.DataFrame):
    """The report section, or one with a note when the directory holds no extraction students."""
    from .section import Section

    sec = Section("extraction", "Curriculum Extraction",
                  "Left: per coordinate, the spread (std over the student's projected units and runs) of the "
                  "correlation of the projected final-teacher features with x_j; in-support coordinates in blue. "
                  "Right: held-out alignment error of each extracted layer during its stage, per setting (median "
                  "over runs, band: min-max).")
    table, curves = correlation_table(root), alignment_curves(metrics)
    if table.empty and curves.empty:
        sec.note = "Curriculum Extraction: left out (no extraction students in this directory)."
        return sec
    if not table.empty:
        table.to_csv(out / "extraction_correlations.csv", index=False)
        sec.csvs.append("extraction_correlations.csv")
        s = table.groupby("in_support")["spread"].mean()
        if True in s.index and False in s.index:
            sec.text += f" Mean spread in the support {s[True]:.3f}, off it {s[False]:.3f}."
    if not curves.empty:
        curves.to_csv(out / "extraction_alignment.csv", index=False)
        sec.csvs.append("extraction_alignment.csv")
    _plot(table, curves, _run_settings(metrics), out / "extraction.png")
    sec.figure = "extraction.png"
    return sec
