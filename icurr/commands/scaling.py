"""``icurr scaling run``: measured against predicted scaling (Algorithm 1's B1* searches and the
online-SGD d-sweep of a spec; :mod:`experiments.scaling`), then its report."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("scaling", help="measured vs predicted scaling in d (Algorithm 1 and online SGD)")
    sub = p.add_subparsers(dest="scaling_command", metavar="SUBCOMMAND", parser_class=type(p), required=True)
    r = sub.add_parser(
        "run", help="run a scaling spec (resumable), then write its report",
        description="Trains the two-stage (Algorithm 1) teachers of a spec, searches the smallest stage-1 batch "
                    "B1* of every (d, k, supervision, widths) point by bisection over a geometric grid, runs the "
                    "spec's online-SGD sweep, then writes the report (measured exponents beside theory.bounds). "
                    "Rerunning skips finished runs and searches.",
        epilog="Tiers: smoke (CI, about a minute), cpu (the committed gallery, 25-30 minutes on one core), "
               "paper (the paper's d and k, for a GPU). Specs: experiments/sweeps/scaling/<tier>.yaml.")
    r.add_argument("--tier", default="cpu", help="smoke | cpu | paper, or a spec YAML path (default: cpu)")
    r.add_argument("--out", required=True, help="output directory")
    r.add_argument("--report-out", default=None, help="report directory (default: OUT/report)")
    r.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    r.set_defaults(handler=_run)


def _run(args) -> None:
    from pathlib import Path

    from experiments.scaling import run_scaling
    from reports.build import build_report

    res = run_scaling(args.tier, args.out, progress=not args.no_progress)  # checks every config before any work
    report = Path(args.report_out) if args.report_out else Path(args.out) / "report"
    build_report(args.out, report)
    print(f"{res['teachers']} teachers, {res['searches']} B1* searches in {res['wall_seconds']:.0f} s; "
          f"report: {report / 'report.md'} (and report.html)")
