"""Build a report of a results directory: ``report.md``, a self-contained ``report.html`` and, per
figure, ``<name>.png`` (200 dpi) and ``<name>.pdf`` (:mod:`reports.style`) with the numbers behind it in
``<name>.csv``. The HTML page shows each figure at its size in inches and never wider than the page, and
no text below :data:`MIN_FONT_PX` pixels.

Only the run directories are read (through :mod:`infra.store`). A figure whose data is missing
is left out, with a one-line note in the report, never drawn empty.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np
import pandas as pd

from infra.compare import median_reached, ratio_interval
from infra.rundir import atomic_write_text
from infra.store import load_metrics, load_results
from theory._checks import ParameterError, check_int, check_real

from . import data as D
from . import figures as F
from .scaling import is_scaling_dir, scaling_sections
from .section import Section, markdown_table
from .transformer_data import has_mlp_runs, has_transformer_runs

__all__ = ["Section", "build_report", "markdown_table"]

#: Figure names in report order (file stems of the PNG/CSV files); Transformer figures follow
#: (``reports.transformer.TRANSFORMER_FIGURES``).
FIGURES = ("strategies", "curriculum", "theory", "scaling", "batch_width", "extraction")


def _write_csv(out: Path, name: str, df: pd.DataFrame) -> str:
    df.to_csv(out / name, index=False)
    return name


_PAIR_KEYS = ("teacher.seed", "student.seed", "teacher_seed", "student_seed", "seed", "d", "teacher.d", "student.width")


def strategy_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: median samples to 95% and 99% test accuracy over the runs (a run that never got
    there counts as infinitely slow; blank when the median did not get there), runs reaching 95%, the
    median final accuracy, and "x fewer than ce" / "x fewer than oneshot": median(baseline) / median(this
    strategy) of samples to 95% over the runs paired by their seeds (and setting), with a 95% bootstrap
    interval over the pairs (:func:`infra.compare.ratio_interval`)."""
    if results.empty or "strategy" not in results.columns:
        return pd.DataFrame()
    keys = [k for k in _PAIR_KEYS if k in results.columns]
    by = {s: g.set_index(keys)["samples_to_95"] if keys else g["samples_to_95"].reset_index(drop=True)
          for s, g in results.groupby("strategy", sort=False)}
    rows = []
    for strategy, g in results.groupby("strategy", sort=False):
        row = {"strategy": strategy}
        for t in ("95", "99"):
            med = median_reached(g[f"samples_to_{t}"].astype(float).tolist())
            row[f"median samples to {t}%"] = np.nan if med is None else med
        row["runs reaching 95%"] = f"{int(g['samples_to_95'].notna().sum())}/{len(g)}"
        row["median final accuracy"] = float(g["final_accuracy"].median())
        for base in ("ce", "oneshot"):
            if base in by and strategy != base:
                pair = by[base].index.intersection(by[strategy].index)
                if len(pair) and pair.is_unique:
                    est, lo, hi = ratio_interval(by[base][pair].tolist(), by[strategy][pair].tolist())
                    row[f"x fewer than {base} [95% CI]"] = f"{est:.2f} [{lo:.2f}, {hi:.2f}]"
        rows.append(row)
    table = pd.DataFrame(rows)
    ratios = [c for base in ("ce", "oneshot") for c in table.columns if c == f"x fewer than {base} [95% CI]"]
    return table[[c for c in table.columns if c not in ratios] + ratios]


def _strategies(out: Path, metrics: pd.DataFrame, results: pd.DataFrame) -> Section:
    sec = Section("strategies", "Strategies (Figure 1, left)",
                  "Student test accuracy vs samples per strategy: median over seeds, band = interquartile range.")
    curves = D.strategy_curves(D.student_rows(metrics))
    if curves.empty:
        sec.note = "Strategies: left out (no student metrics of compare or student runs in this directory)."
        return sec
    sec.csvs.append(_write_csv(out, "strategies.csv", curves))
    F.plot_strategies(curves, out / "strategies.png")
    sec.figure = "strategies.png"
    table = strategy_table(results[results["kind"].isin(("compare", "student"))] if "kind" in results else results)
    if not table.empty:
        sec.table = table
        sec.table_caption = "Samples (= steps x batch) to test accuracy, over the runs of each strategy:"
        sec.csvs.append(_write_csv(out, "strategies_summary.csv", table))
    return sec


