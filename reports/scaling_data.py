"""The numbers behind "Measured vs predicted scaling": a scaling directory (the two-stage training of
Algorithm 1, ``icurr scaling run``) and its online-SGD part read into tidy frames, fitted exponents with
95% intervals, and the exponents of ``theory.bounds`` beside them. Pure functions; units: samples.

Layout read (the engine's contract): ``OUT/searches/*/search.json`` (one B1* search per setting),
``OUT/teachers/*/summary.json`` (+ ``config.json``); the online part (``OUT/online``, an ordinary
compare sweep) is read by :mod:`reports.scaling` through :mod:`reports.data`.

Fits (``y ~ C d^p``, natural logs, :func:`reports.fit.fit_exponent` machinery):

* **B1\\*** (one search per d, so no seeds to resample): the point is the geometric midpoint of the
  search's bracket ``(largest failing B1, B1*]``; the 95% interval (:func:`bracket_fit`) draws every
  point log-uniformly inside its bracket (the grid is geometric), refits, and adds the refit's
  least-squares error: it covers the grid's resolution and the points' scatter about the law. A
  bracket without a failing B1 (not censored) reaches down to the grid value below B1*. Censored searches (``above``: B1* > grid max; ``below``: B1* <= grid
  min) are left out of the fits and counted (``n_censored``), as are their total samples.
* **Total samples to loss eps** at B1*: per seed; a t-interval over seeds (seed i is the same pair of
  student seed i and teacher run i at every d; :func:`reports.fit.fit_exponent`'s cluster-t: the
  cluster-robust standard error, G - 1 degrees of freedom); seeds that never reached eps are counted.
* **Teacher loss exponent c**: ``final_loss ~ d^-c``; teachers at different d share no samples (a seed
  names other streams at each d), so the points are independent: ols-t. Zero losses are left out and
  counted; a teacher of zero loss at every d has every c: ``c = inf``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from infra.store import read_json
from theory.algorithm1 import paper_hyperparameters
from theory.bounds import oneshot_lower, progressive_upper, sq_sample_lower, teacher_lemma_b7

from .fit import ExponentFit, fit_exponent, loglog_slope, ols_fits, ols_slope_se

__all__ = ["DELTA", "KEYS", "local_slope", "read_searches", "read_run_summary", "b1_points", "total_points", "total_summary",
           "teacher_points", "loss_exponents", "c_for", "oneshot_exponent", "predicted", "absolute", "b1_fits",
           "total_fits", "predicted_lines", "bracket_fit", "bound_side", "consistent", "exponent_rows"]

#: delta (failure probability) of the unit-constant absolute predictions (paper_hyperparameters' default).
DELTA = 0.01
#: One fitted line: the supervision and the widths of a setting (``teacher_width`` NaN for labels).
KEYS = ["k", "supervision", "student_width", "teacher_width"]


def read_searches(scaling_dir) -> list[dict]:
    """Every whole ``OUT/searches/*/search.json`` (name order), with ``search`` = its directory name."""
    root = Path(scaling_dir) / "searches"
    found = [(p.parent.name, read_json(p)) for p in sorted(root.glob("*/search.json"))] if root.is_dir() else []
    return [{**s, "search": name} for name, s in found if isinstance(s, dict) and isinstance(s.get("setting"), dict)]


def read_run_summary(scaling_dir, search: dict) -> dict:
    """The ``summary.json`` of the run directory of a search's first evaluation ({} when unreadable)."""
    evals = search.get("evaluations") or []
    path = evals[0].get("run_dir") if evals else None
    s = read_json(Path(scaling_dir) / path / "summary.json") if path else None
    return s if isinstance(s, dict) else {}


def _setting(s: dict) -> dict:
    st = s["setting"]
    tw = st.get("teacher_width")
    return {"k": int(st["k"]), "supervision": st["supervision"], "student_width": int(st["student_width"]),
            "teacher_width": float(tw) if tw is not None else np.nan, "d": int(st["d"]), "eps": float(st["eps"])}


