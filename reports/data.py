"""The numbers behind each report figure, as pure functions of DataFrames (no files, no plotting).

Inputs are what :func:`infra.store.load_results` and :func:`infra.store.load_metrics` return.
:func:`standardize` first maps each kind's config columns to common names, so that compare,
student and teacher runs read alike:

* ``d``, ``k``: the task (``teacher.d``/``teacher.k`` for compare runs, ``d``/``k`` for teachers);
* ``teacher_width``, ``student_width``: hidden widths (missing where the kind has none);
* ``teacher_seed``, ``student_seed``: the seeds of the two trainings.

Every table returned here is written beside its figure as CSV.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from theory.bounds import progressive_upper, sq_sample_lower, width_tradeoff_steps
from theory.fourier import zeta
from theory.gap import fourier_gap, paper_gap_bound

__all__ = ["SETTING", "TEACHER_SETTING", "standardize", "student_rows", "teacher_rows", "strategy_curves",
           "teacher_curves", "CORR_STATS", "probed_degrees", "curriculum_peaks", "checkpoint_marks",
           "zeta_table", "gap_table", "scaling_points",
           "exponent_table", "teacher_cells", "fittable", "PREDICTED", "batch_width_points", "batch_width_table",
           "batch_width_frontier", "batch_width_varies"]

#: Columns that name one panel of the strategies figure / one teacher of the curriculum figure.
SETTING = ["d", "k", "student_width"]
TEACHER_SETTING = ["d", "k", "teacher_width"]
_COLUMNS = {
    "compare": {"teacher.d": "d", "teacher.k": "k", "teacher.width": "teacher_width",
                "student.width": "student_width", "teacher.seed": "teacher_seed", "student.seed": "student_seed"},
    "student": {"width": "student_width"},
    "teacher": {"d": "d", "k": "k", "width": "teacher_width"},
}
_STANDARD = ("d", "k", "teacher_width", "student_width", "teacher_seed", "student_seed")
#: Strategy -> (bound function, label): the exponent of d that theory predicts for samples to learn.
PREDICTED = {"ce": (sq_sample_lower, "sq_sample_lower: d^(k-1) from labels (lower)"),
             "teacher": (sq_sample_lower, "sq_sample_lower: d^(k-1) from labels (lower)"),
             "progressive": (progressive_upper, "progressive_upper: d^2 (upper)")}


def standardize(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of a store frame with the common columns of the module doc added (NaN where unknown)."""
    if df.empty or "kind" not in df.columns:
        return df.copy()
    parts = []
    for kind, part in df.groupby("kind", sort=False):
        part = part.copy()
        for src, dst in _COLUMNS.get(kind, {}).items():
            if src in part.columns:
                part[dst] = part[src]
        if kind == "student" and "seed" in part.columns:
            part["student_seed"] = part["seed"]
        if kind == "teacher" and "seed" in part.columns:
            part["teacher_seed"] = part["seed"]
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    for col in _STANDARD:
        if col not in out.columns:
            out[col] = np.nan
    return out


def student_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """Student metric rows (compare and student runs) with a ``strategy`` column."""
    m = standardize(metrics)
    if m.empty or "kind" not in m.columns:
        return pd.DataFrame()
    m = m[m["kind"].isin(["compare", "student"])]
    if "role" in m.columns:
        m = m[m["role"].notna() & (m["role"] != "teacher")].assign(strategy=lambda f: f["role"])
    elif "strategy" not in m.columns:
        return pd.DataFrame()
    return m.reset_index(drop=True)


def teacher_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """Teacher metric rows, one per teacher and step: compare runs that share a teacher hold copies
    of its metrics, kept once (same teacher config columns, seed and step)."""
    m = standardize(metrics)
    if m.empty or "kind" not in m.columns:
        return pd.DataFrame()
    parts = []
    comp = m[m["kind"] == "compare"]
    if not comp.empty and "role" in comp.columns:
        comp = comp[comp["role"] == "teacher"]
        keys = [c for c in comp.columns if c.startswith("teacher.")] + ["seed", "step"]
        parts.append(comp.drop_duplicates(subset=keys))
    teach = m[m["kind"] == "teacher"]
    if not teach.empty:
        parts.append(teach.drop_duplicates(subset=["run_hash", "run", "step"] if "run" in teach else None))
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    out["teacher_seed"] = out["seed"]
    return out


