"""``icurr demo``: the main job (a CPU-sized sweep that shows the effect, then its report)."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="run the CPU-sized demo sweep (about 20 s on 2 quiet cores) and write its report",
        description="Trains one teacher and students of every strategy on (24, 5)-sparse parity (the defaults "
                    "of icurr parity compare, 5 student seeds), then writes report.md / report.html. "
                    "Rerunning skips finished runs.",
        epilog="KEY=VALUE words change the sweep's base, e.g. teacher.d=10 teacher.k=2 for a tiny run.",
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

    overrides = parse_overrides(args.overrides)
    demo_sweep(overrides)  # every key checked before any work
    runs = run_demo(args.out, overrides, progress=not args.no_progress)
    report = Path(args.report_out) if args.report_out else Path(args.out) / "report"
    build_report(runs, report)
    print(f"report: {report / 'report.md'} (and report.html)")