def b1_points(searches: list[dict]) -> pd.DataFrame:
    """One row per search: ``KEYS, d, eps, B1_star, lo, hi`` (bracket; ``hi = B1_star``), ``censored``
    ("", "above", "below"), ``y`` (B1*, or the grid edge where censored), grid range, seeds, evaluations, and
    the largest batch evaluated (``top_B1``) with its success rate and median recovered fraction."""
    rows = []
    for s in searches:
        grid, b1, cens = sorted(s.get("grid") or []), s.get("B1_star"), s.get("censored") or ""
        lo = (list(s.get("bracket") or []) + [None])[0]
        factor = float(s.get("factor") or (grid[1] / grid[0] if len(grid) > 1 else np.nan))
        if b1 is not None and lo is None and not cens:  # the grid value below B1* (the grid is rounded up)
            lo = max([g for g in grid if g < b1], default=b1 / factor)
        y = b1 if b1 is not None else (grid[-1] if grid else np.nan)
        evals = [e for e in s.get("evaluations") or [] if e.get("B1") is not None]
        top = max(evals, key=lambda e: e["B1"]) if evals else {}
        rows.append({**_setting(s), "B1_star": np.nan if b1 is None else float(b1),
                     "lo": np.nan if lo is None else float(lo), "hi": np.nan if b1 is None else float(b1),
                     "censored": cens, "y": float(y), "grid_min": grid[0] if grid else np.nan,
                     "grid_max": grid[-1] if grid else np.nan, "factor": factor,
                     "target_rate": s.get("target_rate"), "n_seeds": len(s.get("seeds") or []),
                     "n_evaluations": s.get("n_evaluations", len(s.get("evaluations") or [])), "search": s["search"],
                     "top_B1": top.get("B1", np.nan), "top_rate": top.get("success_rate", np.nan),
                     "top_recovered": float(np.median(top["recovered_frac"])) if top.get("recovered_frac") else np.nan})
    cols = KEYS + ["d"]
    return pd.DataFrame(rows).sort_values(cols).reset_index(drop=True) if rows else pd.DataFrame()


def total_points(searches: list[dict]) -> pd.DataFrame:
    """Samples to loss eps (``B1 T1 + B2 x steps``) per seed, from the evaluation at B1*: ``KEYS, d, B1,
    seed, samples`` (NaN: never reached eps), ``censored`` (the search's; a search censored above has no
    B1*: one row with NaN ``B1``, ``seed`` and ``samples``)."""
    rows = []
    for s in searches:
        b1 = s.get("B1_star")
        ev = [e for e in s.get("evaluations") or [] if b1 is not None and e.get("B1") == b1]
        if not ev:
            if s.get("censored"):
                rows.append({**_setting(s), "B1": np.nan, "seed": None, "samples": np.nan, "censored": s["censored"]})
            continue
        for seed, v in zip(s.get("seeds") or [], ev[-1].get("samples_to_eps") or []):
            rows.append({**_setting(s), "B1": float(b1), "seed": seed, "samples": np.nan if v is None else float(v),
                         "censored": s.get("censored") or ""})
    return pd.DataFrame(rows)


def total_summary(points: pd.DataFrame) -> pd.DataFrame:
    """Median and quartiles over the seeds that reached eps, per setting and d; ``n_not_reached``."""
    if points.empty:
        return pd.DataFrame()
    g = points.groupby(KEYS + ["d", "censored"], dropna=False)["samples"]
    out = pd.DataFrame({"median": g.median(), "q25": g.quantile(0.25), "q75": g.quantile(0.75),
                        "n": g.count(), "n_not_reached": g.size() - g.count()})
    return out.reset_index()


