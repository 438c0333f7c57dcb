"""The main job: a CPU-sized compare sweep (the data file ``experiments/sweeps/demo.yaml``) that shows
progressive distillation's speed-up; the command line then builds its report (:mod:`reports`).

The sweep is ``kind: compare`` on the defaults of :mod:`simulate.config` ((24, 5)-parity, a width-2000
teacher, width-64 students, every strategy, 5 student seeds; 20 s on 2 cores); ``overrides`` change its ``base``
(``teacher.d=10`` ...), e.g. for a tiny run.
"""
from __future__ import annotations

from pathlib import Path

from experiments.sweep import SWEEPS_DIR, parse_sweep, run_sweep
from infra.yamlfile import load_yaml

__all__ = ["DEMO_SWEEP_FILE", "demo_sweep", "run_demo"]

DEMO_SWEEP_FILE = SWEEPS_DIR / "demo.yaml"


def demo_sweep(overrides: dict | None = None):
    """The demo's :class:`~experiments.sweep.Sweep` with ``overrides`` merged into its ``base``."""
    data = load_yaml(DEMO_SWEEP_FILE.read_text(), f"sweep file {DEMO_SWEEP_FILE}")
    data["base"] = dict(data.get("base") or {}, **(overrides or {}))
    return parse_sweep(data, source="demo")


def run_demo(out, overrides: dict | None = None, *, progress: bool = True) -> Path:
    """Run the demo sweep into ``out/runs`` (finished runs are skipped); returns that directory."""
    runs = Path(out) / "runs"
    run_sweep(demo_sweep(overrides), runs, progress=progress)
    return runs
