"""The Curriculum Extraction section of a report (Gupta & Karmalkar, 2025).

Left panel (their Figure 2): per input coordinate ``j``, the spread over projected teacher units of
``corr((A f_T)(x), x_j)``, from the ``projection_correlations`` that MLP extraction students write
in ``summary.json``; in-support coordinates in red. Right panel: the held-out alignment error
``extract_mse`` of extraction students (MLP and Transformer) against samples, median over seeds,
one line per run directory and extracted layer. Only run directories are read.
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


def _plot(table: pd.DataFrame, curves: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = int(not table.empty) + int(not curves.empty)
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 3.6), squeeze=False)
    axes = list(axes[0])
    if not table.empty:
        ax = axes.pop(0)
        per = table.groupby(["coordinate", "in_support"], as_index=False)["spread"].mean()
        colors = np.where(per["in_support"], "tab:red", "tab:blue")
        ax.bar(per["coordinate"], per["spread"], color=colors)
        ax.set(xlabel="coordinate j (red: in the support)", ylabel="std over units of corr(A f_T, x_j)",
               title="projected teacher features (Fig. 2, Gupta & Karmalkar)")
    if not curves.empty:
        ax = axes.pop(0)
        for (run, layer), g in curves.groupby(["run_hash", "extract_layer"], sort=True):
            ax.plot(g["samples"], g["extract_mse"], label=f"{run[:6]} layer {layer}")
        ax.set(xlabel="samples", ylabel="held-out alignment MSE", yscale="log", title="alignment stages")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def extraction_section(out: Path, root, metrics: pd.DataFrame):
    """The report section, or one with a note when the directory holds no extraction students."""
    from .section import Section

    sec = Section("extraction", "Curriculum Extraction",
                  "Left: per coordinate, the spread (std over the student's projected units and runs) of the "
                  "correlation of the projected final-teacher features with x_j; in-support coordinates in red. "
                  "Right: held-out alignment error of each extracted layer during its stage (median over seeds).")
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
    _plot(table, curves, out / "extraction.png")
    sec.figure = "extraction.png"
    return sec
