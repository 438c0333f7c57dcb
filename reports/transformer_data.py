"""The numbers behind the Transformer figures (PCFG: Figures 1 right, 4, 5, 22, 24; parity: 11-13),
as pure pandas functions of the run directories' metrics (no plotting).

:func:`transformer_frames` is the one place that reads a results directory; it accepts

* a plain compare directory (``icurr pcfg compare --out D``) or any directory of ``*-teacher`` and
  ``*-student`` runs: a student is linked to its teacher through the last path component of its
  config's ``teacher`` (the teacher's directory name);
* a sweep directory of ``pcfg-compare`` / ``parity-transformer-compare`` runs, whose
  ``metrics.parquet`` stacks the teacher's and every strategy's rows with a ``role`` column, and
  whose raw runs (with the students' supervision schedules) lie below ``<run>/parts/``;

and normalizes both into the frames of :class:`TransformerFrames`. Units: ``step`` = optimizer
steps of the run itself (teacher steps for the teacher and the checkpoint marks, student steps
for students); ``samples`` = steps x batch (sentences or parity inputs); accuracies in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from infra.compare import median_reached
from infra.store import load_metrics, read_json
from experiments.registry import KINDS

__all__ = ["TransformerFrames", "FAMILIES", "family_of", "has_transformer_runs", "has_mlp_runs",
           "transformer_frames", "measure_columns", "teacher_curve", "student_curves", "run_finals",
           "feature_table", "speed_table", "mark_points", "bayes_of", "PCFG_FRACTIONS", "PARITY_THRESHOLDS"]

#: Family of a Transformer kind (``pcfg-teacher`` -> ``pcfg``, ``parity-transformer-compare`` -> ``parity``,
#: ``text-student`` -> ``text``: masked LM on natural text, drawn with the PCFG figures).
FAMILIES = {"pcfg": "pcfg", "parity-transformer": "parity", "text": "text"}
#: PCFG speed targets: fractions of the teacher's final held-out accuracy (as :mod:`distill.runs`).
PCFG_FRACTIONS = (0.8, 0.9, 0.95)
#: Parity speed targets: absolute test accuracy (as :func:`simulate.probes.summary_from_log`).
PARITY_THRESHOLDS = (0.95, 0.99)
_BASE = ["step", "run", "seed", "samples", "test_loss", "test_accuracy", "train_loss"]
_MEASURES = ("m_robust_", "m_close_", "probe_level_", "probe_base_level_", "corr1_", "attn_")
_LABEL_KEYS = {"pcfg": ("grammar", "objective", "heads", "layers"), "parity": ("d", "k", "heads", "layers"),
               "text": ("corpus", "vocab_size", "heads", "layers")}


@dataclass(frozen=True)
class TransformerFrames:
    """Normalized Transformer results of one directory (every frame may be empty).

    * ``experiments``: ``family, experiment, label, teacher_run, reference_accuracy`` (one teacher and its
      students; ``reference_accuracy`` = the supervising teacher run's final held-out accuracy) and the
      exact Bayes-optimal ceiling on the same held-out set, ``bayes_accuracy``, ``bayes_accuracy_se``,
      ``bayes_loss``, ``bayes_loss_se`` (the teacher summary's ``bayes_optimal``; NaN when absent);
    * ``teacher``: ``family, experiment, run, seed, step, samples, test_loss, test_accuracy, ...measures``;
    * ``students``: ``family, experiment, strategy, run, seed, step, samples, test_accuracy, source, ...``;
    * ``marks``: ``family, experiment, strategy, order, step, stage_steps, first, rule``: the intermediate
      teacher checkpoints (teacher steps) of each student's schedule, ``first`` = C_1.
    """

    experiments: pd.DataFrame
    teacher: pd.DataFrame
    students: pd.DataFrame
    marks: pd.DataFrame

    def family(self, family: str) -> "TransformerFrames":
        """The frames of one family (``pcfg`` or ``parity``)."""
        def pick(df):
            return df[df["family"] == family].reset_index(drop=True) if "family" in df.columns else df
        return TransformerFrames(*(pick(f) for f in (self.experiments, self.teacher, self.students, self.marks)))


def family_of(kind) -> str | None:
    """``pcfg`` / ``parity`` / ``text`` for a Transformer kind, None for any other (MLP kinds included)."""
    if not isinstance(kind, str) or kind not in KINDS or KINDS[kind].engine != "distill":
        return None
    return FAMILIES.get(kind.rsplit("-", 1)[0])


def has_transformer_runs(results: pd.DataFrame) -> bool:
    """Whether ``load_results`` found any Transformer run (teacher, student or compare)."""
    return "kind" in results.columns and bool(results["kind"].map(family_of).notna().any())


def has_mlp_runs(results: pd.DataFrame) -> bool:
    """Whether ``load_results`` found any MLP run (kinds ``teacher``, ``student``, ``compare``)."""
    return "kind" in results.columns and bool(results["kind"].isin(("teacher", "student", "compare")).any())


def measure_columns(df: pd.DataFrame, prefix: str) -> list[str]:
    """Columns ``<prefix><int>`` of ``df`` holding any value, by increasing integer suffix."""
    cols = [c for c in df.columns if c.startswith(prefix) and c[len(prefix):].isdigit() and df[c].notna().any()]
    return sorted(cols, key=lambda c: int(c[len(prefix):]))


def _keep(df: pd.DataFrame, extra=()) -> pd.DataFrame:
    cols = [c for c in _BASE + list(extra) if c in df.columns]
    cols += [c for c in df.columns if c.startswith(_MEASURES) and c not in cols]
    return df[cols].copy()


def _fmt(v) -> str:
    return str(int(v)) if isinstance(v, (float, np.floating)) and float(v).is_integer() else str(v)


def _label(family: str, cfg: pd.Series, prefix: str, name: str) -> str:
    keys = [prefix + k for k in _LABEL_KEYS[family]]
    parts = [f"{k[len(prefix):]}={_fmt(cfg[k])}" for k in keys if k in cfg.index and pd.notna(cfg[k])]
    return ", ".join(parts + [f"run {name}"])


def _int_source(source) -> int | None:
    if isinstance(source, (int, np.integer)) and not isinstance(source, bool):
        return int(source)
    if isinstance(source, str) and source.isdigit():
        return int(source)
    return None


def _schedule_marks(summary: dict, family: str, experiment: str, strategy: str) -> list[dict]:
    """Marks of one student summary: its schedule's integer sources, C_1 from ``checkpoint_choice``."""
    choice = summary.get("checkpoint_choice") or {}
    rows = []
    for order, (source, steps) in enumerate(summary.get("schedule") or []):
        step = _int_source(source)
        if step is not None:
            rows.append({"family": family, "experiment": experiment, "strategy": strategy, "order": order,
                         "step": step, "stage_steps": int(steps), "first": step == choice.get("step"),
                         "rule": choice.get("rule", "")})
    return rows


def _source_marks(students: pd.DataFrame) -> list[dict]:
    """Fallback when no summary holds a schedule: the integer ``source`` values the metrics logged
    (a stage shorter than ``eval_every`` may be missed); C_1 = the smallest."""
    rows = []
    if "source" not in students.columns:
        return rows
    src = pd.to_numeric(students["source"].astype(str), errors="coerce")
    for (family, exp, strategy), grp in students.assign(_src=src).dropna(subset=["_src"]).groupby(
            ["family", "experiment", "strategy"], sort=False):
        steps = sorted(grp["_src"].astype(int).unique())
        rows += [{"family": family, "experiment": exp, "strategy": strategy, "order": i, "step": s,
                  "stage_steps": np.nan, "first": i == 0, "rule": "from metrics"} for i, s in enumerate(steps)]
    return rows


def transformer_frames(root, metrics: pd.DataFrame | None = None) -> TransformerFrames:
    """Read every Transformer run of ``root`` (see the module doc) into :class:`TransformerFrames`.

    ``metrics``: what :func:`infra.store.load_metrics` returns for ``root`` (read here when None);
    the students' schedules are read from their ``summary.json`` (``parts/`` of compare runs).
    """
    root = Path(root)
    metrics = load_metrics(root) if metrics is None else metrics
    teachers, students, marks, exps = [], [], [], {}
    if "kind" in metrics.columns:
        for run_hash, m in metrics.groupby("run_hash", sort=True):
            kind = m["kind"].iloc[0]
            family = family_of(kind)
            if family is None:
                continue
            role, cfg = kind.rsplit("-", 1)[1], m.iloc[0]
            if role == "teacher":
                exps.setdefault(run_hash, {"family": family})["label"] = _label(family, cfg, "", run_hash)
                exps[run_hash]["bayes"] = _bayes(root / run_hash / "summary.json")
                teachers.append(_keep(m).assign(family=family, experiment=run_hash))
            elif role == "student":
                exp = Path(str(cfg.get("teacher", ""))).name
                strategy = cfg.get("strategy")
                teacher_run = int(cfg["teacher_run"]) if "teacher_run" in cfg.index else 0
                students.append(_keep(m, ["source"]).assign(family=family, experiment=exp, strategy=strategy,
                                                             teacher_run=teacher_run))
                exps.setdefault(exp, {"family": family, "label": exp}).setdefault("teacher_run", teacher_run)
                if "bayes" not in exps[exp] and isinstance(cfg.get("teacher"), str) and cfg["teacher"]:
                    exps[exp]["bayes"] = _bayes(Path(cfg["teacher"]) / "summary.json")  # a teacher outside root
                marks += _schedule_marks(read_json(root / run_hash / "summary.json") or {}, family, exp, strategy)
            else:
                teacher_run = int(cfg["student.teacher_run"]) if "student.teacher_run" in cfg.index else 0
                exps[run_hash] = {"family": family, "label": _label(family, cfg, "teacher.", run_hash),
                                  "teacher_run": teacher_run}
                is_t = m["role"] == "teacher"
                teachers.append(_keep(m[is_t]).assign(family=family, experiment=run_hash))
                students.append(_keep(m[~is_t], ["source"]).assign(
                    family=family, experiment=run_hash, strategy=m.loc[~is_t, "role"], teacher_run=teacher_run))
                parts = root / run_hash / "parts"
                index = (read_json(parts / "compare.json") or {}).get("index", {})
                if index.get("teacher"):
                    exps[run_hash]["bayes"] = _bayes(parts / index["teacher"] / "summary.json")
                for strategy, name in (index.get("students") or {}).items():
                    marks += _schedule_marks(read_json(parts / name / "summary.json") or {}, family, run_hash,
                                             strategy)
    teacher = _sorted(teachers, ["family", "experiment", "run", "step"])
    student = _sorted(students, ["family", "experiment", "strategy", "run", "step"])
    if not marks and not student.empty:
        marks = _source_marks(student)
    mark = pd.DataFrame(marks, columns=["family", "experiment", "strategy", "order", "step", "stage_steps", "first",
                                        "rule"])
    return TransformerFrames(_experiments(exps, teacher), teacher, student, mark)


def _sorted(frames: list[pd.DataFrame], keys: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=keys)
    out = pd.concat(frames, ignore_index=True)
    front = [c for c in ("family", "experiment", "strategy", "teacher_run") if c in out.columns]
    out = out[front + [c for c in out.columns if c not in front]]
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


_BAYES = ("bayes_accuracy", "bayes_accuracy_se", "bayes_loss", "bayes_loss_se")


def _bayes(summary_path: Path) -> dict:
    """``bayes_*`` numbers of a teacher's ``summary.json`` (written by :func:`distill.runs.bayes_ceiling`);
    empty for older runs, next-token teachers and unreadable files."""
    b = (read_json(summary_path) or {}).get("bayes_optimal")
    if not isinstance(b, dict):
        return {}
    return {f"bayes_{k}": float(b[k]) for k in ("accuracy", "accuracy_se", "loss", "loss_se")
            if isinstance(b.get(k), (int, float))}


def _experiments(exps: dict, teacher: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for exp, info in exps.items():
        run = info.get("teacher_run", 0)
        t = teacher[(teacher["experiment"] == exp) & (teacher["run"] == run)] if not teacher.empty else teacher
        ref = float(t["test_accuracy"].iloc[-1]) if len(t) else np.nan
        bayes = info.get("bayes") or {}
        rows.append({"family": info["family"], "experiment": exp, "label": info["label"], "teacher_run": run,
                     "reference_accuracy": ref, **{k: bayes.get(k, np.nan) for k in _BAYES}})
    return pd.DataFrame(rows, columns=["family", "experiment", "label", "teacher_run", "reference_accuracy", *_BAYES])


def bayes_of(experiments: pd.DataFrame, experiment: str, key: str = "bayes_accuracy") -> float | None:
    """The experiment's Bayes-optimal ``key`` (``bayes_accuracy``, ``bayes_loss``, ...), None when unknown."""
    if key not in experiments.columns:
        return None
    v = experiments.loc[experiments["experiment"] == experiment, key]
    return float(v.iloc[0]) if len(v) and pd.notna(v.iloc[0]) else None


# ---------------------------------------------------------------- figure tables

def teacher_curve(frames: TransformerFrames) -> pd.DataFrame:
    """The supervising teacher run of each experiment (Figure 4 is one teacher run): its rows, with
    the measure columns that hold any value (``m_robust_n``, ``m_close_n``, ``probe_level_l``, ...)."""
    t, e = frames.teacher, frames.experiments
    if t.empty or e.empty:
        return pd.DataFrame()
    sel = t.merge(e[["experiment", "teacher_run"]], on="experiment")
    sel = sel[sel["run"] == sel["teacher_run"]].drop(columns="teacher_run")
    return sel[[c for c in sel.columns if sel[c].notna().any()]].reset_index(drop=True)


def mark_points(marks: pd.DataFrame, curve: pd.DataFrame, value: str = "test_loss") -> pd.DataFrame:
    """The distinct checkpoint steps of each experiment's students (the triangles of Figure 4, left):
    ``experiment, step, first`` (C_1 of some student), ``rule``, ``strategies`` (comma-joined) and
    ``value``, the teacher curve's ``value`` at that step (linear interpolation between evaluations)."""
    if marks.empty or curve.empty or value not in curve.columns:
        return pd.DataFrame()
    rows = []
    for (exp, step), grp in marks.groupby(["experiment", "step"], sort=True):
        c = curve[curve["experiment"] == exp].dropna(subset=[value])
        y = float(np.interp(step, c["step"], c[value])) if len(c) else np.nan
        rules = [r for r in dict.fromkeys(grp.loc[grp["first"].astype(bool), "rule"]) if r]
        rows.append({"experiment": exp, "step": int(step), "first": bool(grp["first"].any()), "rule": ",".join(rules),
                     "strategies": ",".join(dict.fromkeys(grp["strategy"])), value: y})
    return pd.DataFrame(rows)


def student_curves(students: pd.DataFrame, value: str = "test_accuracy") -> pd.DataFrame:
    """Student ``value`` vs samples: median, min, max and count over seeds per experiment and strategy."""
    if students.empty or value not in students.columns:
        return pd.DataFrame()
    g = students.dropna(subset=[value]).groupby(["family", "experiment", "strategy", "samples"], sort=True)[value]
    out = pd.DataFrame({"median": g.median(), "min": g.min(), "max": g.max(), "n": g.size()}).reset_index()
    return out.sort_values(["experiment", "strategy", "samples"]).reset_index(drop=True)


def run_finals(students: pd.DataFrame) -> pd.DataFrame:
    """Per experiment, strategy and student run: the last logged value of every metric column
    (measures and probes are logged only every ``measure_every`` / ``probe_every`` steps: their
    last non-NaN value, as the ``final_*`` fields of the runs' summaries)."""
    if students.empty:
        return pd.DataFrame()
    keys = ["family", "experiment", "strategy", "run", "seed"]
    cols = [c for c in students.columns if c in ("test_loss", "test_accuracy") or c.startswith(_MEASURES)]
    s = students.sort_values(keys + ["step"], kind="stable")
    return s.groupby(keys, sort=False)[cols].last().reset_index()


#: The strategy name of the probe's surface baseline rows in :func:`feature_table`.
SURFACE_BASELINE = "baseline: token + position"


def feature_table(students: pd.DataFrame) -> pd.DataFrame:
    """Figure 5: per experiment, strategy and measure (``m_close`` / ``m_robust`` with ``n``,
    ``probe_level`` with level ``l`` in ``n``) the median, min and max over seeds of the run finals;
    the probe's surface baseline (``probe_base_level_l``, the same probe on one-hot token and position
    features) as the strategy :data:`SURFACE_BASELINE`."""
    finals = run_finals(students)
    rows = []
    for prefix in ("m_close_", "m_robust_", "probe_level_"):
        for col in measure_columns(finals, prefix) if not finals.empty else []:
            g = finals.dropna(subset=[col]).groupby(["family", "experiment", "strategy"], sort=False)[col]
            part = pd.DataFrame({"median": g.median(), "min": g.min(), "max": g.max(), "seeds": g.size()}).reset_index()
            rows.append(part.assign(measure=prefix[:-1], n=int(col[len(prefix):])))
    base = "probe_base_level_"  # the probe's surface baseline (one-hot token and position): one row per experiment
    for col in measure_columns(finals, base) if not finals.empty else []:
        g = finals.dropna(subset=[col]).groupby(["family", "experiment"], sort=False)[col]
        part = pd.DataFrame({"median": g.median(), "min": g.min(), "max": g.max(), "seeds": g.size()}).reset_index()
        rows.append(part.assign(strategy=SURFACE_BASELINE, measure="probe_level", n=int(col[len(base):])))
    if not rows:
        return pd.DataFrame()
    out = pd.concat(rows, ignore_index=True)
    return out[["family", "experiment", "strategy", "measure", "n", "median", "min", "max", "seeds"]]


def _first_samples(students: pd.DataFrame, thresholds: pd.Series) -> pd.Series:
    """Per (experiment, strategy, run): the first samples with test accuracy >= its threshold (NaN if never)."""
    keys = ["experiment", "strategy", "run"]
    hit = students[students["test_accuracy"].to_numpy() >= thresholds.to_numpy()]
    first = hit.groupby(keys)["samples"].min()
    return first.reindex(pd.MultiIndex.from_frame(students[keys].drop_duplicates()))


def speed_table(frames: TransformerFrames) -> pd.DataFrame:
    """Per experiment and strategy: median samples to the family's targets (PCFG: 80/90/95% of the
    teacher's final accuracy; parity: 95/99% test accuracy; a run that never got there counts as
    infinitely slow, blank when the median did not get there; :func:`infra.compare.median_reached`),
    runs, median final accuracy, ``gap to Bayes`` (the experiment's Bayes-optimal accuracy minus the median
    final accuracy; only where the teacher's summary holds it) and the median finals of the measures
    (as :func:`feature_table`)."""
    s, e = frames.students, frames.experiments
    if s.empty:
        return pd.DataFrame()
    s = s.merge(e[["experiment", "reference_accuracy"]], on="experiment", how="left")
    targets = []
    for fam, grp in s.groupby("family", sort=False):
        if fam in ("pcfg", "text"):
            targets += [(f"samples to {round(q * 100)}% of teacher", q * grp["reference_accuracy"])
                        for q in PCFG_FRACTIONS]
        else:
            targets += [(f"samples to {round(t * 100)}%", pd.Series(t, index=grp.index)) for t in PARITY_THRESHOLDS]
    firsts = {name: _first_samples(s.loc[thr.index], thr) for name, thr in targets}
    finals = run_finals(frames.students)
    rows = []
    for (exp, strategy), grp in finals.groupby(["experiment", "strategy"], sort=False):
        row = {"experiment": exp, "strategy": strategy}
        for name, first in firsts.items():
            sel = first[(first.index.get_level_values(0) == exp) & (first.index.get_level_values(1) == strategy)]
            if len(sel):
                med = median_reached(sel.tolist())
                row[name] = np.nan if med is None else med
        row["runs"] = len(grp)
        row["final accuracy"] = float(grp["test_accuracy"].median())
        bayes = bayes_of(e, exp)
        if bayes is not None:
            row["gap to Bayes"] = bayes - row["final accuracy"]
        for prefix in ("m_close_", "m_robust_", "probe_level_"):
            for col in measure_columns(finals, prefix):
                vals = grp[col].dropna()
                row[col] = float(vals.median()) if len(vals) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)