def _quantiles(df: pd.DataFrame, keys: list[str], value: str, prefix: str = "") -> pd.DataFrame:
    g = df.dropna(subset=[value]).groupby(keys, dropna=False)[value]
    out = pd.DataFrame({f"{prefix}median": g.median(), f"{prefix}q25": g.quantile(0.25),
                        f"{prefix}q75": g.quantile(0.75), f"{prefix}n": g.size()})
    return out.reset_index()


def strategy_curves(students: pd.DataFrame) -> pd.DataFrame:
    """Student test accuracy vs samples: median, quartiles and count over seeds, per setting and strategy."""
    if students.empty:
        return pd.DataFrame()
    return _quantiles(students, SETTING + ["strategy", "samples"], "test_accuracy")


#: The per-degree probe columns of :func:`simulate.probes.probe_summary` drawn by the curriculum figure,
#: in like-with-like pairs: in-support vs off-support mean, in-support vs off-support max.
CORR_STATS = ("in_mean", "off_mean", "in_max", "off_max")


def probed_degrees(frame: pd.DataFrame) -> list[int]:
    """The degrees ``g`` with a ``corr{g}_in_mean`` column holding some number (``corrmaj_*`` excluded)."""
    found = (re.fullmatch(r"corr(\d+)_in_mean(?:_median)?", str(c)) for c in frame.columns)
    cols = [(int(m.group(1)), m.group(0)) for m in found if m]
    return sorted({g for g, c in cols if frame[c].notna().any()})


