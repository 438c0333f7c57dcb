"""``icurr demo`` (the main job) builds its report; here on a tiny version of the demo sweep, as the
gallery (reports/gallery, built by the same command on the defaults) would be."""
import subprocess
import sys

import pytest
from cli_helpers import run_icurr
from test_results_cli import plant_compare

from icurr.commands.demo import TINY as TINY_WORDS
from icurr.commands.demo import finding
from infra.compare import ratio_interval

TINY = TINY_WORDS.split()  # the tiny run that `icurr demo --help` suggests


@pytest.mark.slow
def test_demo_builds_the_gallery_from_a_tiny_sweep(tmp_path):
    gallery = tmp_path / "gallery"
    cmd = [sys.executable, "-m", "icurr", "demo", "--out", str(tmp_path / "demo"), "--report-out", str(gallery),
           "--no-progress", *TINY]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert f"report: {gallery / 'report.md'}" in out.stdout
    # the finding comes before the report's path: one row per strategy, in the compare's order
    lines = out.stdout.splitlines()
    head = next(i for i, x in enumerate(lines) if x.split()[:1] == ["strategy"])
    assert lines[head].split()[:4] == ["strategy", "samples", "to", "95%"] and "than one-shot" in lines[head]
    assert [x.split()[0] for x in lines[head + 2:head + 8]] == ["ce", "oneshot", "progressive", "two-shot",
                                                                 "equal-split", "extraction"]
    assert lines[-1].startswith("report: ")
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


def test_the_demos_finding_on_planted_runs(tmp_path):
    samples = {"ce": [1000, 2000, 6000], "oneshot": [4000, 4000, 4000], "progressive": [None, None, 1000],
               "two-shot": [500, 1000, None]}
    for seed in range(3):
        plant_compare(tmp_path, seed, samples)  # config, summary (and metrics) as a sweep writes them
    rows = finding(tmp_path)
    assert [r["strategy"] for r in rows] == list(samples)  # the compare's order, not the summaries' (sorted)
    by = {r["strategy"]: r for r in rows}
    # medians, a run that never got there counting as infinite: ce 2000, oneshot 4000, two-shot 1000
    assert [by[s]["samples to 95%"] for s in samples] == ["2000", "4000", "never", "1000"]
    assert by["two-shot"]["reached"] == "2/3" and by["progressive"]["reached"] == "1/3"
    _, lo, hi = ratio_interval(samples["ce"], samples["two-shot"])
    assert by["two-shot"]["x fewer samples than ce"] == f"2.00x [{lo:.2f}, {hi:.2f}]"
    assert by["two-shot"]["than one-shot"].startswith("4.00x [")
    assert by["oneshot"]["x fewer samples than ce"].startswith("0.50x [") and by["oneshot"]["than one-shot"] == "-"
    assert by["ce"]["x fewer samples than ce"] == "-"
    assert by["progressive"]["x fewer samples than ce"] == by["progressive"]["than one-shot"] == "-"
    (tmp_path / "empty").mkdir()
    assert finding(tmp_path / "empty") == []  # no runs: no table (the demo prints only the report's path)
