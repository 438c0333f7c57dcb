"""The report's "Measured vs predicted scaling" sections of a scaling directory (``icurr scaling run``):
the two-stage training of Algorithm 1 (B1* vs d, samples to test loss eps vs d, progressive B1* vs
teacher width) and its online-SGD part (``OUT/online``), each a figure (PNG + PDF), CSVs of its points
and fits, and the table measured exponent [95% CI] | predicted exponent | consistent?.
Numbers: :mod:`reports.scaling_data` (here: the comparison of supervisions at each d and the online
part, which reuses :mod:`reports.data`); drawings: :mod:`reports.scaling_figures`."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from infra.store import load_results, read_json
from theory.bounds import progressive_upper

from . import data as D
from . import scaling_data as S
from . import scaling_figures as F
from .section import Section

__all__ = ["is_scaling_dir", "scaling_sections", "scale_text", "PAPER_SCALE", "advantage_table", "online_points",
           "online_teacher_losses", "online_fits", "load_online"]

TITLE = "Measured vs predicted scaling"
PAPER_SCALE = ("The paper's scale: d = 100, k = 6, teacher width 50000, students of width 100 and 1000, "
               "3-5 seeds.")
_TABLE = ("Measured exponent of d with its 95% interval, the exponent theory predicts as d -> infinity, the slope of "
          "its unit-constant formula over the measured d (logarithms and the exact |zeta_(k-1)(d)| included), and "
          "whether the interval holds the latter (the former where theory gives no formula):")


def is_scaling_dir(path) -> bool:
    """Whether ``path`` is a scaling directory: it holds ``scaling.json`` or ``searches/``."""
    p = Path(path)
    return (p / "scaling.json").is_file() or (p / "searches").is_dir()


def _csv(out: Path, name: str, df: pd.DataFrame, sec: Section) -> None:
    if df is not None and not df.empty:
        df.to_csv(out / name, index=False)
        sec.csvs.append(name)


def _by_k(frame: pd.DataFrame, col: str) -> str:
    return "; ".join(f"k={int(k)}: {sorted({int(v) for v in g[col].dropna()})}" for k, g in frame.groupby("k"))


def _once(values) -> str:
    vals = sorted({v for v in values if v is not None and not pd.isna(v)})
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in vals) or "unknown"


def scale_text(scaling_dir, searches: list[dict], points: pd.DataFrame, teachers: pd.DataFrame,
               online: pd.DataFrame) -> str:
    """The scale measured here (tier, d, k, widths, seeds, stage lengths) beside :data:`PAPER_SCALE`."""
    spec = read_json(Path(scaling_dir) / "scaling.json") or {}
    wall = spec.get("wall_seconds")
    parts = [f"Scale here (tier {spec.get('tier', 'unknown')}"
             + (f", wall time {wall / 60:.1f} min" if isinstance(wall, (int, float)) else "") + "):"]
    if not points.empty:
        runs = [S.read_run_summary(scaling_dir, s) for s in searches[:50]]
        parts.append(f"Algorithm 1: d per k {_by_k(points, 'd')}; student widths {_once(points['student_width'])}; "
                     f"teacher widths {_once(points['teacher_width'].dropna().astype(int))}; "
                     f"{_once(points['n_seeds'])} seeds per search point; target success rate "
                     f"{_once(points['target_rate'])}; eps {_once(points['eps'])}; stage lengths T1 = "
                     f"{_once(r.get('T1') for r in runs)}, T2 = {_once(r.get('T2') for r in runs)}, "
                     f"B2 = {_once(r.get('B2') for r in runs)}.")
    if not teachers.empty:
        parts.append(f"Teachers: {len(teachers)} runs, T1 = {_once(teachers['T1'])}, B1 = {_once(teachers['B1'])}, "
                     f"T2 = {_once(teachers['T2'])}, B2 = {_once(teachers['B2'])}.")
    if not online.empty and "d" in online.columns:
        parts.append(f"Online SGD: d per k {_by_k(online.dropna(subset=['d', 'k']), 'd')}, "
                     f"{online['run_hash'].nunique() if 'run_hash' in online else '?'} compare runs.")
    return " ".join(parts + [PAPER_SCALE])


def _b1(out, points, fits, cs, teacher_losses, lines, scale, criterion) -> Section:
    sec = Section("scaling_two_stage_b1", f"{TITLE}: stage-1 batch B1* of Algorithm 1",
                  f"{scale} {criterion} B1* vs d (log-log), one search per point; bar: the bracket (largest failing "
                  "B1, B1*]; open with an arrow: censored (the grid's largest B1 failed, or its smallest succeeded), "
                  "left out of the fit. Fit: least squares on the brackets' geometric midpoints; 95% interval: "
                  "refits with each point log-uniform inside its bracket (the grid's resolution) plus their "
                  "least-squares error (the points' scatter about the law). Predicted "
                  "exponents: labels k-1 (Lemma B.2/B.7), progressive 0 (Theorem B.1(1)), one-shot min(2c, k-1) "
                  "(Theorem B.1(2)) with c fitted from the teachers' final hinge losses (final_loss ~ d^-c). The "
                  "figure draws the largest teacher width of each supervision; the table fits every width.")
    _csv(out, "scaling_two_stage_b1.csv", points, sec)
    _csv(out, "scaling_two_stage_b1_fits.csv", fits, sec)
    _csv(out, "scaling_two_stage_b1_predicted.csv", lines, sec)
    _csv(out, "scaling_teacher_loss.csv", teacher_losses, sec)
    _csv(out, "scaling_teacher_loss_exponent.csv", cs, sec)
    if cs.empty:
        sec.text += " Teacher loss exponent c: left out (no teacher summaries with final_loss at two or more d)."
    else:
        sec.text += " Teachers: " + "; ".join(f"k={int(r.k)}, width {int(r.teacher_width)}: c = {r.c:.3g} "
                                              f"[{r.c_lo:.3g}, {r.c_hi:.3g}]" for r in cs.itertuples(index=False)) + "."
    F.plot_b1(points, fits, lines, out / "scaling_two_stage_b1.png")
    sec.figure = "scaling_two_stage_b1.png"
    if not fits.empty:
        sec.table, sec.table_caption = S.exponent_rows(fits, S.KEYS), _TABLE
    else:
        sec.text += " No setting has uncensored B1* at two or more d: no exponent fitted."
    return sec


def _total(out, total, cs) -> Section:
    sec = Section("scaling_two_stage_total", f"{TITLE}: samples to test loss eps (Algorithm 1)",
                  "Total samples B1 T1 + B2 x (stage-2 steps to test hinge loss <= eps) at B1* vs d, median over "
                  "seeds with interquartile bars; fit with a 95% cluster-robust t-interval over seeds. "
                  "Predicted: progressive 2 (Theorem "
                  "B.1(1)), labels max(k-1, 2) (Lemma B.7), one-shot max(min(2c, k-1), 2) (Theorem B.1(2)'s lower "
                  "bound with the d^2 stage 2 every supervision shares). The figure draws the largest teacher width.")
    summary = S.total_summary(total)
    if summary.empty or summary["median"].notna().sum() == 0:
        sec.note = f"{TITLE}, samples to loss eps: left out (no evaluation at B1* with samples_to_eps)."
        return sec
    fits = S.total_fits(total, cs)
    lines = S.predicted_lines(total, "total", cs)
    _csv(out, "scaling_two_stage_total.csv", total, sec)
    _csv(out, "scaling_two_stage_total_summary.csv", summary, sec)
    _csv(out, "scaling_two_stage_total_fits.csv", fits, sec)
    _csv(out, "scaling_two_stage_total_predicted.csv", lines, sec)
    F.plot_total(summary, fits, lines, out / "scaling_two_stage_total.png")
    sec.figure = "scaling_two_stage_total.png"
    if not fits.empty:
        sec.table, sec.table_caption = S.exponent_rows(fits, S.KEYS), _TABLE
    return sec


def _teacher_width(out, points) -> Section:
    sec = Section("scaling_teacher_width", f"{TITLE}: progressive B1* vs teacher width",
                  "Progressive B1* (top) and its success rate at the largest batch evaluated (bottom) vs the "
                  "teacher width m at each d (ERRATA, Lemma B.5(1): the stage-1 correlations "
                  "of mirrored pairs cancel in expectation over the initial signs, so the width matters). Table: "
                  "whether progressive's bracket lies below labels' and one-shot's at the same d and student width.")
    prog = points[points["supervision"] == "progressive"] if not points.empty else points
    if prog.empty or prog["teacher_width"].nunique() < 2:
        sec.note = (f"{TITLE}, teacher width: left out (progressive searches at "
                    f"{0 if prog.empty else prog['teacher_width'].nunique()} teacher width(s); needs 2).")
        return sec
    adv = advantage_table(points)
    _csv(out, "scaling_teacher_width.csv", prog, sec)
    _csv(out, "scaling_advantage.csv", adv, sec)
    F.plot_teacher_width(points, out / "scaling_teacher_width.png")
    sec.figure = "scaling_teacher_width.png"
    for other in ("labels", "oneshot"):
        sec.text += f" Progressive beats {other} (its B1* bracket below, at every d from there on): " + "; ".join(
            f"k={k}, student {sw}, teacher {int(tw)}: " + ("from d = %d" % d if d else "not at the largest d")
            for (k, sw, tw), d in _beats_from(adv, other).items()) + "."
    rates = prog.groupby(["k", "teacher_width"])["top_rate"].agg(["min", "max"])
    sec.text += " Progressive's success rate at the largest batch evaluated: " + "; ".join(
        f"k={k}, teacher {int(tw)}: {r['min']:.2f}-{r['max']:.2f}" for (k, tw), r in rates.iterrows()) + "."
    sec.table, sec.table_caption = _display(adv), "B1* per supervision at each d:"
    return sec


def advantage_table(points: pd.DataFrame) -> pd.DataFrame:
    """Per (k, student width, d, teacher width): whether progressive's B1* bracket lies below labels' and
    one-shot's ("yes": its B1* <= the other's largest failing B1, or the other failed on the whole grid;
    "no": its largest failing B1 >= the other's B1*; "tie": brackets overlap; "n/a": not measured)."""
    if points.empty or not (points["supervision"] == "progressive").any():
        return pd.DataFrame()
    rows = []
    for p in points[points["supervision"] == "progressive"].itertuples(index=False):
        row = {"k": p.k, "student_width": p.student_width, "d": p.d, "teacher_width": p.teacher_width,
               "progressive_B1_star": p.B1_star}
        for other in ("labels", "oneshot"):
            o = points[(points["supervision"] == other) & (points["k"] == p.k) & (points["d"] == p.d)
                       & (points["student_width"] == p.student_width)]
            if other == "oneshot" and (o["teacher_width"] == p.teacher_width).any():
                o = o[o["teacher_width"] == p.teacher_width]
            o = o.iloc[0] if len(o) else None
            row[f"{other}_B1_star"] = np.nan if o is None else o["B1_star"]
            row[f"beats_{other}"] = ("n/a" if o is None or p.censored == "above" else
                                     "yes" if o["censored"] == "above" or p.hi <= o["lo"] else
                                     "no" if p.lo >= o["hi"] else "tie")
        rows.append(row)
    return pd.DataFrame(rows)


