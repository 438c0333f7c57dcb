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
    res = subparsers.add_parser(
        "results", help="collect finished runs into one table, summarize it by strategy, or diff two runs",
        epilog="DIR is a results directory (icurr sweep run --out, icurr <family> compare --out) or one run "
               "directory. --by strategy --agg median: one row per strategy, n runs, the samples-to-target "
               "columns aggregated (a run that never got there counts as infinite: 'never'). json and csv "
               "carry each row's run directory (run_dir). --diff A B: the config keys whose values differ "
               "and the summaries side by side.")
    res.add_argument("dir", metavar="DIR", nargs="?", default=None,
                     help="results directory, or one run directory")
    res.add_argument("--kind", choices=("teacher", "student", "compare"), default=None, help="keep one kind")
    res.add_argument("--metrics", action="store_true",
                     help="the metrics rows (one per eval) instead of summaries; a teacher that compare runs "
                          "share appears once")
    res.add_argument("--by", default=None, metavar="COLS",
                     help="group by these columns (comma-separated, e.g. strategy or strategy,student.width)")
    res.add_argument("--agg", choices=("mean", "median", "min", "max"), default="median",
                     help="how --by aggregates the samples-to-target columns (default: median)")
    res.add_argument("--diff", nargs=2, default=None, metavar=("A", "B"),
                     help="how two run directories differ: config keys and summary numbers")
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
    from ..output import library_messages

    with library_messages():  # "resuming from step N", "K of M runs finished (not retrained)"
        outcome = run_sweep(sweep, args.out, backend=args.backend, address=args.address,
                            progress=not args.no_progress, gpu_fraction=args.gpu_fraction,
                            cpus_per_group=args.cpus_per_group, allow_thread_change=args.allow_thread_change)
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
    """Columns worth a glance: identity, the config columns that vary across rows, and the results
    (``run_dir`` only in json / csv)."""
    config = set(df.attrs.get("config_columns", ()))
    fixed = [c for c in ("run_hash", "kind", "seed", "strategy") if c in df.columns]
    varying = [c for c in df.columns if c in config and c not in fixed
               and df[c].astype(str).nunique(dropna=False) > 1]
    results = [c for c in df.columns if c not in config and c not in fixed and "steps_to_" not in c and c != "run_dir"]
    return df[fixed + varying + results]


def _results(args) -> None:
    from theory._checks import ParameterError

    if args.diff is not None:
        if args.dir is not None or args.by is not None or args.metrics:
            raise ParameterError("--diff A B takes no DIR, --by or --metrics")
        return _diff(args)
    if args.dir is None:
        raise ParameterError("results needs DIR (a results or run directory) or --diff A B")
    if args.by is not None and args.metrics:
        raise ParameterError("--by summarizes result rows; it takes no --metrics")
    from infra.rundir import atomic_write_text
    from infra.store import load_metrics, load_results, summarize, write_parquet

    df = (load_metrics(args.dir, kind=args.kind, shared_teachers="once") if args.metrics
          else load_results(args.dir, kind=args.kind))
    if args.by is not None:
        df = summarize(df, [c.strip() for c in args.by.split(",") if c.strip()], args.agg)
    if args.csv:
        atomic_write_text(args.csv, df.to_csv(index=False))
    if args.parquet:
        write_parquet(args.parquet, df)
    if args.csv or args.parquet:
        if args.format == "table":
            print(f"{len(df)} rows x {len(df.columns)} columns written to "
                  + " and ".join(f for f in (args.csv, args.parquet) if f))
            return
    shown = df if (args.all_columns or args.format != "table" or df.empty or args.by) else _compact(df)
    never = "never" if args.by is not None and args.format == "table" else None
    rows = [{k: _plain(v, never) for k, v in r.items()} for r in shown.to_dict("records")]
    title = (f"# {len(df)} groups of {args.dir} by {args.by}, {args.agg} (never: not reached)" if args.by
             else f"# {len(df)} rows from {args.dir}")
    emit(rows, args.format, title=title if args.format == "table" else None)


def _diff(args) -> None:
    from infra.store import run_difference

    a, b = args.diff
    diff = run_difference(a, b)
    if args.format == "json":
        json.dump({"a": a, "b": b, **{k: [{c: _plain(v) for c, v in r.items()} for r in rows]
                                      for k, rows in diff.items()}}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    rows = [{"section": section, **r} for section, part in diff.items() for r in part]
    if args.format == "csv":
        emit(rows, "csv")
        return
    same = "" if diff["config"] else " (configs equal)"
    emit(rows, "table", title=f"# a: {a}\n# b: {b}{same}")


def _plain(v, never=None):
    """A cell for printing: NaN -> None; +infinity -> ``never`` when given (else None in JSON)."""
    if isinstance(v, float) and v == float("inf") and never is not None:
        return never
    return None if _isna(v) else v


def _isna(v) -> bool:
    try:
        return bool(v != v)  # NaN
    except (TypeError, ValueError):
        return False
