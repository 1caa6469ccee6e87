"""A/B/n variants: a stable hash of (experiment, customer) picks the variant, and the pick is stored.

The hash makes the first assignment reproducible (the same customer lands in the same variant on any machine and
in any run), and storing it in ``variant_assignment`` keeps it when the weights change later: an experiment's
reader must be able to trust that a customer never moved between arms. Only an assignment whose variant is no
longer configured is drawn again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime

import sqlalchemy as sa

from hub.db import bulk_upsert, one_of
from hub.models import VariantAssignment

__all__ = ["assign_variants", "pick_variant"]

_assignment: sa.Table = VariantAssignment.__table__  # type: ignore[attr-defined]
_SCALE = 2**64


def pick_variant(experiment: str, customer_id: int, weights: Mapping[str, int]) -> str:
    """The variant the hash gives ``customer_id`` in ``experiment``: sha256 into [0, 1), then the cumulative
    weights in variant-name order (so reordering the YAML does not move anyone)."""
    if not weights:
        raise ValueError("an experiment needs at least one variant")
    if any(weight <= 0 for weight in weights.values()):
        raise ValueError("variant weights must be above 0")
    digest = hashlib.sha256(f"{experiment}:{customer_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / _SCALE * sum(weights.values())
    names = sorted(weights)
    cumulative = 0
    for name in names:
        cumulative += weights[name]
        if point < cumulative:
            return name
    return names[-1]


def assign_variants(
    conn: sa.Connection,
    experiment: str,
    customer_ids: Iterable[int],
    weights: Mapping[str, int],
    now: datetime,
) -> dict[int, str]:
    """customer id -> variant in ``experiment``: the stored assignment where one exists (and its variant is still
    configured), else a new one by :func:`pick_variant`, stored. Two queries and one write per call."""
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    query = sa.select(_assignment.c.customer_id, _assignment.c.variant).where(
        _assignment.c.experiment == experiment, one_of(conn, _assignment.c.customer_id, ids)
    )
    stored = {customer_id: variant for customer_id, variant in conn.execute(query)}
    result = {customer_id: variant for customer_id, variant in stored.items() if variant in weights}
    new = [(experiment, c, pick_variant(experiment, c, weights), now) for c in ids if c not in result]
    if new:
        # A stored variant that was removed from the config is replaced; any other stored row is left alone.
        bulk_upsert(
            conn,
            _assignment,
            new,
            ("experiment", "customer_id", "variant", "assigned_at"),
            conflict=("experiment", "customer_id"),
        )
        result.update((customer_id, variant) for _, customer_id, variant, _ in new)
    return result
