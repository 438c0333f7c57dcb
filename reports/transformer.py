"""The Transformer sections of the report: PCFG teacher (Figures 4, 22), PCFG students (Figure 1
right, Figure 24), PCFG students' features (Figure 5) and parity Transformers (Figures 11-13).

:func:`transformer_sections` writes, per figure, ``<name>.png`` and ``<name>.csv`` (the numbers
drawn, plus ``<name>_marks.csv`` / ``<name>_summary.csv`` where the figure has marks or a table)
and returns :class:`reports.section.Section` objects; a figure whose data is missing gets a one-line
note instead. Only families with runs in the directory get sections.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import transformer_data as TD
from . import transformer_figures as TF
from .section import Section

__all__ = ["transformer_sections", "TRANSFORMER_FIGURES"]

#: Figure names (file stems of the PNG/CSV files) in report order.
TRANSFORMER_FIGURES = ("pcfg_teacher", "pcfg_students", "pcfg_features", "parity_transformer")
_DROP = ["family"]


def _csv(out: Path, name: str, df: pd.DataFrame) -> str:
    df.drop(columns=[c for c in _DROP if c in df.columns]).to_csv(out / name, index=False)
    return name


def _shown(table: pd.DataFrame, experiments: pd.DataFrame) -> pd.DataFrame:
    """A table for the markdown: the experiment column only when there are several experiments."""
    if "experiment" in table.columns and experiments["experiment"].nunique() <= 1:
        return table.drop(columns="experiment")
    return table


def _pcfg_teacher(out: Path, fr: TD.TransformerFrames) -> Section:
    sec = Section("pcfg_teacher", "PCFG teacher: loss, n-gram measures and non-terminal probes (Figures 4, 22)",
                  "The supervising teacher run of each experiment: held-out loss vs step with triangles at the "
                  "checkpoints its students used (C_1 labelled), held-out masked accuracy, M_robust(n) and "
                  "M_close(n) (eqs. 5-6, medians over sampled positions) and the non-terminal probe accuracy per "
                  "level (Appendix D.3) at the steps they were measured. Dotted: the exact Bayes-optimal loss and "
                  "accuracy on the same held-out sentences and masks (inside-outside posterior, distill.optimal), "
                  "where the teacher's summary holds them.")
    curve = TD.teacher_curve(fr)
    if curve.empty:
        sec.note = "PCFG teacher: left out (no PCFG teacher metrics in this directory: students only)."
        return sec
    missing = [name for prefix, name in (("m_robust_", "M_robust"), ("m_close_", "M_close"),
                                         ("probe_level_", "probe accuracy"))
               if not TD.measure_columns(curve, prefix)]
    if missing:
        sec.text += f" Not logged by this teacher (panel left out): {', '.join(missing)}."
    marks = TD.mark_points(fr.marks, curve)
    sec.csvs.append(_csv(out, "pcfg_teacher.csv", curve))
    if not marks.empty:
        sec.csvs.append(_csv(out, "pcfg_teacher_marks.csv", marks))
    else:
        sec.text += " (No student of these teachers used an intermediate checkpoint: no triangles.)"
    TF.plot_pcfg_teacher(curve, marks, fr.experiments, out / "pcfg_teacher.png")
    sec.figure = "pcfg_teacher.png"
    sec.table = _shown(_teacher_table(curve, marks, fr.experiments), fr.experiments)
    sec.table_caption = "Teacher run drawn, its final numbers and the checkpoints of its students (teacher steps):"
    return sec


def _teacher_table(curve: pd.DataFrame, marks: pd.DataFrame, experiments: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for exp, c in curve.groupby("experiment", sort=False):
        last = c.iloc[-1]
        m = marks[marks["experiment"] == exp] if not marks.empty else marks
        first = m[m["first"]] if not m.empty else m
        row = {"experiment": exp, "teacher run": int(last["run"]), "final step": int(last["step"]),
               "final loss": float(last["test_loss"]), "final accuracy": float(last["test_accuracy"])}
        acc, se = TD.bayes_of(experiments, exp), TD.bayes_of(experiments, exp, "bayes_accuracy_se")
        if acc is not None:  # older runs have no Bayes ceiling: no columns
            loss = TD.bayes_of(experiments, exp, "bayes_loss")
            row.update({"Bayes accuracy": f"{acc:.4f} +- {se:.4f}" if se is not None else f"{acc:.4f}",
                        "gap to Bayes": acc - row["final accuracy"],
                        "Bayes loss": loss if loss is not None else float("nan")})
        row.update({"C_1": ",".join(f"{r.step} ({r.rule})" if r.rule else str(r.step)
                                    for r in first.itertuples(index=False)) if len(first) else "",
                    "checkpoints": ",".join(str(s) for s in m["step"]) if len(m) else ""})
        rows.append(row)
    return pd.DataFrame(rows)


def _pcfg_students(out: Path, fr: TD.TransformerFrames) -> Section:
    sec = Section("pcfg_students", "PCFG students: accuracy vs samples (Figure 1 right, Figure 24)",
                  "Student held-out accuracy vs samples (steps x batch) per strategy: median over seeds, band = "
                  "min-max; dashed: the supervising teacher run's final accuracy; dotted: the exact Bayes-optimal "
                  "accuracy on the same held-out set (where the teacher's summary holds it; the students are "
                  "evaluated on the teacher's held-out sentences and masks when their eval_size is the same).")
    curves = TD.student_curves(fr.students)
    if curves.empty:
        sec.note = "PCFG students: left out (no PCFG student metrics in this directory)."
        return sec
    ref = fr.experiments[["experiment", "reference_accuracy"]].rename(
        columns={"reference_accuracy": "teacher_final_accuracy"})
    sec.csvs.append(_csv(out, "pcfg_students.csv", curves.merge(ref, on="experiment", how="left")))
    speed = TD.speed_table(fr)
    sec.csvs.append(_csv(out, "pcfg_students_summary.csv", speed))
    TF.plot_pcfg_students(curves, fr.experiments, out / "pcfg_students.png")
    sec.figure = "pcfg_students.png"
    cols = [c for c in speed.columns if not c.startswith(("m_close_", "m_robust_", "probe_level_"))]
    sec.table = _shown(speed[cols], fr.experiments)
    sec.table_caption = ("Per strategy: median samples to 80/90/95% of the teacher's final accuracy (a run that "
                         "never got there counts as infinitely slow; blank: the median did not get there), runs, "
                         "median final accuracy (and its gap to the Bayes-optimal accuracy, when known):")
    return sec


def _pcfg_features(out: Path, fr: TD.TransformerFrames) -> Section:
    sec = Section("pcfg_features", "PCFG students' features (Figure 5)",
                  "Per strategy, the final M_close(n) and M_robust(n) (lower: more use of long context) and the "
                  "final non-terminal probe accuracy per level (higher: better structure); median over seeds, "
                  "bars = min-max. Final = the last value each run logged.")
    table = TD.feature_table(fr.students)
    if table.empty:
        sec.note = ("PCFG students' features: left out (the students logged no M_robust, M_close or probe: "
                    "measure_every = probe_every = 0).")
        return sec
    sec.csvs.append(_csv(out, "pcfg_features.csv", table))
    TF.plot_pcfg_features(table, fr.experiments, out / "pcfg_features.png")
    sec.figure = "pcfg_features.png"
    wide = table.assign(column=table["measure"] + "_" + table["n"].astype(str)).pivot_table(
        index=["experiment", "strategy"], columns="column", values="median", sort=False)
    order = [f"{m}_{n}" for m in ("m_close", "m_robust", "probe_level")
             for n in sorted(table.loc[table["measure"] == m, "n"].unique())]
    sec.table = _shown(wide[order].rename_axis(columns=None).reset_index(), fr.experiments)
    sec.table_caption = "Median over seeds of the final measures (m_*_n: n-gram size; probe_level_l: level):"
    return sec


def _parity(out: Path, fr: TD.TransformerFrames) -> Section:
    sec = Section("parity_transformer", "Parity Transformers (Figures 11-13)",
                  "Teacher test accuracy, degree-1 correlations with in-support (mean) vs off-support (mean, max) "
                  "coordinates (Figure 12) and attention on in- vs off-support coordinates (Figure 11) vs teacher "
                  "step (shared x axis; dashed: the students' checkpoints), then the students' test accuracy vs "
                  "samples per strategy (Figure 13; median over seeds, band = min-max).")
    curve, curves = TD.teacher_curve(fr), TD.student_curves(fr.students)
    if curve.empty and curves.empty:
        sec.note = "Parity Transformers: left out (no parity Transformer metrics in this directory)."
        return sec
    marks = TD.mark_points(fr.marks, curve, "test_accuracy")
    if not curve.empty:
        absent = [p for p in ("corr1", "attn") if p not in TF.parity_teacher_panels(curve)]
        if absent:
            sec.text += f" Not probed by this teacher (probe_every = 0; panel left out): {', '.join(absent)}."
        sec.csvs.append(_csv(out, "parity_transformer.csv", curve))
    else:
        curve = pd.DataFrame(columns=["experiment", "step"])
        sec.text += " (No teacher metrics in this directory: students only.)"
    if not marks.empty:
        sec.csvs.append(_csv(out, "parity_transformer_marks.csv", marks))
    if not curves.empty:
        sec.csvs.append(_csv(out, "parity_transformer_students.csv", curves))
        speed = TD.speed_table(fr)
        sec.csvs.append(_csv(out, "parity_transformer_summary.csv", speed))
        sec.table = _shown(speed, fr.experiments)
        sec.table_caption = ("Per strategy: median samples to 95/99% test accuracy (never reached counts as "
                             "infinitely slow; blank: the median did not get there), runs, median final accuracy:")
    TF.plot_parity_transformer(curve, marks, curves, fr.experiments, out / "parity_transformer.png")
    sec.figure = "parity_transformer.png"
    return sec


def transformer_sections(out, root, metrics: pd.DataFrame | None = None) -> list[Section]:
    """The Transformer sections of ``root`` written into ``out``: the three PCFG sections when PCFG runs
    exist, the parity section when parity Transformer runs exist (none for an MLP-only directory).
    ``metrics``: :func:`infra.store.load_metrics` of ``root`` (read when None)."""
    out = Path(out)
    frames = TD.transformer_frames(root, metrics)
    present = set(frames.experiments["family"])
    sections = []
    if "pcfg" in present:
        pcfg = frames.family("pcfg")
        sections += [_pcfg_teacher(out, pcfg), _pcfg_students(out, pcfg), _pcfg_features(out, pcfg)]
    if "parity" in present:
        sections.append(_parity(out, frames.family("parity")))
    if "text" in present:
        sections += _text_sections(out, frames.family("text"))
    return sections


_TEXT_TITLES = {"pcfg_teacher": "Text teacher: loss and n-gram measures (Section 4.2, Figure 6 left and middle)",
                "pcfg_students": "Text students: accuracy vs samples (Figure 6 right)",
                "pcfg_features": "Text students' n-gram measures (as Figure 5)"}


def _text_sections(out: Path, fr: TD.TransformerFrames) -> list[Section]:
    """Masked LM on natural text (``text-*`` runs): the three PCFG sections drawn for them, with their
    files in ``out/text/`` and text titles (there is no non-terminal probe: text has no parse)."""
    sub = out / "text"
    sub.mkdir(parents=True, exist_ok=True)
    sections = [_pcfg_teacher(sub, fr), _pcfg_students(sub, fr), _pcfg_features(sub, fr)]
    for sec in sections:
        sec.title = _TEXT_TITLES[sec.name]
        sec.name = "text_" + sec.name[len("pcfg_"):]
        sec.figure = f"text/{sec.figure}" if sec.figure else None
        sec.csvs = [f"text/{c}" for c in sec.csvs]
        sec.note = sec.note.replace("PCFG", "Text") if sec.note else None
    return sections
