"""The main job: a CPU-sized compare sweep that shows progressive distillation's speed-up, then its report.

:data:`DEMO_SWEEP` is the sweep (``kind: compare`` on the defaults of :mod:`simulate.config`:
(24, 5)-parity, a width-2000 teacher, width-64 students, every strategy, 5 student seeds; about
4 minutes on 2 cores); ``overrides`` change its ``base`` (``teacher.d=10`` ...), e.g. for a tiny run.
"""
from __future__ import annotations

from pathlib import Path

from simulate.sweep import parse_sweep, run_sweep

from .build import build_report

__all__ = ["DEMO_SWEEP", "run_demo"]

DEMO_SWEEP = {
    "kind": "compare",
    "description": "progressive vs one-shot distillation vs cross-entropy on (24, 5)-sparse parity",
    "base": {},
    "grid": {"student.seeds": [0, 1, 2, 3, 4]},
}


def run_demo(out, overrides: dict | None = None, *, progress: bool = True, n_boot: int = 1000,
             report_out=None) -> Path:
    """Run the demo sweep into ``out/runs`` (finished runs are skipped) and write its report into
    ``report_out`` (default ``out/report``); returns the report directory."""
    out = Path(out)
    sweep = parse_sweep(dict(DEMO_SWEEP, base=dict(DEMO_SWEEP["base"], **(overrides or {}))), source="demo")
    run_sweep(sweep, out / "runs", progress=progress)
    report = Path(report_out) if report_out else out / "report"
    build_report(out / "runs", report, n_boot=n_boot)
    return report