def _probe_points(results: pd.DataFrame) -> str:
    """``", N = 16384 uniform points"`` from the teachers' ``probe_samples`` (blank when unknown or mixed)."""
    vals = {int(v) for c in ("teacher.probe_samples", "probe_samples") if c in results.columns
            for v in results[c].dropna().unique()} if not results.empty else set()
    return f" (N = {vals.pop()} uniform points per probe)" if len(vals) == 1 else ""


def _curriculum_text(curves: pd.DataFrame, results: pd.DataFrame, marked: bool) -> str:
    """The curriculum section's text, in step with :func:`reports.figures.plot_curriculum`."""
    degrees = D.probed_degrees(curves)
    seeds = int(curves["test_accuracy_n"].max()) if "test_accuracy_n" in curves else 1
    se = curves[[f"corr{g}_se_median" for g in degrees if f"corr{g}_se_median" in curves]]
    parts = [f"The teacher's correlation |E p(x) chi_U(x)| with degree-g monomials chi_U (g = "
             f"{', '.join(map(str, degrees))}; one panel each, Figure 2 middle and Figure 9) along training: "
             "in-support monomials (U inside the support S, blue) against off-support ones (some coordinate "
             "outside S, red), each pair alike: mean over monomials (solid) against mean, max (dashed) against "
             "max. Degree 1 probes all d coordinates" + ("; degrees >= 2 all in-support monomials and a random "
                                                         "sample of off-support ones." if max(degrees) > 1 else ".")]
    if not all(f"corr{g}_in_max_median" in curves for g in degrees):
        parts.append("Runs logged before corr{g}_in_max existed show only the means.")
    parts.append(f"Lines: median over {seeds} teacher seed{'s' if seeds != 1 else ''}; "
                 + ("band: min-max over the seeds." if seeds > 1 else "one seed, so no seed band."))
    if se.shape[1] == 0:
        parts.append("Monte Carlo standard errors were not logged by these runs (no error bars).")
    elif float(se.fillna(0).to_numpy().max()) == 0.0:
        parts.append("Probes exact over {+-1}^d: no Monte Carlo error.")
    else:
        parts.append(f"Probes by Monte Carlo{_probe_points(results)}: bars = +-2 standard errors of one "
                     "monomial's estimate (an upper bound for the means over monomials); grey dotted = 2 SE, "
                     "the level below which a zero correlation's estimate stays 95% of the time (a max over "
                     "many noise-level monomials sits above it).")
    parts.append("Grey, right axis: teacher test accuracy."
                 + (" Green dash-dot: the checkpoint the automatic rule chose." if marked
                    else " (No student summary records an automatically chosen checkpoint.)"))
    peaks = D.curriculum_peaks(curves)
    if not peaks.empty:
        parts.append("Largest in-minus-off gap of the means (medians): " + "; ".join(
            f"degree {r.degree}: {r.gap:.3g} at step {r.step:g} (in max {r.in_max:.3g} vs off max {r.off_max:.3g}"
            + (f", 2 SE = {2 * r.se:.2g})" if np.isfinite(r.se) and r.se > 0 else ")")
            for r in peaks.itertuples(index=False)) + ".")
    return " ".join(parts)


def _curriculum(out: Path, metrics: pd.DataFrame, results: pd.DataFrame) -> Section:
    sec = Section("curriculum", "Implicit curriculum (Figure 2 middle, Figure 9)")
    curves = D.teacher_curves(D.teacher_rows(metrics))
    if curves.empty or "corr1_in_mean_median" not in curves or curves["corr1_in_mean_median"].isna().all():
        sec.note = "Implicit curriculum: left out (no teacher metrics with degree-1 correlation probes)."
        return sec
    marks = D.checkpoint_marks(results)
    sec.csvs.append(_write_csv(out, "curriculum.csv", curves))
    if not marks.empty:
        sec.csvs.append(_write_csv(out, "curriculum_checkpoints.csv", marks))
    sec.text = _curriculum_text(curves, results, not marks.empty)
    F.plot_curriculum(curves, marks, out / "curriculum.png")
    sec.figure = "curriculum.png"
    return sec


