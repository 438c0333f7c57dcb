"""The claims ledger (``icurr verify``): the papers' claims with their decision rules and verdicts.

:mod:`.ledger` holds the data types and the registry; the claims register themselves when their modules
are imported (:data:`CLAIM_MODULES`, in order); :mod:`.verify` runs them and writes ``claims.json`` and
``CLAIMS.md``.
"""
from __future__ import annotations

import importlib

#: The modules that register claims, in the ledger's order.
CLAIM_MODULES = ("experiments.claims.theory_claims", "experiments.claims.theory_claims_b", "experiments.claims.mlp_claims",
                 "experiments.claims.mlp_claims_r1", "experiments.claims.mlp_claims_r2",
                 "experiments.claims.mlp_claims_width", "experiments.claims.mlp_claims_ablations",
                 "experiments.claims.mlp_claims_fig9", "experiments.claims.mlp_claims_hier",
                 "experiments.claims.extraction_claims", "experiments.claims.transformer_parity_claims",
                 "experiments.claims.pcfg_claims", "experiments.claims.pcfg_claims_r5",
                 "experiments.claims.pcfg_extraction_claims",
                 "experiments.claims.gpt_claims",
                 "experiments.claims.text_claims", "experiments.claims.text_extraction_claims")


def load_claims() -> dict:
    """Import every claim module once; returns the registered claims by id in the ledger's order (the order
    of :data:`CLAIM_MODULES`, then of registration), whichever module was imported first."""
    from .ledger import CLAIMS

    for name in CLAIM_MODULES:
        importlib.import_module(name)
    rank = {name: i for i, name in enumerate(CLAIM_MODULES)}
    order = sorted(enumerate(CLAIMS.values()), key=lambda ic: (rank.get(ic[1].run.__module__, len(rank)), ic[0]))
    return {c.id: c for _, c in order}
