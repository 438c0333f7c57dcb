"""``icurr verify [CLAIM ...] --tier smoke|cpu|paper --out DIR``: the claims ledger
(:mod:`experiments.claims`): each claim's experiment, its decision rule and its verdict."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "verify", help="re-run the papers' claims and give each a verdict (PASS / FAIL / INCONCLUSIVE)",
        description="Runs each claim of the ledger (experiments/claims/) at a tier: its experiment (reusing "
                    "finished runs below OUT/runs), the statistic its rule names and the verdict the rule gives; "
                    "writes claims.json, CLAIMS.md, and a CSV (and figure) per claim. The rules were fixed in code "
                    "before the experiments ran.",
        epilog="Tiers: smoke (CI-sized, about a minute), cpu (the committed reports/gallery/claims/CLAIMS.md), "
               "paper (the papers' sizes, for a GPU). --list shows the claims.")
    p.add_argument("claims", nargs="*", metavar="CLAIM", help="claim ids (default: every claim)")
    p.add_argument("--tier", default="cpu", help="smoke | cpu | paper (default: cpu)")
    p.add_argument("--out", default="runs/claims", help="output directory (default: runs/claims)")
    p.add_argument("--report-out", default=None, help="where claims.json, CLAIMS.md, CSVs and figures go (default: OUT)")
    p.add_argument("--jobs", type=int, default=1,
                   help="worker processes (default 1): claims that share no run directory run side by side, each "
                        "worker with CPU threads / N threads (the cpu tier from scratch: about N times faster on N "
                        "cores, up to its longest group)")
    p.add_argument("--list", action="store_true", help="list the claims (id, source, rule) and exit")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    p.set_defaults(handler=_verify)


def _verify(args) -> None:
    import sys

    from experiments.claims.verify import select, verify
    from theory._checks import check_int

    from ..output import library_messages

    claims = select(args.claims, args.tier)  # unknown ids and tiers fail before any work
    check_int("jobs", args.jobs, 1, 64)
    if args.list:
        for c in claims:
            print(f"{c.id}  [{c.kind}] {c.source.where} (line {c.source.line}): {c.title}")
        return
    with library_messages():  # "K of M runs finished (not retrained)", and with --jobs each group's verdicts
        records = verify(args.claims, args.tier, args.out, report_out=args.report_out,
                         progress=not args.no_progress, jobs=args.jobs)
    for r in records:
        print(f"{(r.get('verdict') or 'ERROR'):12s} {r['id']}: {r.get('reason', '')}")
    report = args.report_out or args.out
    print(f"ledger: {report}/CLAIMS.md (and claims.json)")
    if any(r.get("status") == "error" for r in records):
        sys.exit(1)
