"""Load: unified rows of one batch into the model with set-based upserts, in the caller's transaction.

Every statement is an ``INSERT ... ON CONFLICT`` over the batch (through :func:`hub.db.bulk_upsert`), so loading
the same batch twice changes nothing: that is what makes crash-resume and re-runs safe.

A mapping block with ``replace: true`` (an ``each`` block whose list is the whole set, e.g. a product's
associations) also deletes, after the upserts, the rows of its entity that this connector loaded for the record's
``$.``-read key fields and that the record no longer emits (:func:`_replace`): two statements per entity and batch.

An upsert writes every column of the entity's table, ``product.deleted_at`` included, which no mapping sets: a
product a source reported deleted (:mod:`hub.engine.deletions`) is no longer deleted once a source loads it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from hub.db import bulk_upsert, one_of, select_ids
from hub.engine.consent import apply_consents
from hub.models import Cart, Event, Order, OrderLine, Product, ProductRelation, Store, WishlistItem
from hub.records import Mapped

#: entity -> (table, natural key columns, whether the key includes the source connector)
_KEYED: dict[str, tuple[sa.Table, tuple[str, ...]]] = {
    "store": (Store.__table__, ("external_id",)),  # type: ignore[attr-defined]
    "product": (Product.__table__, ("sku",)),  # type: ignore[attr-defined]
    "product_relation": (ProductRelation.__table__, ("sku", "related_sku", "kind")),  # type: ignore[attr-defined]
    "order": (Order.__table__, ("source", "external_id")),  # type: ignore[attr-defined]
    "cart": (Cart.__table__, ("source", "external_id")),  # type: ignore[attr-defined]
    "event": (Event.__table__, ("source", "external_id")),  # type: ignore[attr-defined]
    "wishlist_item": (WishlistItem.__table__, ("source", "external_id")),  # type: ignore[attr-defined]
}
_WITH_CUSTOMER = {"order", "cart", "event", "wishlist_item"}


def replace_keys(entity: str) -> tuple[str, ...] | None:
    """The natural key fields (without the connector) of an entity whose rows a ``replace: true`` block may delete:
    keyed entities whose table records the connector that loaded a row (``source``); None for the others."""
    keyed = _KEYED.get(entity)
    if keyed is None or "source" not in keyed[0].c:
        return None
    return tuple(name for name in keyed[1] if name != "source")


_order: sa.Table = Order.__table__  # type: ignore[attr-defined]
_order_line: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]
_FALSE_WHEN_MISSING = ("is_return", "is_accessory")  # NOT NULL flags: a missing one is false
_LINE_COLUMNS = ("order_id", "line_no", "sku", "quantity", "unit_price", "discount", "line_total")


@dataclass(slots=True)
class LoadResult:
    """Counts per entity, and records that failed at load time (index -> reasons), e.g. a line without its order."""

    rows: dict[str, int] = field(default_factory=dict)
    rejected: dict[int, list[str]] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)  # rows deleted by ``replace: true`` blocks, by entity


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

    _record_product_events(conn, by_entity, source=source, now=now)
    for entity in ("store", "product", "product_relation", "order", "cart", "event", "wishlist_item"):
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
    _replace(conn, mapped, {*skip, *result.rejected}, source=source, result=result)
    return result


def _replace(
    conn: sa.Connection, mapped: Sequence[Mapped], skip: AbstractSet[int], *, source: str, result: LoadResult
) -> None:
    """Delete what ``replace: true`` blocks no longer emit: for each scope a record of the batch names (an entity,
    its ``$.``-read key fields and their values), this connector's rows of the entity with those values whose
    natural key the record does not emit. A record rejected anywhere (``skip``) names no scope; when several
    records name the same scope, the last one's rows are the set, as its upserts won too.

    Per entity and set of scope fields: one SELECT of this connector's rows under the scopes' first field, and one
    DELETE by id of those to drop (an unchanged list deletes nothing and costs the SELECT alone).
    """
    # (entity, scope fields) -> scope values -> the natural keys the scope keeps
    kept: dict[tuple[str, tuple[str, ...]], dict[tuple[Any, ...], set[tuple[Any, ...]]]] = {}
    for i, record in enumerate(mapped):
        scopes = getattr(record, "replaces", None)  # a hub.mapping.ReplacingMapped
        if not scopes or i in skip:
            continue
        for entity, fields, values in scopes:
            names = replace_keys(entity)
            assert names is not None, entity  # checked when the mapping compiled
            emitted = {
                tuple(map(row.get, names))
                for row in record.rows.get(entity, ())
                if tuple(map(row.get, fields)) == values
            }
            kept.setdefault((entity, fields), {})[values] = emitted
    for (entity, fields), scopes in kept.items():
        table, _ = _KEYED[entity]
        names = replace_keys(entity)
        assert names is not None
        columns = [table.c[name] for name in names]
        at = [names.index(name) for name in fields]
        query = sa.select(table.c.id, *columns).where(
            table.c.source == source, one_of(conn, table.c[fields[0]], sorted({values[0] for values in scopes}))
        )
        doomed = []
        for row_id, *key in conn.execute(query):
            keys = scopes.get(tuple(key[n] for n in at))
            if keys is not None and tuple(key) not in keys:
                doomed.append(row_id)
        if doomed:
            conn.execute(table.delete().where(one_of(conn, table.c.id, sorted(doomed))))
        result.removed[entity] = result.removed.get(entity, 0) + len(doomed)


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


def _record_product_events(
    conn: sa.Connection, by_entity: dict[str, list[tuple[int, dict[str, Any]]]], *, source: str, now: datetime
) -> None:
    """Record a ``product_event`` for each stock or price change of this batch, before its products are written.

    A product row is compared with the stored product (a new product, or a first known value, is no change). A
    row that gives no ``stock`` or ``in_stock`` keeps the stored value (it is put into the row), since stock often
    comes from another stream than the catalogue. A ``stock_level`` event (payload ``sku``, ``available``, maybe
    ``in_stock``) or ``price`` event (``sku``, ``price``) of a known product changes it as a row would, unless it
    is no newer than the last change recorded for the product. Two reads, one insert and one update per batch.
    """
    from hub.models.product_events import PLACES, PRICE, STOCK, ProductEvent, availability

    product: sa.Table = Product.__table__  # type: ignore[attr-defined]
    product_event: sa.Table = ProductEvent.__table__  # type: ignore[attr-defined]
    products = by_entity.get("product", [])
    events = sorted(
        (
            (row["at"], i, str(row["payload_json"]["sku"]), row)
            for i, row in by_entity.get("event", [])
            if row.get("type") in ("stock_level", "price")
            and isinstance(row.get("payload_json"), dict)
            and row["payload_json"].get("sku") not in (None, "")
        ),
        key=lambda event: event[:2],
    )
    if not products and not events:
        return

    def number(value: Any) -> Decimal | None:
        try:
            parsed = Decimal(str(value)) if value is not None and not isinstance(value, bool) else None
        except ArithmeticError:
            return None
        return parsed if parsed is not None and parsed.is_finite() else None

    skus = sorted({row["sku"] for _, row in products} | {sku for _, _, sku, _ in events})
    query = sa.select(product.c.sku, product.c.price, product.c.stock, product.c.in_stock)
    current = {
        sku: {"price": price, "stock": stock, "in_stock": in_stock}
        for sku, price, stock, in_stock in conn.execute(query.where(one_of(conn, product.c.sku, skus)))
    }
    recorded: dict[tuple[str, str], datetime] = {}
    if events:
        last = sa.select(product_event.c.sku, product_event.c.kind, sa.func.max(product_event.c.at)).where(
            one_of(conn, product_event.c.sku, sorted({sku for _, _, sku, _ in events}))
        )
        last = last.group_by(product_event.c.sku, product_event.c.kind)
        recorded = {(sku, kind): at for sku, kind, at in conn.execute(last)}
    changes: list[dict[str, Any]] = []

    def differs(old: dict[str, Any], new: dict[str, Any], name: str) -> bool:
        """Both known and different, amounts as stored (four places): a first value is no change."""
        a, b = old[name], new[name]
        if a is None or b is None:
            return False
        if isinstance(a, Decimal) and isinstance(b, Decimal):
            return bool(a.quantize(PLACES) != b.quantize(PLACES))
        return bool(a != b)

    def change(sku: str, new: dict[str, Any], at: datetime) -> None:
        old = current.get(sku)
        current[sku] = new
        if old is None:
            return
        common = {"sku": sku, "at": at, "source": source, "loaded_at": now}
        if differs(old, new, "price"):
            prices = {"old_value": old["price"], "new_value": new["price"], "was_available": None, "available": None}
            changes.append({**common, "kind": PRICE, **prices})
        if differs(old, new, "stock") or differs(old, new, "in_stock"):
            stocks = {"old_value": old["stock"], "new_value": new["stock"]}
            was, is_ = availability(old["stock"], old["in_stock"]), availability(new["stock"], new["in_stock"])
            changes.append({**common, "kind": STOCK, **stocks, "was_available": was, "available": is_})

    rows_of: dict[str, list[int]] = {}
    for n, (i, row) in enumerate(products):
        stored = current.get(row["sku"])
        kept = {} if stored is None else {k: stored[k] for k in ("stock", "in_stock") if row.get(k) is None}
        if kept:
            row = {**row, **kept}
            products[n] = (i, row)
        rows_of.setdefault(row["sku"], []).append(n)
        values = {"price": row.get("price"), "stock": row.get("stock"), "in_stock": row.get("in_stock")}
        change(row["sku"], values, row.get("updated_at") or now)
    touched: set[str] = set()
    for at, _, sku, row in events:
        kind = STOCK if row["type"] == "stock_level" else PRICE
        old = current.get(sku)
        if old is None or ((sku, kind) in recorded and at <= recorded[sku, kind]):
            continue
        payload = row["payload_json"]
        new = dict(old)
        given = (
            {"price": number(payload.get("price"))}
            if kind == PRICE
            else {
                "stock": number(payload.get("available", payload.get("quantity"))),
                "in_stock": payload.get("in_stock") if isinstance(payload.get("in_stock"), bool) else None,
            }
        )
        new.update({name: value for name, value in given.items() if value is not None})
        change(sku, new, at)
        touched.add(sku)
    updates = []
    for sku in sorted(touched):
        for n in rows_of.get(sku, ()):
            i, row = products[n]
            products[n] = (i, {**row, **current[sku]})
        if sku not in rows_of:
            updates.append({"_sku": sku, **{f"_{name}": value for name, value in current[sku].items()}})
    if updates:
        values = {name: sa.bindparam(f"_{name}") for name in ("price", "stock", "in_stock")}
        conn.execute(product.update().where(product.c.sku == sa.bindparam("_sku")).values(values), updates)
    if changes:
        conn.execute(product_event.insert(), changes)


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