def _theory(out: Path, theory_d: int, gap_ks, gap_ds) -> Section:
    sec = Section("theory", "Theory alone",
                  f"Left: exact |zeta_i(d)| at d={theory_d} vs the paper's stated order i^(-1/3)/C(d,i) and the "
                  "corrected order (theory/ERRATA.md). Right: exact Fourier gap vs 0.03 (d-1)^(-(k-1)/2); red x: "
                  "a d where the bound fails (drawn on the bound: a gap <= 0 has no place on a log axis).")
    zetas, gaps = D.zeta_table(theory_d, 15), D.gap_table(gap_ks, gap_ds)
    sec.csvs += [_write_csv(out, "theory_zeta.csv", zetas), _write_csv(out, "theory_gap.csv", gaps)]
    F.plot_theory(zetas, gaps, out / "theory.png")
    sec.figure = "theory.png"
    return sec


def _scaling(out: Path, results: pd.DataFrame, target: int) -> Section:
    sec = Section("scaling", "Scaling in d",
                  f"Samples to {target}% test accuracy vs d (log-log), fitted exponent with a 95% cluster-robust "
                  "t-interval (clusters: the students of one teacher at one d), beside the exponent theory.bounds "
                  "predicts.")
    points = D.scaling_points(results, target)
    if D.fittable(points).empty:
        sec.note = (f"Scaling in d: left out (needs samples_to_{target} of one strategy at two or more values "
                    "of d; this directory has " + (f"d = {sorted(int(v) for v in points['d'].unique())}" if not points.empty
                                                   else "none") + ").")
        return sec
    fits = D.exponent_table(points)
    sec.csvs += [_write_csv(out, "scaling.csv", points), _write_csv(out, "scaling_fits.csv", fits)]
    F.plot_scaling(points, fits, out / "scaling.png")
    sec.figure = "scaling.png"
    sec.table_caption = "Measured vs predicted exponents of d:"
    sec.table = fits[["strategy", "k", "d_values", "exponent", "ci_lo", "ci_hi", "n_points", "n_not_reached",
                      "predicted_exponent", "predicted_by"]]
    return sec


def _values(points: pd.DataFrame, col: str) -> str:
    return str(sorted(int(v) for v in points[col].unique())) if not points.empty else "[]"


def _batch_width(out: Path, results: pd.DataFrame, target: int, delta: float, tau: float) -> Section:
    sec = Section("batch_width", "Batch size and width",
                  f"Steps and samples to {target}% test accuracy vs batch size and vs hidden width (log-log), per "
                  "strategy (teacher runs: their width and batch; compare/student runs: the student's), median over "
                  "seeds with interquartile bars. Dashed on the steps-vs-width panel: Lemma B.10's width-optimization "
                  f"trade-off (theory.bounds.width_tradeoff_steps) with delta={delta:g}, tau={tau:g}: no learning "
                  "while steps <= (1/2) C(d,k) delta tau^2 / m, a lower bound that measured points must lie above.")
    points = D.batch_width_points(results, target)
    table = D.batch_width_table(points)
    drawn = [a for a in D.BW_AXES if D.batch_width_varies(table, a)]
    if not drawn:
        if points.empty:
            why = "no teacher, compare or student runs with a width and batch size"
        elif points["width"].nunique() < 2 and points["batch"].nunique() < 2:
            why = (f"this directory has one width and one batch size: width = {_values(points, 'width')}, "
                   f"batch = {_values(points, 'batch')}")
        else:
            why = (f"no strategy reached {target}% at two or more widths or batch sizes: width = "
                   f"{_values(points, 'width')}, batch = {_values(points, 'batch')}")
        sec.note = f"Batch size and width: left out ({why})."
        return sec
    frontier = D.batch_width_frontier(points, delta=delta, tau=tau)
    sec.csvs.append(_write_csv(out, "batch_width.csv", table))
    if not frontier.empty:
        sec.csvs.append(_write_csv(out, "batch_width_frontier.csv", frontier))
        below = frontier[frontier["above"].eq(False)]
        if not below.empty:
            sec.text += (" WARNING: measured steps below the Lemma B.10 bound at (d, k, width) = "
                         + ", ".join(f"({r.d}, {r.k}, {r.width})" for r in below.itertuples(index=False)) + ".")
    F.plot_batch_width(table, frontier, out / "batch_width.png", target=target, delta=delta, tau=tau)
    sec.figure = "batch_width.png"
    return sec


