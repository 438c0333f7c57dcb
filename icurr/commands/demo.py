"""``icurr demo``: the main job (a CPU-sized sweep that shows the effect, then its report), ending with its
finding: the strategies table (samples to 95% test accuracy, and how many times fewer than ce / one-shot)."""
from __future__ import annotations

#: Overrides for a run of about 10 s on one core (a (10, 2)-parity teacher of width 128, 3000 steps; students of
#: width 32, 4000 steps): a pipeline check, every strategy learns (10, 2) in a few hundred samples. The
#: evaluation / checkpoint / probe intervals follow ``steps``; the stage lengths do not.
TINY = ("teacher.d=10 teacher.k=2 teacher.width=128 teacher.steps=3000 student.width=32 student.steps=4000 "
        "student.stage_steps=200 student.extract_steps=500")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="run the CPU-sized demo sweep (about 20 s on 2 quiet cores), print its finding, write its report",
        description="Trains one teacher and students of every strategy on (24, 5)-sparse parity (the defaults "
                    "of icurr parity compare, 5 student seeds), prints the strategies table (median samples to "
                    "95% test accuracy over the seeds, and how many times fewer than ce and one-shot, with 95% "
                    "bootstrap intervals over the paired seeds), then writes report.md / report.html. "
                    "Rerunning skips finished runs.",
        epilog=f"KEY=VALUE words change the sweep's base. A tiny run (a few seconds): icurr demo --out runs/tiny {TINY}",
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides of the demo sweep's base")
    p.add_argument("--out", default="runs/demo", help="output directory (default: runs/demo)")
    p.add_argument("--report-out", default=None,
                   help="report directory (default: OUT/report; the committed gallery: reports/gallery)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(handler=_demo)


def _demo(args) -> None:
    from pathlib import Path

    from experiments.demo import demo_sweep, run_demo
    from infra.config import parse_overrides
    from reports.build import build_report

    from ..output import emit, library_messages

    overrides = parse_overrides(args.overrides)
    demo_sweep(overrides)  # every key checked before any work
    with library_messages():  # "resuming from step N", "K of M runs finished (not retrained)"
        runs = run_demo(args.out, overrides, progress=not args.no_progress)
    report = Path(args.report_out) if args.report_out else Path(args.out) / "report"
    build_report(runs, report)
    rows = finding(runs)
    if rows:
        print()
        emit(rows, "table", title="# samples to 95% test accuracy (median over seeds; never: the median run never "
                                  "got there) and x fewer samples: median / median [95% bootstrap CI, paired seeds]")
    print(f"report: {report / 'report.md'} (and report.html)")


def finding(runs) -> list[dict]:
    """The demo's strategies table, one row per strategy in the compare's order, as strings: ``samples
    to 95%`` (median over the runs; ``never`` when the median run never reached 95%), ``reached`` (runs
    reaching 95% / runs), ``x fewer samples than ce`` and ``than one-shot`` (``"2.16x [1.69, 2.74]"``:
    median(baseline) / median(strategy) and its bootstrap interval over runs paired by seed; ``-`` for the
    baseline itself and where the strategy's median never got there). The numbers are the report's
    strategies table (:func:`reports.build.strategy_table`) of the results in ``runs``."""
    from infra.store import load_results
    from reports.build import strategy_table

    results = load_results(runs)
    if results.empty or "kind" not in results.columns:
        return []
    results = results[results["kind"].isin(("compare", "student"))]
    table = strategy_table(results)
    if table.empty:
        return []
    order = {}
    for listed in results.get("strategies", []):
        order.update(dict.fromkeys(str(listed).split(",")))
    order.update(dict.fromkeys(table["strategy"]))
    table = table.set_index("strategy").loc[[s for s in order if s in set(table["strategy"])]]
    rows = []
    for strategy, r in table.iterrows():
        med = r["median samples to 95%"]
        never = med != med
        row = {"strategy": strategy, "samples to 95%": "never" if never else f"{med:.0f}",
               "reached": r["runs reaching 95%"]}
        for base, name in (("ce", "x fewer samples than ce"), ("oneshot", "than one-shot")):
            cell = r.get(f"x fewer than {base} [95% CI]")
            est = None if not isinstance(cell, str) else cell.split(" ", 1)
            row[name] = "-" if est is None or never else f"{est[0]}x {est[1]}"
        rows.append(row)
    return rows
