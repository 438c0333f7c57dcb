"""Printing rows (lists of dicts) as an aligned table, JSON or CSV."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import math
import sys

FORMATS = ("table", "json", "csv")


def _cell(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    if v is None:
        return "-"
    return str(v)


def _json_value(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def render_table(rows: list[dict], title: str | None = None) -> str:
    if not rows:
        return (title + "\n" if title else "") + "(no rows)\n"
    keys = list(dict.fromkeys(k for r in rows for k in r))
    cells = [[_cell(r.get(k)) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = [title] if title else []
    lines.append("  ".join(k.rjust(w) for k, w in zip(keys, widths)))
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines) + "\n"


def emit(rows, fmt: str = "table", *, title: str | None = None, stream=None, single: bool = False) -> None:
    """Write ``rows`` in ``fmt``. JSON: one object when ``single``, else a list of objects."""
    stream = stream or sys.stdout
    rows = [rows] if isinstance(rows, dict) else list(rows)
    if fmt == "json":
        data = [{k: _json_value(v) for k, v in r.items()} for r in rows]
        json.dump(data[0] if single and len(data) == 1 else data, stream, indent=2)
        stream.write("\n")
    elif fmt == "csv":
        keys = list(dict.fromkeys(k for r in rows for k in r))
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        stream.write(buf.getvalue())
    else:
        stream.write(render_table(rows, title))


#: The loggers whose messages the command line shows: "finished (not retrained): DIR", "resuming from
#: step N: DIR", a corrupt checkpoint set aside, a run that diverged (one line each).
_LOGGERS = ("infra", "simulate", "distill", "experiments")


@contextlib.contextmanager
def library_messages():
    """The library's INFO messages, one plain line each, on this command's stderr while it trains."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.removeHandler(handler)
            lg.setLevel(level)
