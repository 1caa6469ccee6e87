"""Load: unified rows of one batch into the model with set-based upserts, in the caller's transaction.

Every statement is an ``INSERT ... ON CONFLICT`` over the batch (through :func:`hub.db.bulk_upsert`), so loading
the same batch twice changes nothing: that is what makes crash-resume and re-runs safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from hub.db import bulk_upsert, select_ids
from hub.engine.consent import apply_consents
from hub.models import Cart, Event, Order, OrderLine, Product, ProductRelation, Store
from hub.records import Mapped

#: entity -> (table, natural key columns, whether the key includes the source connector)
_KEYED: dict[str, tuple[sa.Table, tuple[str, ...]]] = {
    "store": (Store.__table__, ("external_id",)),  # type: ignore[attr-defined]
    "product": (Product.__table__, ("sku",)),  # type: ignore[attr-defined]
    "product_relation": (ProductRelation.__table__, ("sku", "related_sku", "kind")),  # type: ignore[attr-defined]
    "order": (Order.__table__, ("source", "external_id")),  # type: ignore[attr-defined]
    "cart": (Cart.__table__, ("source", "external_id")),  # type: ignore[attr-defined]
    "event": (Event.__table__, ("source", "external_id")),  # type: ignore[attr-defined]
}
_WITH_CUSTOMER = {"order", "cart", "event"}
_LINE_COLUMNS = ("order_id", "line_no", "sku", "quantity", "unit_price", "discount", "line_total")


@dataclass(slots=True)
class LoadResult:
    """Counts per entity, and records that failed at load time (index -> reasons), e.g. a line without its order."""

    rows: dict[str, int] = field(default_factory=dict)
    rejected: dict[int, list[str]] = field(default_factory=dict)


def load_batch(
    conn: sa.Connection,
    mapped: Sequence[Mapped],
    customer_ids: Sequence[int | None],
    *,
    source: str,
    now: datetime,
    skip: set[int] | frozenset[int] = frozenset(),
) -> LoadResult:
    """Upsert every row of ``mapped`` (skipping indexes in ``skip``), attaching rows to their resolved customer."""
    result = LoadResult()
    by_entity: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for i, record in enumerate(mapped):
        if i in skip:
            continue
        for entity, rows in record.rows.items():
            if entity == "customer":
                continue
            bucket = by_entity.setdefault(entity, [])
            bucket.extend((i, row) for row in rows)

    for entity in ("store", "product", "product_relation", "order", "cart", "event"):
        items = by_entity.get(entity)
        if items:
            result.rows[entity] = _upsert_entity(conn, entity, items, customer_ids, source=source, now=now)
    if lines := by_entity.get("order_line"):
        result.rows["order_line"] = _upsert_lines(conn, lines, source=source, result=result)
        _total_orders_from_lines(conn, by_entity.get("order", []), source=source)
    if consents := by_entity.get("consent"):
        # A consent on an anonymous record (a guest checkout) has nobody to belong to: it is not kept.
        owners = [i for i, _ in consents if customer_ids[i] is not None]
        attached = [(customer_ids[i], row) for i, row in consents if customer_ids[i] is not None]
        if attached:
            stats = apply_consents(conn, attached, source=source, now=now)  # type: ignore[arg-type]
            for index, reasons in stats.rejected.items():
                result.rejected.setdefault(owners[index], []).extend(reasons)
        result.rows["consent"] = len(attached)
    return result


def _upsert_entity(
    conn: sa.Connection,
    entity: str,
    items: list[tuple[int, dict[str, Any]]],
    customer_ids: Sequence[int | None],
    *,
    source: str,
    now: datetime,
) -> int:
    table, key = _KEYED[entity]
    columns = [c.name for c in table.columns if c.name != "id"]
    has_source = "source" in columns
    has_loaded_at = "loaded_at" in columns
    latest: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for i, row in items:
        values = dict(row)
        if has_source:
            values["source"] = source
        if has_loaded_at:
            values["loaded_at"] = now
        if entity in _WITH_CUSTOMER:
            values["customer_id"] = customer_ids[i]
        for name in ("is_return", "is_accessory"):
            if name in columns and values.get(name) is None:
                values[name] = False
        # The same key may repeat inside a batch (one POS row per receipt line): the last one wins, as in the source.
        latest[tuple(values.get(k) for k in key)] = tuple(values.get(c) for c in columns)
    update = [c for c in columns if c not in key]
    bulk_upsert(conn, table, list(latest.values()), columns, conflict=key, update=update, where_changed=True)
    return len(latest)


def _upsert_lines(
    conn: sa.Connection, items: list[tuple[int, dict[str, Any]]], *, source: str, result: LoadResult
) -> int:
    order_keys = {(source, row["order_external_id"]) for _, row in items}
    ids = select_ids(conn, Order.__table__, ("source", "external_id"), order_keys)  # type: ignore[attr-defined]
    latest: dict[tuple[int, int], tuple[Any, ...]] = {}
    for i, row in items:
        order_id = ids.get((source, row["order_external_id"]))
        if order_id is None:
            result.rejected.setdefault(i, []).append(
                f"order_line: order {row['order_external_id']!r} of {source!r} is not loaded"
            )
            continue
        quantity: Decimal = row["quantity"]
        line_total = row.get("line_total")
        if line_total is None and row.get("unit_price") is not None:
            line_total = quantity * row["unit_price"] - (row.get("discount") or 0)
        latest[(order_id, row["line_no"])] = (
            order_id,
            row["line_no"],
            row.get("sku"),
            quantity,
            row.get("unit_price"),
            row.get("discount"),
            line_total,
        )
    table = OrderLine.__table__  # type: ignore[attr-defined]
    bulk_upsert(
        conn,
        table,
        list(latest.values()),
        _LINE_COLUMNS,
        conflict=("order_id", "line_no"),
        where_changed=True,
    )
    return len(latest)


def _total_orders_from_lines(conn: sa.Connection, orders: list[tuple[int, dict[str, Any]]], *, source: str) -> None:
    """Orders whose source gave no total (a POS receipt is just its lines) get the sum of their lines."""
    missing = sorted({row["external_id"] for _, row in orders if row.get("total") is None})
    if not missing:
        return
    order = Order.__table__  # type: ignore[attr-defined]
    line = OrderLine.__table__  # type: ignore[attr-defined]
    line_sum = (
        sa.select(sa.func.coalesce(sa.func.sum(line.c.line_total), 0))
        .where(line.c.order_id == order.c.id)
        .scalar_subquery()
    )
    for start in range(0, len(missing), 500):
        chunk = missing[start : start + 500]
        conn.execute(
            order.update().where(order.c.source == source, order.c.external_id.in_(chunk)).values(total=line_sum)
        )