def _beats_from(adv: pd.DataFrame, other: str) -> dict:
    """Per (k, student width, teacher width): the smallest d from which progressive beats ``other`` at
    every larger measured d (None when it does not at the largest)."""
    out = {}
    for key, g in adv.groupby(["k", "student_width", "teacher_width"], sort=True):
        yes = (g.sort_values("d", ascending=False)[f"beats_{other}"] == "yes").to_numpy()
        n = len(yes) if yes.all() else int(np.argmin(yes))  # the run of "yes" from the largest d down
        out[key] = int(g.sort_values("d")["d"].iloc[-n]) if n else None
    return out


def _display(df: pd.DataFrame) -> pd.DataFrame:
    """Integral float columns (widths, B1*) as plain integers, blank where missing."""
    out = df.copy()
    for col in out.columns:
        v = out[col]
        if v.dtype.kind == "f" and np.all(np.isnan(v) | (v == np.round(v))):
            out[col] = ["" if np.isnan(x) else str(int(x)) for x in v]
    return out


def _online(out, scaling_dir, online) -> Section:
    sec = Section("scaling_online", f"{TITLE}: online SGD",
                  "Online-SGD students (OUT/online) vs d: samples to 95% test accuracy and to test loss eps, median "
                  "with interquartile bars, fit with a 95% cluster-robust t-interval (clusters: the "
                  "students of one teacher at one d). No theorem is about online SGD: labels "
                  "(ce, teacher) borrow d^(k-1) (Section 3.2), progressive d^2 (Theorem B.1(1)), one-shot "
                  "min(2c, k-1) (Theorem B.1(2)) with c fitted from these teachers' final losses.")
    if online.empty:
        sec.note = f"{TITLE}, online SGD: left out (no finished runs under {Path(scaling_dir) / 'online'})."
        return sec
    points = online_points(online)
    losses = online_teacher_losses(online)
    cs = S.loss_exponents(losses, ["k"]) if not losses.empty else pd.DataFrame()
    fits = online_fits(points, cs)
    if fits.empty:
        sec.note = f"{TITLE}, online SGD: left out (no strategy reached its target at two or more d)."
        return sec
    if not (points["measure"] == "loss eps").any():
        sec.text += " Samples to loss eps: left out (the summaries hold no samples_to_loss_eps)."
    sec.text += (" Teacher loss exponent: left out (no teacher_final_loss at two or more d); one-shot n/a."
                 if cs.empty else " Teachers: " + "; ".join(f"k={int(r.k)}: c = {r.c:.3g} [{r.c_lo:.3g}, {r.c_hi:.3g}]"
                                                            for r in cs.itertuples(index=False)) + ".")
    _csv(out, "scaling_online.csv", points, sec)
    _csv(out, "scaling_online_fits.csv", fits, sec)
    _csv(out, "scaling_online_teacher_loss.csv", losses, sec)
    F.plot_online(points, fits, out / "scaling_online.png")
    sec.figure = "scaling_online.png"
    sec.table, sec.table_caption = S.exponent_rows(fits, ["measure", "strategy", "k"]), _TABLE
    return sec


