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

from hub.db import bulk_upsert, one_of, select_ids
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
_order: sa.Table = Order.__table__  # type: ignore[attr-defined]
_order_line: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]
_FALSE_WHEN_MISSING = ("is_return", "is_accessory")  # NOT NULL flags: a missing one is false
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
            bucket = by_entity.get(entity)
            if bucket is None:
                bucket = by_entity[entity] = []
            if len(rows) == 1:
                bucket.append((i, rows[0]))
            else:
                bucket.extend([(i, row) for row in rows])

    for entity in ("store", "product", "product_relation", "order", "cart", "event"):
        items = by_entity.get(entity)
        if items:
            result.rows[entity] = _upsert_entity(conn, entity, items, customer_ids, source=source, now=now)
    if lines := by_entity.get("order_line"):
        result.rows["order_line"], order_ids = _upsert_lines(conn, lines, source=source, result=result)
        _total_orders_from_lines(conn, by_entity.get("order", []), order_ids, source=source)
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
    # The same key may repeat inside a batch (one POS row per receipt line): the last one wins, as in the
    # source, at the position of the first. ``source`` is the same for every row, so it is left out of the key.
    fields = [k for k in key if k != "source"]
    latest: dict[Any, tuple[int, dict[str, Any]]] = {}
    if len(fields) == 1:
        (name,) = fields
        for item in items:
            latest[item[1].get(name)] = item
    else:
        for item in items:
            latest[tuple(map(item[1].get, fields))] = item
    # Rows are built as tuples straight from the mapped dicts: the loader's own columns go last.
    injected = {"source": source, "loaded_at": now}
    own = [c for c in ("source", "loaded_at") if c in columns]
    with_customer = entity in _WITH_CUSTOMER
    flags = [c for c in _FALSE_WHEN_MISSING if c in columns]
    plain = [c for c in columns if c not in own and c not in flags and c != "customer_id"]
    tail = tuple(injected[c] for c in own)
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    for i, row in latest.values():
        get = row.get
        built = (*map(get, plain), customer_ids[i]) if with_customer else tuple(map(get, plain))
        for flag in flags:
            value = get(flag)
            built = (*built, False if value is None else value)
        append(built + tail)
    names = [*plain, *(["customer_id"] if with_customer else []), *flags, *own]
    update = [c for c in names if c not in key]
    bulk_upsert(conn, table, rows, names, conflict=key, update=update, where_changed=True)
    return len(rows)


def _upsert_lines(
    conn: sa.Connection, items: list[tuple[int, dict[str, Any]]], *, source: str, result: LoadResult
) -> tuple[int, dict[str, int]]:
    """Upsert order lines under their orders' ids; returns the count and the ids (external id -> order id)."""
    externals = {row["order_external_id"] for _, row in items}
    found = select_ids(conn, _order, ("source", "external_id"), [(source, external) for external in externals])
    ids = {key[1]: order_id for key, order_id in found.items()}
    latest: dict[tuple[int, int], tuple[Any, ...]] = {}
    for i, row in items:
        external = row["order_external_id"]
        order_id = ids.get(external)
        if order_id is None:
            result.rejected.setdefault(i, []).append(f"order_line: order {external!r} of {source!r} is not loaded")
            continue
        get = row.get
        quantity: Decimal = row["quantity"]
        unit_price = get("unit_price")
        discount = get("discount")
        line_total = get("line_total")
        if line_total is None and unit_price is not None:
            line_total = quantity * unit_price - (discount or 0)
        line_no = row["line_no"]
        latest[(order_id, line_no)] = (order_id, line_no, get("sku"), quantity, unit_price, discount, line_total)
    bulk_upsert(
        conn,
        _order_line,
        list(latest.values()),
        _LINE_COLUMNS,
        conflict=("order_id", "line_no"),
        where_changed=True,
    )
    return len(latest), ids


def _total_orders_from_lines(
    conn: sa.Connection, orders: list[tuple[int, dict[str, Any]]], ids: dict[str, int], *, source: str
) -> None:
    """Orders whose source gave no total (a POS receipt is just its lines) get the sum of their lines.

    ``ids`` holds the order ids the lines were loaded under; an order without lines in this batch is looked up.
    """
    missing = {row["external_id"] for _, row in orders if row.get("total") is None}
    if not missing:
        return
    order_ids = [ids[external] for external in missing if external in ids]
    unknown = [(source, external) for external in missing if external not in ids]
    if unknown:
        order_ids.extend(select_ids(conn, _order, ("source", "external_id"), unknown).values())
    line_sum = (
        sa.select(sa.func.coalesce(sa.func.sum(_order_line.c.line_total), 0))
        .where(_order_line.c.order_id == _order.c.id)
        .scalar_subquery()
    )
    conn.execute(_order.update().where(one_of(conn, _order.c.id, sorted(order_ids))).values(total=line_sum))