def _spread(df: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """``{value}_median, _q25, _q75, _min, _max, _n`` over the rows (seeds) of each ``keys`` group."""
    g = df.dropna(subset=[value]).groupby(keys, dropna=False)[value]
    out = pd.DataFrame({f"{value}_median": g.median(), f"{value}_q25": g.quantile(0.25),
                        f"{value}_q75": g.quantile(0.75), f"{value}_min": g.min(), f"{value}_max": g.max(),
                        f"{value}_n": g.size()})
    return out.reset_index()


def teacher_curves(teachers: pd.DataFrame) -> pd.DataFrame:
    """The curriculum figure's numbers (Figure 2 middle, Figure 9), per teacher setting and step: median,
    quartiles, min, max and count over teacher seeds of the test accuracy and, for every probed degree
    ``g``, of ``corr{g}_in_mean, corr{g}_off_mean, corr{g}_in_max, corr{g}_off_max`` (those the runs
    logged); ``corr{g}_se_median``, the median over seeds of the Monte Carlo standard error of one
    monomial's estimate (0 for exact probes; absent for runs logged before it); ``samples_median``,
    samples seen at the step. Correlations exist only at probe steps (NaN elsewhere)."""
    if teachers.empty:
        return pd.DataFrame()
    keys = TEACHER_SETTING + ["step"]
    values = ["test_accuracy"] + [f"corr{g}_{s}" for g in probed_degrees(teachers) for s in CORR_STATS]
    frames = [_spread(teachers, keys, col) for col in values if col in teachers.columns]
    for col in [f"corr{g}_se" for g in probed_degrees(teachers)] + ["samples"]:
        if col in teachers.columns and teachers[col].notna().any():
            med = teachers.dropna(subset=[col]).groupby(keys, dropna=False)[col].median()
            frames.append(med.rename(f"{col}_median").reset_index())
    out = frames[0]
    for f in frames[1:]:
        out = out.merge(f, on=keys, how="outer")
    return out.sort_values(keys).reset_index(drop=True)


def curriculum_peaks(curves: pd.DataFrame) -> pd.DataFrame:
    """Per teacher setting and probed degree: the step where the median in-support mean exceeds the
    median off-support mean the most (``gap = in_mean - off_mean``) and, there, the max pair and
    ``se`` (NaN without the SE column) for the report's text."""
    rows = []
    for setting, grp in curves.groupby(TEACHER_SETTING, dropna=False, sort=True):
        for g in probed_degrees(grp):
            c = grp.dropna(subset=[f"corr{g}_in_mean_median", f"corr{g}_off_mean_median"])
            if c.empty:
                continue
            gap = c[f"corr{g}_in_mean_median"] - c[f"corr{g}_off_mean_median"]
            top = c.loc[gap.idxmax()]
            rows.append({**dict(zip(TEACHER_SETTING, setting)), "degree": g, "step": top["step"],
                         "gap": float(gap.max()),
                         **{s: float(top.get(f"corr{g}_{s}_median", np.nan)) for s in CORR_STATS},
                         "se": float(top.get(f"corr{g}_se_median", np.nan))})
    return pd.DataFrame(rows)


def checkpoint_marks(results: pd.DataFrame) -> pd.DataFrame:
    """The teacher steps that the automatic checkpoint rule chose (rows with ``checkpoint_step``)."""
    r = standardize(results)
    if r.empty or "checkpoint_step" not in r.columns:
        return pd.DataFrame()
    r = r[r["checkpoint_step"].notna()]
    if r.empty:
        return pd.DataFrame()
    cols = TEACHER_SETTING + ["teacher_seed", "strategy", "checkpoint_rule", "checkpoint_step"]
    r = r.assign(strategy=r["strategy"] if "strategy" in r.columns else np.nan)
    return r[cols].drop_duplicates().reset_index(drop=True)


# ---------------------------------------------------------------- theory alone

def zeta_table(d: int, i_max: int) -> pd.DataFrame:
    """Odd ``i <= i_max``: exact ``|zeta_i(d)|``, the paper's stated ``i^(-1/3)/C(d,i)`` and the
    corrected order ``i^(-3/4) C(d,i)^(-1/2)`` (see ``theory/ERRATA.md``; orders, constants 1)."""
    rows = []
    for i in range(1, min(i_max, d) + 1, 2):
        c = math.comb(d, i)
        rows.append({"d": d, "i": i, "abs_zeta": abs(float(zeta(i, d))), "stated_order": i ** (-1 / 3) / c,
                     "corrected_order": i ** (-3 / 4) / math.sqrt(c)})
    return pd.DataFrame(rows)


def gap_table(ks, ds) -> pd.DataFrame:
    """Exact Fourier gap ``|zeta_{k-1}| - |zeta_{k+1}|`` and the paper's ``0.03 (d-1)^(-(k-1)/2)``."""
    rows = []
    for k in ks:
        for d in ds:
            if d < k + 1:
                continue
            g = fourier_gap(d, k)
            rows.append({"k": k, "d": d, "gap": g["gap"], "paper_bound": paper_gap_bound(d, k),
                         "bound_holds": bool(g["gap"] >= paper_gap_bound(d, k))})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- scaling in d

def scaling_points(results: pd.DataFrame, target: int = 95) -> pd.DataFrame:
    """Samples to ``target``% test accuracy, one row per run and strategy: ``strategy, d, k, seed_key,
    samples`` (``samples`` NaN where the run never reached the target). Teacher runs count as
    strategy ``teacher``; compare runs add their teachers once per teacher seed."""
    r = standardize(results)
    col = f"samples_to_{target}"
    if r.empty or col not in r.columns or r["d"].isna().all():
        return pd.DataFrame()
    parts = []
    comp = r[r["kind"] == "compare"]
    if not comp.empty:
        parts.append(pd.DataFrame({"strategy": comp["strategy"], "d": comp["d"], "k": comp["k"],
                                   "seed_key": "t" + comp["teacher_seed"].astype(str) + "-s"
                                   + comp["student_seed"].astype(str), "samples": comp[col]}))
        tcol = f"teacher_{col}"
        if tcol in comp.columns:
            t = comp.drop_duplicates(subset=[c for c in comp.columns if c.startswith("teacher.")])
            parts.append(pd.DataFrame({"strategy": "teacher", "d": t["d"], "k": t["k"],
                                       "seed_key": "t" + t["teacher_seed"].astype(str), "samples": t[tcol]}))
    teach = r[r["kind"] == "teacher"]
    if not teach.empty:
        parts.append(pd.DataFrame({"strategy": "teacher", "d": teach["d"], "k": teach["k"],
                                   "seed_key": "t" + teach["teacher_seed"].astype(str), "samples": teach[col]}))
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True).dropna(subset=["d", "k"])
    out["d"], out["k"] = out["d"].astype(int), out["k"].astype(int)
    return out.sort_values(["k", "strategy", "d", "seed_key"]).reset_index(drop=True)