def online_points(results: pd.DataFrame) -> pd.DataFrame:
    """:func:`reports.data.scaling_points` of the online sweep for 95% accuracy and for test loss eps
    (``samples_to_loss_eps``, when the summaries hold it), with a ``measure`` column."""
    parts = []
    for target, measure in ((95, "95% accuracy"), ("loss_eps", "loss eps")):
        pts = D.scaling_points(results, target) if not results.empty else pd.DataFrame()
        if not pts.empty:
            parts.append(pts.assign(measure=measure))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def online_teacher_losses(results: pd.DataFrame) -> pd.DataFrame:
    """The online teachers' final test losses, one row per teacher run: ``k, d, teacher_width, seed, final_loss``
    (compare rows' ``teacher_final_loss``; teacher runs' ``final_loss``)."""
    r = D.standardize(results)
    parts = []
    for kind, col in (("compare", "teacher_final_loss"), ("teacher", "final_loss")):
        if not r.empty and "kind" in r.columns and col in r.columns:
            part = r[r["kind"] == kind]
            parts.append(pd.DataFrame({"k": part["k"], "d": part["d"], "teacher_width": part["teacher_width"],
                                       "seed": part["teacher_seed"], "final_loss": part[col]}))
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True).dropna(subset=["k", "d", "final_loss"])
    return out.drop_duplicates(["k", "d", "teacher_width", "seed"]).reset_index(drop=True)


