"""``icurr report DIR --out REPORT_DIR``: figures, CSVs, report.md and a self-contained report.html.

DIR may hold MLP runs (``icurr sweep run`` of teacher/student/compare kinds) and/or Transformer runs:
a plain ``icurr pcfg compare`` / ``icurr parity-transformer compare`` directory, or a sweep of
``pcfg-compare`` / ``parity-transformer-compare`` (or Transformer teacher/student) runs, or a scaling
directory of ``icurr scaling run`` (Algorithm 1's B1* searches and the online-SGD d-sweep in ``DIR/online``).

A progress bar on stderr names the step the report is at (plain lines when stderr is not a terminal);
``--no-progress`` hides it.
"""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report", help="figures and tables of a results directory (report.md, report.html)",
        description="Figures (PNG + the CSV of the numbers drawn), report.md and a self-contained report.html of "
                    "a results directory. MLP sections (strategies, curriculum, theory, scaling, batch/width) "
                    "appear for MLP runs; Transformer sections (PCFG teacher/students/features: Figures 1 right, "
                    "4, 5, 22, 24; parity Transformers: Figures 11-13) for Transformer runs; the section 'Measured vs "
                    "predicted scaling' for a directory of icurr scaling run.")
    p.add_argument("dir", metavar="DIR",
                   help="results directory: of icurr sweep run (MLP or Transformer kinds), or of "
                        "icurr pcfg compare / icurr parity-transformer compare --out DIR, or of icurr scaling run")
    p.add_argument("--out", required=True, metavar="REPORT_DIR", help="directory to write the report into")
    p.add_argument("--target", type=int, choices=(60, 95, 99), default=95,
                   help="test accuracy percent of the scaling figure (samples_to_TARGET)")
    p.add_argument("--n-boot", type=int, default=1000,
                   help="Monte Carlo draws of the B1* exponent intervals of a scaling directory (the other "
                        "exponents have t-intervals; the strategies tables' ratios draw 2000, seed 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of those draws' random generator")
    p.add_argument("--theory-d", type=int, default=51, help="d of the theory figure's Majority coefficients")
    p.add_argument("--frontier-delta", type=float, default=0.5,
                   help="delta of Lemma B.10's width-optimization frontier, in (0, 1)")
    p.add_argument("--frontier-tau", type=float, default=0.5,
                   help="gradient tolerance tau of Lemma B.10's frontier, in (0, 1)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(handler=_report)


def _report(args) -> None:
    from theory._checks import check_int, check_real

    # the flags' own names in the errors (build_report checks the same under its argument names)
    check_int("--n-boot", args.n_boot, 1, 1_000_000)
    check_int("--seed", args.seed, 0, 2**53 - 1)
    check_int("--theory-d", args.theory_d, 3, 10**9)
    check_real("--frontier-delta", args.frontier_delta, 0, 1, lo_open=True, hi_open=True)
    check_real("--frontier-tau", args.frontier_tau, 0, 1, lo_open=True, hi_open=True)
    from infra.runloop import Progress
    from reports.build import build_report

    bar = Progress(None, desc="report", unit="part", enabled=not args.no_progress, rate=False)
    try:
        sections = build_report(args.dir, args.out, target=args.target, n_boot=args.n_boot, seed=args.seed,
                                theory_d=args.theory_d, frontier_delta=args.frontier_delta,
                                frontier_tau=args.frontier_tau, progress=lambda name: bar.update(1, now=name))
    finally:
        bar.close()
    for s in sections:
        print(f"{s.name}: {s.figure}" if s.figure else s.note)
    print(f"wrote {args.out}/report.md and {args.out}/report.html")