def fittable(points: pd.DataFrame) -> pd.DataFrame:
    """The (strategy, k) groups of :func:`scaling_points` with finite samples at two or more ``d``."""
    if points.empty:
        return points
    ok = points[np.isfinite(points["samples"].astype(float)) & (points["samples"] > 0)]
    n_d = ok.groupby(["strategy", "k"])["d"].transform("nunique")
    return ok[n_d >= 2]


def teacher_cells(points: pd.DataFrame) -> pd.Series:
    """The cluster of each row of :func:`scaling_points`: its (d, teacher seed) cell. The students of one
    teacher at one d share it, so their samples are correlated; teachers at different d are different
    runs, and a teacher is a cell of its own."""
    return points["d"].astype(str) + ":" + points["seed_key"].astype(str).str.split("-").str[0]


def exponent_table(points: pd.DataFrame) -> pd.DataFrame:
    """Fitted exponent of ``samples ~ d^p`` per (strategy, k) with its 95% cluster-robust t-interval over
    the (d, teacher seed) cells (:func:`teacher_cells`, :func:`reports.fit.fit_exponent`), beside the
    exponent of :data:`PREDICTED` (where theory names one) and the runs left out (never reached)."""
    from .fit import fit_exponent

    rows = []
    ok = fittable(points)
    for (strategy, k), grp in ok.groupby(["strategy", "k"], sort=True):
        fit = fit_exponent(grp["d"], grp["samples"].astype(float), teacher_cells(grp))
        allpts = points[(points["strategy"] == strategy) & (points["k"] == k)]
        bound, label = PREDICTED.get(strategy, (None, ""))
        pred = bound(int(grp["d"].max()), int(k), **({"eps": 0.05, "delta": 0.05} if bound is progressive_upper
                                                      else {})).d_exponent if bound else np.nan
        rows.append({"strategy": strategy, "k": int(k), "d_values": ",".join(map(str, sorted(grp["d"].unique()))),
                     **fit.as_dict(), "n_not_reached": int(len(allpts) - len(grp)),
                     "predicted_exponent": pred, "predicted_by": label})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- batch size and width

#: The two swept axes of the batch/width figure; each table row of one axis holds the other fixed.
BW_AXES = ("batch", "width")
_BW_KEYS = ["strategy", "d", "k", "width", "batch"]


def batch_width_points(results: pd.DataFrame, target: int = 95) -> pd.DataFrame:
    """Steps and samples to ``target``% test accuracy, one row per run and strategy: ``strategy,
    kind, d, k, width, batch, seed_key, steps, samples`` (NaN where the target was never reached).

    Teacher runs (strategy ``teacher``) read ``width``/``batch``; compare and student runs read the
    student's width and batch (``student.width``/``student.batch`` for compare runs)."""
    r = standardize(results)
    scol, ncol = f"steps_to_{target}", f"samples_to_{target}"
    if r.empty or scol not in r.columns:
        return pd.DataFrame()
    parts = []

    def col(frame, name):
        return frame[name] if name in frame.columns else pd.Series(np.nan, index=frame.index)

    comp = r[r["kind"] == "compare"]
    if not comp.empty:
        parts.append(pd.DataFrame({"strategy": col(comp, "strategy"), "kind": "compare", "d": comp["d"],
                                   "k": comp["k"], "width": col(comp, "student.width"),
                                   "batch": col(comp, "student.batch"),
                                   "seed_key": "t" + comp["teacher_seed"].astype(str) + "-s"
                                   + comp["student_seed"].astype(str),
                                   "steps": comp[scol], "samples": col(comp, ncol)}))
    for kind, strategy, prefix in (("student", None, "s"), ("teacher", "teacher", "t")):
        part = r[r["kind"] == kind]
        if part.empty:
            continue
        parts.append(pd.DataFrame({"strategy": col(part, "strategy") if strategy is None else strategy,
                                   "kind": kind, "d": part["d"], "k": part["k"], "width": col(part, "width"),
                                   "batch": col(part, "batch"), "seed_key": prefix + col(part, "seed").astype(str),
                                   "steps": part[scol], "samples": col(part, ncol)}))
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True).dropna(subset=["width", "batch"])
    for c in ("steps", "samples"):
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    for c in ("width", "batch"):
        out[c] = out[c].astype(int)
    # d, k: known for teachers and compare runs; student runs take them from their teacher (NaN here)
    return out.sort_values(_BW_KEYS + ["seed_key"]).reset_index(drop=True)