def teacher_points(scaling_dir) -> pd.DataFrame:
    """Final test hinge loss per two-stage teacher run: ``k, d, teacher_width, seed, final_loss`` and the
    stage lengths ``T1, B1, T2, B2`` (from ``summary.json``; ``config.json`` where the summary lacks them)."""
    root, rows = Path(scaling_dir) / "teachers", []
    for p in sorted(root.iterdir()) if root.is_dir() else []:
        s, c = read_json(p / "summary.json"), read_json(p / "config.json") or {}
        if not isinstance(s, dict):
            continue
        get = lambda key: s.get(key, c.get(key) if isinstance(c, dict) else None)  # noqa: E731
        head = {"k": get("k"), "d": get("d"), "teacher_width": get("width"),
                **{key: get(key) for key in ("T1", "B1", "T2", "B2")}}
        rows += [{**head, "seed": r.get("seed"), "final_loss": r.get("final_loss")} for r in s.get("runs") or []]
    df = pd.DataFrame(rows)
    return df.dropna(subset=["k", "d", "final_loss"]).reset_index(drop=True) if not df.empty else df


def loss_exponents(losses: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``c`` of ``final_loss ~ d^-c`` per group of ``keys`` (95% ols-t interval): ``c, c_lo, c_hi,
    n_points, n_zero, d_values``; ``c = inf`` when the loss is 0 at every d but one."""
    rows = []
    for key, g in losses.groupby(keys, dropna=False, sort=True) if not losses.empty else []:
        pos = g[g["final_loss"] > 0]
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        row.update(n_zero=int(len(g) - len(pos)), d_values=",".join(map(str, sorted(g["d"].astype(int).unique()))))
        if pos["d"].nunique() >= 2:
            fit = fit_exponent(pos["d"], pos["final_loss"])
            row.update(c=-fit.exponent, c_lo=-fit.hi, c_hi=-fit.lo, n_points=fit.n_points)
        elif row["n_zero"]:
            row.update(c=math.inf, c_lo=math.inf, c_hi=math.inf, n_points=len(g))
        else:
            continue
        rows.append(row)
    return pd.DataFrame(rows)


def c_for(cs: pd.DataFrame, k: int, teacher_width=np.nan) -> float:
    """The loss exponent c of the teachers of ``k`` (and ``teacher_width`` where fitted per width); NaN if none."""
    if cs.empty:
        return np.nan
    sel = cs[cs["k"] == k]
    if "teacher_width" in sel.columns and not pd.isna(teacher_width) and (sel["teacher_width"] == teacher_width).any():
        sel = sel[sel["teacher_width"] == teacher_width]
    return float(sel["c"].iloc[0]) if len(sel) == 1 else np.nan


def oneshot_exponent(d: int, k: int, c: float) -> float:
    """Theorem B.1(2)'s ``min(2c, k-1)``; NaN (no prediction) for teachers whose loss does not fall with d
    (``c <= 0``): the theorem assumes a teacher of loss ``O(d^-c)`` with ``c >= 1``."""
    return np.nan if pd.isna(c) or c <= 0 else oneshot_lower(d, k, c=c).d_exponent


def _c_note(c: float) -> str:
    if pd.isna(c):
        return "c not measured"
    if c <= 0:
        return f"c={c:.3g}: the teachers' loss does not fall with d, no prediction"
    return f"c={c:.3g}" + (" (Theorem B.1 assumes c >= 1)" if c < 1 else "")


def predicted(quantity: str, supervision: str, d: int, k: int, c: float = np.nan) -> tuple[float, str]:
    """The exponent of d that theory predicts, and its source.

    ``quantity="B1"`` (stage-1 batch, samples per step):

    * labels: ``k-1``: Lemma B.2/B.7's stage-1 batch ``tau_g^-2 log(m d/delta)``, ``tau_g = |zeta_{k-1}|/k``,
      and ``|zeta_{k-1}|^-2 ~ d^(k-1)`` (corrected, ERRATA.md; ``sq_sample_lower(d, k).d_exponent``);
    * progressive: ``0``: Theorem B.1(1)'s stage 1 costs ``k^2 log(d m~/delta)`` samples (logarithmic);
    * oneshot: ``min(2c, k-1)`` (Theorem B.1(2), ``oneshot_lower(d, k, c=c)``), c measured from the teachers.

    ``quantity="total"`` (samples to test loss eps, both stages):

    * progressive: ``2`` (Theorem B.1(1), ``progressive_upper``: stage 2 costs ``2^k d^2 k^4 eps^-2``);
    * labels: ``max(k-1, 2)`` (Lemma B.7 corrected, ``teacher_lemma_b7``: stage 1 plus the same stage 2);
    * oneshot: ``max(min(2c, k-1), 2)``: Theorem B.1(2) bounds the total below by ``d^min(2c,k-1)``, and
      the stage 2 of every supervision is the one Lemma B.7 / Theorem B.1(1) analyse, ``d^2``; the
      theorem gives no upper bound for one-shot, so this is the lower bound combined with that stage 2.
    """
    if quantity == "B1":
        if supervision == "labels":
            return sq_sample_lower(d, k).d_exponent, "Lemma B.2/B.7: |zeta_{k-1}|^-2 ~ d^(k-1)"
        if supervision == "progressive":
            return 0.0, "Theorem B.1(1) stage 1: k^2 log(d m~/delta)"
        return oneshot_exponent(d, k, c), f"Theorem B.1(2): min(2c, k-1), {_c_note(c)}"
    if supervision == "progressive":
        return progressive_upper(d, k, 0.1, DELTA).d_exponent, "Theorem B.1(1): progressive_upper"
    if supervision == "labels":
        return teacher_lemma_b7(d, k, 0.1, DELTA).d_exponent, "Lemma B.7 (corrected): max(k-1, 2)"
    e = oneshot_exponent(d, k, c)
    return (np.nan if pd.isna(e) else max(e, 2.0)), f"Theorem B.1(2) + stage 2: max(min(2c, k-1), 2), {_c_note(c)}"


def absolute(quantity: str, supervision: str, d: int, k: int, width: int, eps: float, c: float = np.nan) -> float:
    """The predicted value in samples with unit constants and ``delta = DELTA``, NaN where theory gives
    none: B1 of labels ``paper_hyperparameters(d, k, m~)['B1']``, of progressive Theorem B.1(1)'s stage
    1 ``k^2 log(d m~/delta)``; totals: ``progressive_upper``, ``teacher_lemma_b7`` (labels), and one-shot's
    lower bound ``d^min(2c, k-1)`` (``oneshot_lower``; c > 0 only)."""
    eps = min(max(eps, 1e-9), 1 - 1e-9)
    try:
        if quantity == "B1":
            if supervision == "labels":
                return float(paper_hyperparameters(d, k, max(width, 2), delta=DELTA)["B1"])
            return progressive_upper(d, k, eps, DELTA, const2=0.0, width=width).value if supervision == "progressive" \
                else np.nan
        if supervision == "progressive":
            return progressive_upper(d, k, eps, DELTA, width=width).value
        if supervision == "labels":
            return teacher_lemma_b7(d, k, eps, DELTA).value
        return oneshot_lower(d, k, c=c).value if not pd.isna(c) and 0 < c < math.inf else np.nan
    except ValueError:  # zeta_{k-1}(d) = 0 (odd k, odd d)
        return np.nan


def bracket_fit(d, lo, hi, *, n_boot: int, rng: np.random.Generator, level: float = 0.95) -> ExponentFit:
    """Exponent of ``y ~ C d^p`` for interval data ``y in (lo, hi]`` (one B1* search per d): least squares on
    the geometric midpoints. The ``level`` interval is a percentile of ``n_boot`` draws, each a refit with every
    point log-uniform in its bracket (the grid's resolution) plus its least-squares standard error times a
    t(n - 2) variate (the scatter of the points about the law, which the grid does not show). Planted laws with
    a log-normal scatter sigma on a sqrt(2) grid: covered 100% / 98% / 96% of the time at sigma = 0.1 / 0.3 / 0.6,
    where the grid draws alone covered 86% / 49% / 27%. Fewer than three points: an infinite interval."""
    d, llo, lhi = np.asarray(d, float), np.log(np.asarray(lo, float)), np.log(np.asarray(hi, float))
    slope, intercept = loglog_slope(d, np.exp((llo + lhi) / 2))
    if d.size < 3:
        lo_p, hi_p = -np.inf, np.inf
    else:
        draws = llo + (lhi - llo) * rng.random((int(n_boot), d.size))  # (n_boot, n) log y
        _, inv, beta, resid = ols_fits(np.log(d), draws)  # every refit at once
        tail = 100 * (1 - level) / 2
        scatter = ols_slope_se(inv, resid) * rng.standard_t(d.size - 2, int(n_boot))
        lo_p, hi_p = np.percentile(beta[:, 1] + scatter, [tail, 100 - tail])
    return ExponentFit(slope, float(lo_p), float(hi_p), intercept, int(d.size), int(np.unique(d).size),
                       float(level), "bracket-ols-t", df=float(d.size - 2), n_boot=int(n_boot))


def bound_side(quantity: str, supervision: str) -> str:
    """How a prediction constrains the measured exponent: ``"lower"`` for one-shot (Theorem B.1(2) is an
    Omega), ``"upper"`` for the total samples of labels (Lemma B.7 gives sufficient samples; its stage 2
    dominates at these d), ``"both"`` for the Theta statements (labels' B1: Lemma B.2's sufficient batch with
    the CSQ lower bound d^(k-1); progressive: Theorem B.1(1) as stated)."""
    if supervision == "oneshot":
        return "lower"
    return "upper" if quantity == "total" and supervision == "labels" else "both"


def consistent(pred: float, lo: float, hi: float, side: str = "both", tol: float = 1e-9) -> str:
    """Whether the measured exponent's interval ``[lo, hi]`` agrees with the predicted ``pred``: inside it
    (``side="both"``), not entirely below a lower bound (``"lower"``: ``hi >= pred``), not entirely above an
    upper bound (``"upper"``: ``lo <= pred``); "yes", "no", or "n/a" without a number."""
    if any(pd.isna(v) for v in (pred, lo, hi)):
        return "n/a"
    ok = {"both": lo - tol <= pred <= hi + tol, "lower": hi + tol >= pred, "upper": lo - tol <= pred}[side]
    return "yes" if ok else "no"


def _fit_row(key, quantity: str, fit: ExponentFit, ds, n_censored: int, cs: pd.DataFrame, extra=None) -> dict:
    row = {**dict(zip(KEYS, key)), "quantity": quantity, "d_values": ",".join(map(str, sorted(set(map(int, ds))))),
           **fit.as_dict(), "n_censored": int(n_censored), **(extra or {})}
    k, sup = int(row["k"]), row["supervision"]
    c = c_for(cs, k, row["teacher_width"]) if sup == "oneshot" else np.nan
    row["c"] = c
    row["predicted_exponent"], row["predicted_by"] = predicted(quantity, sup, int(max(ds)), k, c)
    row["predicted_local"] = local_slope(quantity, sup, sorted(set(map(int, ds))), k, int(row["student_width"]),
                                         float(row.get("eps", 0.1)), c)
    judged = row["predicted_local"] if not pd.isna(row["predicted_local"]) else row["predicted_exponent"]
    row["bound"] = bound_side(quantity, sup)
    row["consistent"] = consistent(judged, fit.lo, fit.hi, row["bound"])
    return row


def local_slope(quantity: str, supervision: str, ds, k: int, width: int, eps: float, c: float = np.nan) -> float:
    """The log-log slope, over the measured ``ds``, of the unit-constant prediction :func:`absolute` (NaN where
    theory gives no value): at small d the logarithms and the exact ``|zeta_(k-1)(d)|^-2`` bend the curve away
    from its asymptotic exponent, so a measured slope is judged against this local one where it exists."""
    if quantity == "total" and supervision == "oneshot":  # a lower bound without stage 2: no formula of the total
        return np.nan
    vals = [absolute(quantity, supervision, d, k, width, eps, c) for d in ds]
    if len(ds) < 2 or not all(np.isfinite(v) and v > 0 for v in vals):
        return np.nan
    return loglog_slope(ds, vals)[0]


def b1_fits(points: pd.DataFrame, cs: pd.DataFrame, *, n_boot: int, rng: np.random.Generator) -> pd.DataFrame:
    """B1* exponent per setting (:func:`bracket_fit`; censored points counted, not fitted) with the prediction."""
    rows = []
    for key, g in points.groupby(KEYS, dropna=False, sort=True) if not points.empty else []:
        ok = g[(g["censored"] == "") & g["lo"].notna() & g["hi"].notna()]
        if ok["d"].nunique() >= 2:
            fit = bracket_fit(ok["d"], ok["lo"], ok["hi"], n_boot=n_boot, rng=rng)
            rows.append(_fit_row(key, "B1", fit, ok["d"], len(g) - len(ok), cs))
    return pd.DataFrame(rows)


def total_fits(points: pd.DataFrame, cs: pd.DataFrame) -> pd.DataFrame:
    """Exponent of samples to loss eps per setting (95% cluster-t interval over seeds) with the prediction."""
    rows = []
    for key, g in points.groupby(KEYS, dropna=False, sort=True) if not points.empty else []:
        ok = g[(g["censored"] == "") & (g["samples"] > 0)]
        if ok["d"].nunique() >= 2:
            fit = fit_exponent(ok["d"], ok["samples"], ok["seed"].astype(str))
            n_cens = int(g.loc[g["censored"] != "", "d"].nunique())
            rows.append(_fit_row(key, "total", fit, ok["d"], n_cens, cs,
                                 {"n_not_reached": int(g.loc[g["censored"] == "", "samples"].isna().sum())}))
    return pd.DataFrame(rows)


def predicted_lines(points: pd.DataFrame, quantity: str, cs: pd.DataFrame) -> pd.DataFrame:
    """:func:`absolute` at every measured (setting, d): ``KEYS, d, quantity, predicted`` (NaN rows dropped)."""
    rows = []
    for r in points.drop_duplicates(KEYS + ["d"]).itertuples(index=False) if not points.empty else []:
        c = c_for(cs, r.k, r.teacher_width) if r.supervision == "oneshot" else np.nan
        rows.append({**{key: getattr(r, key) for key in KEYS}, "d": r.d, "quantity": quantity,
                     "predicted": absolute(quantity, r.supervision, r.d, r.k, r.student_width, r.eps, c)})
    return pd.DataFrame(rows).dropna(subset=["predicted"]) if rows else pd.DataFrame()


def exponent_rows(fits: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The report's table: ``keys``, d values, "measured exponent [95% CI]", predicted, source, consistent?"""
    if fits.empty:
        return pd.DataFrame()
    out = fits[[k for k in keys if k in fits.columns]].copy()
    for col in ("student_width", "teacher_width"):  # widths as plain integers, blank without a teacher
        if col in out.columns:
            out[col] = ["" if pd.isna(v) else str(int(v)) for v in out[col]]
    out["d values"] = fits["d_values"]
    out["measured exponent [95% CI]"] = [f"{p:.2f} [{lo:.2f}, {hi:.2f}]" for p, lo, hi in
                                         fits[["exponent", "ci_lo", "ci_hi"]].itertuples(index=False)]
    out["predicted exponent (d -> inf)"] = fits["predicted_exponent"].astype(float)
    if "predicted_local" in fits.columns:
        out["predicted slope over these d"] = fits["predicted_local"].astype(float)
    out["predicted by"] = fits["predicted_by"]
    if "bound" in fits.columns:
        out["bound"] = fits["bound"].map({"both": "two-sided", "lower": "lower", "upper": "upper"})
    out["consistent?"] = fits["consistent"]
    for col in ("n_censored", "n_not_reached"):
        if col in fits.columns:
            out[col] = fits[col]
    return out.reset_index(drop=True)
