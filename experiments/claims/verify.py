"""Running the ledger: ``icurr verify [CLAIM ...] --tier smoke|cpu|paper --out DIR``.

Each claim runs below ``DIR/runs/<id>/`` (its experiments reuse finished runs, so a rerun or a killed
run resumes) and writes its CSV (and figure) into the report directory (default ``DIR``), which also
gets ``claims.json`` (every claim's source, rule, verdict, reason, numbers, scale and seconds; rewritten
after each claim) and ``CLAIMS.md``. A claim whose code raises is recorded with status ``error`` (not a
verdict) and the others still run; :func:`verify` returns the records and the caller exits non-zero.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import platform
import time
import traceback
from pathlib import Path

from infra.rundir import atomic_write_text
from theory._checks import ParameterError

from . import load_claims
from .ledger import TIERS

__all__ = ["verify", "render_markdown", "select"]

log = logging.getLogger(__name__)


def select(ids, tier: str) -> list:
    """The claims named by ``ids`` (all when empty), in ledger order; one-line errors for unknown ones."""
    claims = load_claims()
    if tier not in TIERS:
        raise ParameterError(f"tier must be one of {', '.join(TIERS)}, got {tier!r}")
    unknown = [i for i in ids if i not in claims]
    if unknown:
        raise ParameterError(f"claim must be one of {', '.join(claims)}, got {', '.join(unknown)}")
    return [c for c in claims.values() if not ids or c.id in ids]


def _record(claim, tier: str) -> dict:
    return {"id": claim.id, "title": claim.title, "kind": claim.kind, "tier": tier,
            "source": dataclasses.asdict(claim.source), "rule": dataclasses.asdict(claim.rule)}


def verify(ids, tier: str, out, *, report_out=None, progress: bool = True) -> list[dict]:
    """Run the claims ``ids`` (all when empty) at ``tier``: runs below ``out/runs``, the ledger's files in
    ``report_out`` (default ``out``); returns one record per claim (see the module doc)."""
    claims = select(ids, tier)
    out = Path(out)
    report = Path(report_out) if report_out else out
    report.mkdir(parents=True, exist_ok=True)
    fresh = not (out / "runs").is_dir() or not any((out / "runs").iterdir())  # a build from scratch
    records, t_all = [], time.time()
    for claim in claims:
        rec, t0 = _record(claim, tier), time.time()
        try:
            outcome = claim.run(tier, out / "runs" / claim.id, progress=progress)
            rec.update(status="done", verdict=outcome.verdict, reason=outcome.reason, numbers=outcome.numbers,
                       scale=outcome.scale)
            if outcome.table is not None:
                outcome.table.to_csv(report / f"{claim.id}.csv", index=False)
                rec["csv"] = f"{claim.id}.csv"
            if outcome.figure is not None:
                outcome.figure(report / f"{claim.id}.png")
                rec["figure"] = f"{claim.id}.png"
        except ParameterError:
            raise
        except Exception as exc:  # noqa: BLE001 - one claim's failure is recorded, the others still run
            log.error("claim %s raised %s: %s", claim.id, type(exc).__name__, exc)
            rec.update(status="error", verdict=None, reason=f"{type(exc).__name__}: {exc}",
                       traceback=traceback.format_exc())
        rec["seconds"] = round(time.time() - t0, 2)
        records.append(rec)
        _write(report, records, tier, time.time() - t_all, fresh)
    return records


def _write(report: Path, records: list[dict], tier: str, wall: float, fresh: bool = True) -> None:
    meta = {"tier": tier, "wall_seconds": round(wall, 1), "from_scratch": fresh,
            "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "machine": f"{platform.machine()}, {platform.processor() or platform.platform()}", "claims": records}
    atomic_write_text(report / "claims.json", json.dumps(meta, indent=2, default=str) + "\n")
    atomic_write_text(report / "CLAIMS.md", render_markdown(meta))


def _one_line(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render_markdown(meta: dict) -> str:
    """``CLAIMS.md`` from the contents of ``claims.json``: a summary table, then one section per claim with
    its source, rule (and any change after data), verdict, reason, scale, figure and CSV."""
    recs = meta["claims"]
    count = {v: sum(r.get("verdict") == v for r in recs) for v in ("PASS", "FAIL", "INCONCLUSIVE")}
    errors = sum(r.get("status") == "error" for r in recs)
    lines = ["# Claims ledger", "",
             f"Built by `icurr verify --tier {meta['tier']}` ({meta['written']}, {meta['wall_seconds']:.0f} s wall in "
             + ("all, from scratch" if meta.get("from_scratch", True) else
                "all, reusing the finished runs of an earlier build (each claim's own time is in `claims.json`)")
             + f"; {meta['machine']}). Each claim is the paper's statement; its decision rule was fixed in code "
             "(`experiments/claims/`) before its experiment ran. Verdicts: "
             + ", ".join(f"{n} {v}" for v, n in count.items()) + (f", {errors} ERROR" if errors else "") + ".", "",
             "| claim | paper, where | verdict | reason |", "|---|---|---|---|"]
    for r in recs:
        verdict = r.get("verdict") or "ERROR"
        lines.append(f"| [`{r['id']}`](#{r['id']}) {_one_line(r['title'])} | {r['source']['where']} | **{verdict}** "
                     f"| {_one_line(r.get('reason', ''))} |")
    for r in recs:
        s, rule = r["source"], r["rule"]
        lines += ["", f"## {r['id']}", "", f"**{_one_line(r['title'])}** ({r['kind']})", "",
                  f"- Paper: {s['paper']}, {s['where']} (`../shared/papers/{s['file']}`, line {s['line']}): "
                  f"\"{_one_line(s['quote'])}\"",
                  f"- Statistic: {_one_line(rule['statistic'])}",
                  f"- Decision (fixed {rule['fixed']}): {_one_line(rule['decision'])}"]
        if rule.get("changed"):
            lines.append(f"- Rule changed after seeing data: {_one_line(rule['changed'])}")
        lines += [f"- Verdict: **{r.get('verdict') or 'ERROR'}**: {_one_line(r.get('reason', ''))}",
                  f"- Scale ({r['tier']} tier): {_one_line(r.get('scale') or 'n/a')}; {r['seconds']:.1f} s"]
        if r.get("figure"):
            lines += ["", f"![{r['id']}]({r['figure']})"]
        if r.get("csv"):
            lines += ["", f"Data: [{r['csv']}]({r['csv']})"]
    return "\n".join(lines) + "\n"