def _vector(out: Path, figure: str) -> str | None:
    """The figure's vector copy (``<stem>.pdf`` beside the PNG, :func:`reports.style.save`), if written."""
    pdf = Path(figure).with_suffix(".pdf")
    return pdf.as_posix() if (out / pdf).is_file() else None


def _markdown(title: str, source: str, out: Path, sections: list[Section]) -> str:
    lines = [f"# {title}", "", f"Results directory: `{source}`", ""]
    notes = [s.note for s in sections if s.note]
    if notes:
        lines += ["Missing figures:", "", *[f"- {n}" for n in notes], ""]
    for s in sections:
        if s.figure is None:
            continue
        pdf = _vector(out, s.figure)
        vector = f"; vector figure: [{pdf}]({pdf})" if pdf else ""
        lines += [f"## {s.title}", "", s.text, "", f"![{s.title}]({s.figure})", "",
                  "Data: " + ", ".join(f"[{c}]({c})" for c in s.csvs) + vector, ""]
        if s.table is not None:
            lines += [s.table_caption, "", markdown_table(s.table), ""]
    return "\n".join(lines)


#: Smallest font size of the HTML report's text, in CSS pixels (tests/test_report_screenshot.py checks it).
MIN_FONT_PX = 12
#: CSS pixels per inch: a figure is shown at its size in inches (``width = pixels * CSS_DPI / DPI``), never wider
#: than the page (``max-width: 100%``).
CSS_DPI = 96
_CSS = ("body{font-family:sans-serif;font-size:16px;line-height:1.45;max-width:1200px;margin:auto;padding:0 12px}"
        "h1{font-size:28px}h2{font-size:22px;margin-top:1.6em}"
        "img{display:block;max-width:100%;height:auto;margin:8px 0}"
        f"code,.files,table{{font-size:{MIN_FONT_PX + 2}px}}"
        ".table{max-width:100%;overflow-x:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}")


