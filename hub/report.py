"""Read-only views of the database for the CLI: status, run summaries, rejects. No writes here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from hub.engine.rejects import top_reasons
from hub.models import Customer, CustomerMerge, Identity, Reject, SyncRun, SyncState

_customer = Customer.__table__  # type: ignore[attr-defined]
_identity = Identity.__table__  # type: ignore[attr-defined]
_merge = CustomerMerge.__table__  # type: ignore[attr-defined]
_reject = Reject.__table__  # type: ignore[attr-defined]
_run = SyncRun.__table__  # type: ignore[attr-defined]
_state = SyncState.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class ModelCounts:
    customers: int
    merged_away: int
    identities: int
    merges: int
    rejects: int
    tables: dict[str, int]


def model_counts(conn: sa.Connection) -> ModelCounts:
    tables = {}
    for name in ("orders", "order_line", "product", "product_relation", "store", "consent", "cart", "event"):
        tables[name] = conn.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar_one()
    return ModelCounts(
        customers=conn.execute(
            sa.select(sa.func.count()).select_from(_customer).where(_customer.c.merged_into.is_(None))
        ).scalar_one(),
        merged_away=conn.execute(
            sa.select(sa.func.count()).select_from(_customer).where(_customer.c.merged_into.is_not(None))
        ).scalar_one(),
        identities=conn.execute(sa.select(sa.func.count()).select_from(_identity)).scalar_one(),
        merges=conn.execute(sa.select(sa.func.count()).select_from(_merge)).scalar_one(),
        rejects=conn.execute(sa.select(sa.func.count()).select_from(_reject)).scalar_one(),
        tables=tables,
    )


def reject_reasons(conn: sa.Connection, *, run_ids: list[int] | None = None, n: int = 5) -> list[tuple[str, int]]:
    query = sa.select(_reject.c.errors)
    if run_ids is not None:
        query = query.where(_reject.c.run_id.in_(run_ids))
    return top_reasons((row[0] for row in conn.execute(query)), n)


def last_runs(conn: sa.Connection, limit: int = 20) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(_run).order_by(_run.c.id.desc()).limit(limit)).mappings()
    return [dict(r) for r in rows]


def states(conn: sa.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(_state).order_by(_state.c.connector, _state.c.stream)).mappings()
    return [dict(r) for r in rows]


def rejects(
    conn: sa.Connection, *, connector: str | None = None, stream: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    query = sa.select(_reject).order_by(_reject.c.id.desc()).limit(limit)
    if connector:
        query = query.where(_reject.c.connector == connector)
    if stream:
        query = query.where(_reject.c.stream == stream)
    return [dict(r) for r in conn.execute(query).mappings()]


def reject(conn: sa.Connection, reject_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(_reject).where(_reject.c.id == reject_id)).mappings().first()
    return dict(row) if row else None
