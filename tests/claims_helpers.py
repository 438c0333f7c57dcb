"""Shared steps of the claim modules' tests."""
from __future__ import annotations


def smoke_records(ids, out, *, min_figure_bytes: int = 0) -> list[dict]:
    """``verify(ids, "smoke", out)``, checked: every claim done, in order, with a verdict, a reason, its CSV
    and a figure of more than ``min_figure_bytes`` bytes."""
    from experiments.claims.verify import verify

    recs = verify(list(ids), "smoke", out, progress=False)
    assert [r["id"] for r in recs] == list(ids)
    assert [r["status"] for r in recs] == ["done"] * len(ids), [r.get("reason") or r.get("traceback") for r in recs]
    for r in recs:
        assert r["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE") and r["reason"]
        assert (out / f"{r['id']}.csv").is_file() and (out / f"{r['id']}.png").stat().st_size > min_figure_bytes
    return recs


def assert_reused(ids, out, recs) -> None:
    """A second ``verify`` of ``ids`` into ``out`` reuses every run: the same reasons, in under half the time."""
    from experiments.claims.verify import verify

    again = verify(list(ids), "smoke", out, progress=False)
    assert [r["reason"] for r in again] == [r["reason"] for r in recs]
    assert sum(r["seconds"] for r in again) < 0.5 * sum(r["seconds"] for r in recs)