def batch_width_table(points: pd.DataFrame) -> pd.DataFrame:
    """Median, quartiles and count over seeds of steps and samples to the target, one row per
    strategy, d, k, width and batch (the figure reads it as lines over batch at fixed width and
    lines over width at fixed batch). Runs that never reached the target are counted in
    ``n_not_reached`` and left out of the quantiles."""
    if points.empty:
        return pd.DataFrame()
    reached = points.dropna(subset=["steps"])
    g = reached.groupby(_BW_KEYS, dropna=False)
    table = pd.DataFrame({"steps_median": g["steps"].median(), "steps_q25": g["steps"].quantile(0.25),
                          "steps_q75": g["steps"].quantile(0.75), "samples_median": g["samples"].median(),
                          "samples_q25": g["samples"].quantile(0.25), "samples_q75": g["samples"].quantile(0.75),
                          "n": g.size()})
    total = points.groupby(_BW_KEYS, dropna=False).size().rename("n_runs")
    table = total.to_frame().join(table, how="left").reset_index()
    table["n"] = table["n"].fillna(0).astype(int)
    table["n_not_reached"] = table["n_runs"] - table["n"]
    return table.drop(columns="n_runs")


def batch_width_varies(table: pd.DataFrame, axis: str) -> bool:
    """Whether some line of ``axis`` (fixed strategy, d, k and other axis) has finite steps at two
    or more values of ``axis``."""
    if table.empty:
        return False
    if axis not in BW_AXES:
        raise ValueError(f"axis must be one of {BW_AXES}, got {axis!r}")
    t = table[table["steps_median"].notna() & (table["steps_median"] > 0)]
    other = [c for c in _BW_KEYS if c != axis]
    return bool(not t.empty and (t.groupby(other, dropna=False)[axis].nunique() >= 2).any())


def batch_width_frontier(points: pd.DataFrame, *, delta: float = 0.5, tau: float = 0.5) -> pd.DataFrame:
    """Lemma B.10's width-optimization trade-off at every measured (d, k, width):
    ``frontier_steps = (1/2) C(d, k) delta tau^2 / width`` (:func:`theory.bounds.width_tradeoff_steps`),
    a lower bound on steps to learn, beside the fewest measured steps there and whether they lie
    above it (``above``; NaN/None where no run reached the target)."""
    if points.empty:
        return pd.DataFrame()
    p = points.dropna(subset=["d", "k"])
    rows = []
    for (d, k, width), grp in p.groupby(["d", "k", "width"], sort=True):
        bound = width_tradeoff_steps(int(d), int(k), int(width), delta=delta, tau=tau)
        steps = grp["steps"].dropna()
        lo = float(steps.min()) if len(steps) else np.nan
        rows.append({"d": int(d), "k": int(k), "width": int(width), "delta": delta, "tau": tau,
                     "frontier_steps": bound.value, "min_measured_steps": lo,
                     "above": bool(lo >= bound.value) if len(steps) else None, "bound": bound.source})
    return pd.DataFrame(rows)
