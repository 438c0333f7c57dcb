"""Running the ledger: ``icurr verify [CLAIM ...] --tier smoke|cpu|paper --out DIR [--jobs N]``.

Each claim runs below ``DIR/runs/<id>/`` or the directories it declares (:attr:`.ledger.Claim.run_dirs`;
its experiments reuse finished runs, so a rerun or a killed run resumes) and writes its CSV (and figure)
into the report directory (default ``DIR``), which also gets ``claims.json`` (every claim's source, rule,
verdict, reason, numbers, scale and seconds; rewritten after each claim, or each group with ``jobs > 1``)
and ``CLAIMS.md``. A claim whose code raises, or that touches a run directory it does not declare
(:mod:`.guard`), is recorded with status ``error`` (not a verdict) and the others still run;
:func:`verify` returns the records and the caller exits non-zero.

``jobs > 1``: the claims are split into :func:`groups` (claims sharing a run directory, transitively) and
the groups run in ``jobs`` worker processes, the costliest first, each worker with its share of the CPU
threads; inside a group the claims run in ledger order, as with ``jobs = 1``. The verdicts do not depend
on ``jobs`` (a group's runs are trained by one worker, with the threads they would have had alone when
``OMP_NUM_THREADS`` is ``jobs`` times theirs).
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import time
import traceback
from pathlib import Path

from infra.rundir import atomic_write_text
from theory._checks import ParameterError, check_int

from . import guard, load_claims
from .ledger import TIERS

__all__ = ["verify", "render_markdown", "select", "groups"]

log = logging.getLogger(__name__)

#: A claim's rough cost on one core by kind (a Transformer claim's runs take minutes, a theory claim's
#: computation a second): the order in which ``jobs > 1`` starts the groups, the costliest first.
_COST = {"theory": 0.01, "mlp": 1.0, "transformer": 5.0}


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


def groups(claims) -> list[list]:
    """``claims`` split into groups that share no run directory (:attr:`.ledger.Claim.dirs`): two claims
    naming one directory, directly or through others, are in one group. Groups are in the order of their
    first claim, and claims in ledger order inside."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for c in claims:
        for d in c.dirs:
            parent[find(d)] = find(c.dirs[0])
    out: dict[str, list] = {}
    for c in claims:
        out.setdefault(find(c.dirs[0]), []).append(c)
    return list(out.values())


def run_claim(claim, tier: str, out, report, progress: bool = False) -> dict:
    """Run one claim: its record (see the module doc); the CSV and figure written into ``report``."""
    out, report = Path(out), Path(report)
    rec, t0 = _record(claim, tier), time.time()
    try:
        with guard.watch(out / "runs") as touched:
            outcome = claim.run(tier, out / "runs" / claim.id, progress=progress)
        bad = guard.undeclared(touched, claim.dirs)
        if bad:
            raise RuntimeError(f"claim {claim.id} used {', '.join('runs/' + b for b in bad)}, which it does not "
                               f"declare (run_dirs: {', '.join(claim.dirs)}); declare every shared run directory "
                               "in its Claim(run_dirs=...), or icurr verify --jobs N may train one run twice")
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
    return rec


def verify(ids, tier: str, out, *, report_out=None, progress: bool = True, jobs: int = 1) -> list[dict]:
    """Run the claims ``ids`` (all when empty) at ``tier``: runs below ``out/runs``, the ledger's files in
    ``report_out`` (default ``out``), ``jobs`` worker processes (see the module doc); returns one record per
    claim, in ledger order."""
    claims = select(ids, tier)
    jobs = check_int("jobs", jobs, 1, 64)
    out = Path(out)
    report = Path(report_out) if report_out else out
    report.mkdir(parents=True, exist_ok=True)
    fresh = not (out / "runs").is_dir() or not any((out / "runs").iterdir())  # a build from scratch
    t_all = time.time()
    if jobs == 1:
        records = []
        for claim in claims:
            records.append(run_claim(claim, tier, out, report, progress))
            _write(report, records, tier, time.time() - t_all, fresh, 1)
        return records
    return _parallel(claims, tier, out, report, jobs, fresh, t_all)


def _parallel(claims, tier: str, out: Path, report: Path, jobs: int, fresh: bool, t_all: float) -> list[dict]:
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    parts = sorted(groups(claims), key=lambda g: -sum(_COST[c.kind] for c in g))
    threads = max(1, int(os.environ.get("OMP_NUM_THREADS") or len(os.sched_getaffinity(0))) // jobs)
    level = logging.getLogger("experiments").getEffectiveLevel()
    done: dict[str, dict] = {}
    with ProcessPoolExecutor(max_workers=min(jobs, len(parts)), mp_context=get_context("spawn"),
                             initializer=_init_worker, initargs=(threads, level)) as pool:
        futures = {pool.submit(_run_group, [c.id for c in g], tier, str(out), str(report)): g for g in parts}
        for fut in as_completed(futures):
            try:
                recs = fut.result()
            except ParameterError:
                raise
            except Exception as exc:  # noqa: BLE001 - a worker that died: its claims are errors, not verdicts
                recs = [{**_record(c, tier), "status": "error", "verdict": None, "seconds": 0.0,
                         "reason": f"worker failed: {type(exc).__name__}: {exc}"} for c in futures[fut]]
            done.update((r["id"], r) for r in recs)
            log.info("claims %s: %s (%d of %d done, %.0f s)", ", ".join(r["id"] for r in recs),
                     ", ".join(r.get("verdict") or "ERROR" for r in recs), len(done), len(claims),
                     time.time() - t_all)
            _write(report, [done[c.id] for c in claims if c.id in done], tier, time.time() - t_all, fresh, jobs)
    return [done[c.id] for c in claims]


def _init_worker(threads: int, level: int) -> None:
    _die_with_parent()
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(level=level, format="%(message)s")


def _die_with_parent() -> None:
    """On Linux, a worker is killed when ``icurr verify`` dies (SIGKILL included), so that a rerun never
    trains a run that an orphaned worker is still writing."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the line above
        os._exit(1)


def _run_group(ids, tier: str, out: str, report: str) -> list[dict]:
    claims = load_claims()
    return [run_claim(claims[i], tier, out, report) for i in ids]


def _write(report: Path, records: list[dict], tier: str, wall: float, fresh: bool, jobs: int) -> None:
    meta = {"tier": tier, "jobs": jobs, "wall_seconds": round(wall, 1), "from_scratch": fresh,
            "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, "
                       f"{platform.processor() or platform.platform()}", "claims": records}
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
             f"Built by `icurr verify --tier {meta['tier']}"
             + (f" --jobs {meta['jobs']}" if meta.get("jobs", 1) > 1 else "")
             + f"` ({meta['written']}, {meta['wall_seconds']:.0f} s wall in "
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