def _png_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` in pixels from a PNG's IHDR chunk; None if ``data`` is not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _dpi(data: bytes) -> float:
    """Dots per inch from a PNG's pHYs chunk (:data:`reports.style.DPI` when absent)."""
    at = data.find(b"pHYs")
    if at < 0 or data[at + 12] != 1:  # unit 1: metres
        return 200.0
    return int.from_bytes(data[at + 4:at + 8], "big") * 0.0254


def _html(title: str, source: str, out: Path, sections: list[Section]) -> str:
    esc = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{esc(title)}</h1><p>Results directory: <code>{esc(source)}</code></p>"]
    notes = [s.note for s in sections if s.note]
    if notes:
        parts.append("<p>Missing figures:</p><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    for s in sections:
        if s.figure is None:
            continue
        data = (out / s.figure).read_bytes()
        size = _png_size(data)
        width = f" width='{round(size[0] * CSS_DPI / _dpi(data))}'" if size else ""
        png = base64.b64encode(data).decode("ascii")
        pdf = _vector(out, s.figure)
        parts += [f"<h2>{esc(s.title)}</h2><p>{esc(s.text)}</p>",
                  f"<img alt='{esc(s.title)}'{width} src='data:image/png;base64,{png}'>",
                  "<p class='files'>Data: " + ", ".join(f"<code>{esc(c)}</code>" for c in s.csvs)
                  + (f"; vector figure: <code>{esc(pdf)}</code>" if pdf else "") + "</p>"]
        if s.table is not None:
            parts.append("<div class='table'>" + s.table.to_html(index=False, float_format=lambda v: f"{v:.3g}",
                                                                  na_rep="") + "</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def build_report(results_dir, out_dir, *, target: int = 95, n_boot: int = 1000, seed: int = 0,
                 theory_d: int = 51, gap_ks=(2, 4, 6), gap_ds=None, frontier_delta: float = 0.5,
                 frontier_tau: float = 0.5, progress=None) -> list[Section]:
    """Write the report of ``results_dir`` into ``out_dir`` (created); return its sections.

    MLP sections (strategies, curriculum, theory, scaling, batch/width) appear when the directory
    holds MLP runs or no Transformer runs; Transformer sections (:mod:`reports.transformer`: PCFG
    teacher, students and features; parity Transformers) when it holds Transformer runs: a plain
    ``icurr pcfg compare`` / ``icurr parity-transformer compare`` directory or a sweep of them. A scaling
    directory (``scaling.json`` or ``searches/``) gets :func:`reports.scaling.scaling_sections` first,
    and the sections above read its online sweep ``OUT/online``.

    ``target``: accuracy percent of the scaling figure (60, 95 or 99: the summaries' fields);
    ``n_boot``/``seed``: draws of the B1* exponent intervals (:func:`reports.scaling_data.bracket_fit`) and
    the seed of their ``numpy.random.Generator``;
    ``theory_d``, ``gap_ks``, ``gap_ds``: the theory figure's d, the k of its gap curves and their d;
    ``frontier_delta``, ``frontier_tau``: delta and tau (both in (0, 1)) of Lemma B.10's frontier on
    the batch/width figure (``target`` is also its accuracy); ``progress(name)``, when given, is called as
    each step starts (the bar of ``icurr report``). Every argument is checked before anything is
    read or written; finished runs whose files cannot be read are left out with one warning line
    (:func:`infra.store.load_results`).
    """
    if target not in (60, 95, 99):
        raise ParameterError(f"target must be 60, 95 or 99 (the summaries' samples_to_* fields), got {target!r}")
    if isinstance(theory_d, bool) or not isinstance(theory_d, int) or not 3 <= theory_d <= 10**9:
        raise ParameterError(f"theory_d must be an integer in [3, 1000000000], got {theory_d!r}")
    check_int("n_boot", n_boot, 1, 1_000_000)
    check_int("seed", seed, 0, 2**53 - 1)
    check_real("frontier_delta", frontier_delta, 0, 1, lo_open=True, hi_open=True)
    check_real("frontier_tau", frontier_tau, 0, 1, lo_open=True, hi_open=True)
    step = progress or (lambda name: None)  # the first part is named once the results are read (bad input: one line)
    scaling = is_scaling_dir(results_dir)  # a scaling directory: its online sweep is OUT/online
    source = Path(results_dir) / "online" if scaling else results_dir
    empty = scaling and not Path(source).is_dir()
    results, metrics = (pd.DataFrame(), pd.DataFrame()) if empty else (load_results(source), load_metrics(source))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    gap_ds = gap_ds if gap_ds is not None else [d for d in range(5, 402, 8)]
    rng = np.random.default_rng(seed)
    transformer = has_transformer_runs(results)
    if scaling:
        step("scaling")
    sections = scaling_sections(out, Path(results_dir), n_boot=n_boot, rng=rng) if scaling else []
    if has_mlp_runs(results) or not transformer:  # MLP sections: MLP runs, or nothing else to show
        for name, make in (("strategies", lambda: _strategies(out, metrics, results)),
                           ("curriculum", lambda: _curriculum(out, metrics, results)),
                           ("theory", lambda: _theory(out, theory_d, gap_ks, gap_ds)),
                           ("scaling in d", lambda: _scaling(out, results, target)),
                           ("batch/width", lambda: _batch_width(out, results, target, frontier_delta, frontier_tau))):
            step(name)
            sections.append(make())
    if transformer:
        from .transformer import transformer_sections

        step("transformer sections")
        sections += transformer_sections(out, source, metrics)
    from .extraction import extraction_section

    step("extraction")
    extraction = extraction_section(out, source, metrics) if not empty else None
    if extraction is not None and extraction.figure is not None:
        sections.append(extraction)
    title = "Progressive distillation: report"
    step("report.md, report.html")
    atomic_write_text(out / "report.md", _markdown(title, str(results_dir), out, sections))
    atomic_write_text(out / "report.html", _html(title, str(results_dir), out, sections))
    return sections