def online_fits(points: pd.DataFrame, cs: pd.DataFrame) -> pd.DataFrame:
    """:func:`reports.data.exponent_table` per measure; one-shot's prediction ``min(2c, k-1)`` (Theorem B.1(2))
    with c fitted from the online teachers' losses (per k); ``consistent``."""
    parts = []
    for measure, pts in points.groupby("measure", sort=False) if not points.empty else []:
        fits = D.exponent_table(pts)
        if not fits.empty:
            parts.append(fits.assign(measure=measure))
    if not parts:
        return pd.DataFrame()
    fits = pd.concat(parts, ignore_index=True)
    for i, row in fits.iterrows():
        d_max, k = max(int(v) for v in str(row["d_values"]).split(",")), int(row["k"])
        if row["strategy"] == "oneshot":
            c = S.c_for(cs, k)
            fits.loc[i, ["predicted_exponent", "predicted_by"]] = [
                S.oneshot_exponent(d_max, k, c), f"Theorem B.1(2): min(2c, k-1), c={c:.3g} (lower)"]
        elif row["strategy"] in ("two-shot", "equal-split"):  # checkpoint strategies: Theorem B.1(1)'s, borrowed
            fits.loc[i, ["predicted_exponent", "predicted_by"]] = [
                progressive_upper(d_max, k, 0.1, S.DELTA).d_exponent,
                "Theorem B.1(1) (two checkpoints; Algorithm 1's setting, borrowed): d^2 (upper)"]
    sides = ["lower" if "(lower)" in str(b) else "upper" if "(upper)" in str(b) else "both" for b in fits["predicted_by"]]
    fits["bound"] = sides
    fits["consistent"] = [S.consistent(p, lo, hi, side) for (p, lo, hi), side in
                          zip(fits[["predicted_exponent", "ci_lo", "ci_hi"]].itertuples(index=False), sides)]
    return fits


