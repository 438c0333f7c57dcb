"""``icurr demo`` (the main job) builds its report; here on a tiny version of the demo sweep, as the
gallery (reports/gallery, built by the same command on the defaults) would be."""
import subprocess
import sys

import pytest
from cli_helpers import run_icurr

TINY = ["teacher.d=10", "teacher.k=2", "teacher.width=256", "teacher.steps=4000", "teacher.eval_every=250",
        "teacher.checkpoint_every=500", "teacher.probe_every=500", "student.steps=8000", "student.eval_every=500",
        "student.probe_every=500", "student.stage_steps=500", "student.width=32"]


@pytest.mark.slow
def test_demo_builds_the_gallery_from_a_tiny_sweep(tmp_path):
    gallery = tmp_path / "gallery"
    cmd = [sys.executable, "-m", "icurr", "demo", "--out", str(tmp_path / "demo"), "--report-out", str(gallery),
           "--no-progress", *TINY]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert f"report: {gallery / 'report.md'}" in out.stdout
    for name in ("report.md", "report.html", "strategies.png", "strategies.csv", "curriculum.png", "theory.png"):
        assert (gallery / name).stat().st_size > 0, name
    text = (gallery / "report.md").read_text()
    import pandas as pd

    from infra.store import load_results

    summary = pd.read_csv(gallery / "strategies_summary.csv")
    results = load_results(tmp_path / "demo" / "runs")
    assert set(summary["strategy"]) == set(results["strategy"])
    ce = results[results["strategy"] == "ce"]["samples_to_95"].astype(float).fillna(float("inf")).median()
    assert summary.set_index("strategy").loc["ce", "median samples to 95%"] == ce
    for strategy in ("ce", "oneshot", "progressive", "two-shot", "equal-split", "extraction"):
        assert strategy in (gallery / "strategies.csv").read_text(), strategy
    # Curriculum Extraction's probe survives the sweep's split into per-seed run directories
    corr = pd.read_csv(gallery / "extraction_correlations.csv")
    assert set(corr["coordinate"]) == set(range(10)) and corr["run_hash"].nunique() == 5
    assert (gallery / "extraction.png").stat().st_size > 0
    assert "Scaling in d" in text  # left out with a note: the demo runs one d
    # a rerun skips every finished run (their summaries stay untouched) and rebuilds the same numbers
    before = (gallery / "strategies.csv").read_text()
    summaries = {p: p.stat().st_mtime_ns for p in (tmp_path / "demo" / "runs").glob("*/summary.json")}
    assert len(summaries) == 5  # one run per student seed
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 0 and (gallery / "strategies.csv").read_text() == before
    assert {p: p.stat().st_mtime_ns for p in summaries} == summaries


def test_demo_rejects_unknown_keys(tmp_path):
    out = run_icurr("demo", "--out", str(tmp_path), "teacher.widht=3")
    assert out.returncode == 2 and "unknown config key" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not tmp_path.joinpath("runs").exists()
