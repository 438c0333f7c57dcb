"""Shared steps of the claim modules' tests."""
from __future__ import annotations


def smoke_records(ids, out) -> list[dict]:
    """``verify(ids, "smoke", out)``, checked: every claim done with a verdict, a reason, its CSV and figure."""
    from experiments.claims.verify import verify

    recs = verify(list(ids), "smoke", out, progress=False)
    assert [r["status"] for r in recs] == ["done"] * len(ids), [r.get("reason") for r in recs]
    for r in recs:
        assert r["verdict"] in ("PASS", "FAIL", "INCONCLUSIVE") and r["reason"]
        assert (out / f"{r['id']}.csv").is_file() and (out / f"{r['id']}.png").is_file()
    return recs