def load_online(scaling_dir) -> pd.DataFrame:
    """``infra.store.load_results(OUT/online)``, or an empty frame when there is no online part."""
    online = Path(scaling_dir) / "online"
    return load_results(online) if online.is_dir() else pd.DataFrame()


def scaling_sections(out: Path, scaling_dir: Path, *, n_boot: int, rng: np.random.Generator) -> list[Section]:
    """The sections of a scaling directory, written into ``out``: B1* vs d, samples to loss eps vs d,
    progressive B1* vs teacher width (two or more teacher widths), online SGD (``OUT/online``); a part
    whose data is missing is a note, never an empty figure."""
    out, scaling_dir = Path(out), Path(scaling_dir)
    out.mkdir(parents=True, exist_ok=True)
    searches = S.read_searches(scaling_dir)
    points, teachers, online = S.b1_points(searches), S.teacher_points(scaling_dir), load_online(scaling_dir)
    scale = scale_text(scaling_dir, searches, points, teachers, online)
    if points.empty:
        sections = [Section("scaling_two_stage_b1", f"{TITLE}: Algorithm 1",
                            note=f"{TITLE}, Algorithm 1: left out (no {scaling_dir / 'searches'}/*/search.json). "
                                 + scale)]
    else:
        cs = (S.loss_exponents(teachers, ["k", "teacher_width"]) if not teachers.empty
              else pd.DataFrame())
        fits = S.b1_fits(points, cs, n_boot=n_boot, rng=rng)
        rules = {s["setting"].get("success", "recovery_and_loss") for s in searches}
        rule = {"recovery_and_loss": "stage-1 support recovery in at least a recover_frac of the neurons and test "
                                     "hinge loss <= eps after stage 2",
                "recovery": "stage-1 support recovery in at least a recover_frac of the neurons"}
        by_k = "; ".join(f"k={k}: {rule[r]}" for k, r in sorted({(int(s['setting']['k']),
                                                                   s['setting'].get('success', 'recovery_and_loss'))
                                                                  for s in searches}))
        criterion = (f"B1*: the smallest grid B1 at which at least {_once(points['target_rate'])} of the seeds "
                     f"succeed ({rule[rules.pop()] if len(rules) == 1 else by_k}); units: samples per stage-1 step.")
        sections = [_b1(out, points, fits, cs, teachers, S.predicted_lines(points, "B1", cs), scale, criterion),
                    _total(out, S.total_points(searches), cs), _teacher_width(out, points)]
    return sections + [_online(out, scaling_dir, online)]
