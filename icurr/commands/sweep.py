"""``icurr sweep run|status`` (sweeps of teachers, students or comparisons) and ``icurr results``."""
from __future__ import annotations

import json
import sys

from ..output import FORMATS, emit

_SWEEP_EPILOG = ("A sweep file (YAML or TOML) holds kind: teacher|student|compare, base: {key: value}, "
                 "grid: {key: [values]} (Cartesian product) and zip: {key: [values]} (taken together). "
                 "Each run has one seed and lands in OUT/<config hash>/; rerunning skips finished runs. "
                 "Every point (grammars and corpora included) is checked before anything is written. "
                 "Several workers may run on one OUT at once (this command started again, or Ray tasks): "
                 "each group is claimed with a file lock, trained by one worker, and reported busy by the others; "
                 "a killed worker's groups are taken over and resumed by the next run.")


def register(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="run a sweep file (grid of configs) into a results directory")
    sub = p.add_subparsers(dest="sweep_command", metavar="SUBCOMMAND", parser_class=type(p), required=True)
    r = sub.add_parser("run", help="train every unfinished run of a sweep (resumable)", epilog=_SWEEP_EPILOG)
    r.add_argument("sweep", metavar="SWEEP", help="sweep file (.yaml, .yml or .toml)")
    r.add_argument("--out", required=True, help="results directory (one subdirectory per run)")
    r.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: groups one after another here; ray: one Ray task per group")
    r.add_argument("--address", default=None, help="Ray cluster address (ray backend; 'local' starts one)")
    r.add_argument("--gpu-fraction", type=float, default=1.0,
                   help="GPU share each CUDA group asks Ray for (ray backend; CPU groups ask for 0)")
    r.add_argument("--cpus-per-group", type=float, default=1.0, help="CPUs each group asks Ray for")
    r.add_argument("--allow-thread-change", action="store_true",
                   help="let a killed group resume under another CPU thread count (see ARCHITECTURE.md, Determinism)")
    r.add_argument("--dry-run", action="store_true", help="list the runs and groups, train nothing")
    r.add_argument("--format", choices=FORMATS, default="table")
    r.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    r.set_defaults(handler=_run)
    s = sub.add_parser("status", help="done / running / failed / pending, per run of a results directory "
                                      "(seconds: a finished run's share of its group's wall time)")
    s.add_argument("dir", metavar="DIR", help="results directory of a sweep")
    s.add_argument("--format", choices=FORMATS, default="table")
    s.set_defaults(handler=_status)
    res = subparsers.add_parser("results", help="collect the finished runs of a results directory into one table")
    res.add_argument("dir", metavar="DIR", help="results directory (e.g. of icurr sweep run)")
    res.add_argument("--kind", choices=("teacher", "student", "compare"), default=None, help="keep one kind")
    res.add_argument("--metrics", action="store_true", help="the metrics rows (one per eval) instead of summaries")
    res.add_argument("--csv", default=None, metavar="FILE", help="write the table as CSV")
    res.add_argument("--parquet", default=None, metavar="FILE", help="write the table as Parquet")
    res.add_argument("--all-columns", action="store_true",
                     help="table format: every column (default: only config columns that vary)")
    res.add_argument("--format", choices=FORMATS, default="table")
    res.set_defaults(handler=_results)


def _run(args) -> None:
    from experiments.sweep import expand, group_runs, load_sweep, run_sweep

    sweep = load_sweep(args.sweep)
    if args.dry_run:
        runs = expand(sweep)
        group_of = {s.hash: g.id for g in group_runs(runs) for s in g.runs}
        rows = [{"run_hash": s.hash, "group": group_of[s.hash], **{k: v for k, v in s.point}} for s in runs]
        emit(rows, args.format, title=f"# {len(runs)} runs in {len(set(group_of.values()))} groups"
             if args.format == "table" else None)
        return
    outcome = run_sweep(sweep, args.out, backend=args.backend, address=args.address, progress=not args.no_progress,
                        gpu_fraction=args.gpu_fraction, cpus_per_group=args.cpus_per_group,
                        allow_thread_change=args.allow_thread_change)
    emit(outcome.rows(), args.format, single=True)
    if outcome.failed:
        for h in outcome.failed:
            sys.stderr.write(f"icurr: run {h} failed; see {outcome.out}/{h}/error.json\n")
        sys.exit(1)


def _status(args) -> None:
    from infra.store import sweep_status

    rows, counts = sweep_status(args.dir)
    if args.format == "json":
        json.dump({"counts": counts, "runs": rows}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.format == "csv":
        emit(rows, "csv")
    else:
        emit(rows, "table", title=f"# {args.dir}")
        print("  ".join(f"{k}: {v}" for k, v in counts.items()))


def _compact(df):
    """Columns worth a glance: identity, the config columns that vary across rows, and the results."""
    config = set(df.attrs.get("config_columns", ()))
    fixed = [c for c in ("run_hash", "kind", "seed", "strategy") if c in df.columns]
    varying = [c for c in df.columns if c in config and c not in fixed
               and df[c].astype(str).nunique(dropna=False) > 1]
    results = [c for c in df.columns if c not in config and c not in fixed and "steps_to_" not in c]
    return df[fixed + varying + results]


def _results(args) -> None:
    from infra.rundir import atomic_write_text
    from infra.store import load_metrics, load_results, write_parquet

    df = load_metrics(args.dir, kind=args.kind) if args.metrics else load_results(args.dir, kind=args.kind)
    if args.csv:
        atomic_write_text(args.csv, df.to_csv(index=False))
    if args.parquet:
        write_parquet(args.parquet, df)
    if args.csv or args.parquet:
        if args.format == "table":
            print(f"{len(df)} rows x {len(df.columns)} columns written to "
                  + " and ".join(f for f in (args.csv, args.parquet) if f))
            return
    shown = df if (args.all_columns or args.format != "table" or df.empty) else _compact(df)
    rows = [{k: (None if _isna(v) else v) for k, v in r.items()} for r in shown.to_dict("records")]
    emit(rows, args.format, title=f"# {len(df)} rows from {args.dir}" if args.format == "table" else None)


def _isna(v) -> bool:
    try:
        return bool(v != v)  # NaN
    except (TypeError, ValueError):
        return False
