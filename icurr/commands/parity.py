"""``icurr parity``: teachers, students and strategy comparisons on sparse parity (MLPs)."""
from __future__ import annotations

from infra.schedule import STRATEGIES

from ..output import emit
from ._shared import EPILOG as _EPILOG
from ._shared import add_common as _common
from ._shared import resolve_config


def register(subparsers) -> None:
    p = subparsers.add_parser("parity", help="sparse parity with MLPs: teacher, student, compare")
    sub = p.add_subparsers(dest="parity_command", metavar="SUBCOMMAND", parser_class=type(p), required=True)
    t = sub.add_parser("teacher", help="train a teacher (saves checkpoints and metrics)", epilog=_EPILOG)
    _common(t, "runs/<config hash>")
    t.set_defaults(handler=_teacher)
    s = sub.add_parser("student", help="train students of a saved teacher", epilog=_EPILOG)
    s.add_argument("--teacher", required=True, help="teacher run directory")
    s.add_argument("--strategy", default=None,
                   choices=STRATEGIES, help="overrides strategy=")
    _common(s, "runs/<config hash>")
    s.set_defaults(handler=_student)
    c = sub.add_parser("compare", help="train one teacher and a student per strategy; one row per strategy",
                       epilog=_EPILOG + " Use teacher.FIELD=... and student.FIELD=...")
    _common(c, "runs/compare-<config hash>")
    c.set_defaults(handler=_compare)


def _resolve(cls, args, extra=None, section=None):
    from simulate.config import PRESETS

    return resolve_config(cls, args, PRESETS, extra, section)


def _runs_rows(rd) -> list[dict]:
    summary = rd.read_json("summary.json")
    keep = ("run", "seed", "samples_to_60", "samples_to_95", "samples_to_99", "final_accuracy",
            "corr1_gap_peak", "corr1_gap_peak_step")
    return [{k: r.get(k) for k in keep} for r in summary["runs"]]


def _teacher(args) -> None:
    from infra.config import config_hash
    from simulate.config import TeacherConfig
    from simulate.teacher import train_teacher

    cfg = _resolve(TeacherConfig, args, section="teacher")
    if cfg is None:
        return
    rd = train_teacher(cfg, args.out or f"runs/{config_hash(cfg)}", progress=not args.no_progress)
    emit(_runs_rows(rd), args.format, title=f"# teacher: {rd.path}" if args.format == "table" else None)


def _student(args) -> None:
    from infra.config import config_hash
    from simulate.config import StudentConfig
    from simulate.student import train_student

    extra = {"teacher": args.teacher}
    if args.strategy:
        extra["strategy"] = args.strategy
    cfg = _resolve(StudentConfig, args, extra, section="student")
    if cfg is None:
        return
    rd = train_student(cfg, args.out or f"runs/{config_hash(cfg)}", progress=not args.no_progress)
    emit(_runs_rows(rd), args.format, title=f"# students ({cfg.strategy}): {rd.path}" if args.format == "table" else None)


def _compare(args) -> None:
    from infra.config import config_hash
    from simulate.compare import run_compare
    from simulate.config import CompareConfig

    cfg = _resolve(CompareConfig, args)
    if cfg is None:
        return
    rows = run_compare(cfg, args.out or f"runs/compare-{config_hash(cfg)}", progress=not args.no_progress)
    emit(rows, args.format)
