"""Views: what change detection hands to ``Destination.prepare``, built set-based for a batch of ids at a time.

Each builder takes a connection and a batch of ids and runs one query per table for the whole batch (never one
per record), so a pass over a million customers costs a few thousand statements. Every value is JSON-ready:
datetimes as ISO 8601 in UTC with their offset, dates ``YYYY-MM-DD``, Decimals as strings.

The customer view is the input of an outbound mapping (:mod:`hub.delivery.outbound`)::

    {"customer": {"id": 12, "email": ..., "birth_date": "1980-05-01", ...},
     "identities": {"email": [...], "phone": [...], "member_no": [...], "external_id": {"erp": "K1"}},
     "consents": {"email": {"status": "opt_in", "at": "...", "source": "erp", "evidence": ...}}}

``_hub`` is the reserved block of customer keys added to every payload, so a plugin can look a contact up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from hub.db import one_of
from hub.models import Consent, Customer, Identity, Order, OrderLine, Product

__all__ = [
    "CONSENT_CHANNELS",
    "CONSENT_FIELDS",
    "CUSTOMER_FIELDS",
    "IDENTITY_LISTS",
    "contact_delete_view",
    "customer_views",
    "hub_keys",
    "jsonable",
    "order_views",
    "survivors",
]

_customer: sa.Table = Customer.__table__  # type: ignore[attr-defined]
_identity: sa.Table = Identity.__table__  # type: ignore[attr-defined]
_consent: sa.Table = Consent.__table__  # type: ignore[attr-defined]
_order: sa.Table = Order.__table__  # type: ignore[attr-defined]
_line: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]
_product: sa.Table = Product.__table__  # type: ignore[attr-defined]

#: The customer columns a view shows; survivorship bookkeeping (source, rank, merged_into) stays inside hub.
CUSTOMER_FIELDS: tuple[str, ...] = (
    "id",
    "email",
    "phone",
    "member_no",
    "first_name",
    "last_name",
    "birth_date",
    "gender",
    "street",
    "postcode",
    "city",
    "country",
    "language",
    "company_name",
    "is_b2b",
    "created_at",
    "updated_at",
)
#: Identity kinds shown as lists of values (oldest first); ``external_id`` is shown per system instead.
IDENTITY_LISTS: tuple[str, ...] = ("email", "phone", "member_no")
CONSENT_CHANNELS: tuple[str, ...] = ("email", "sms", "post", "phone")
CONSENT_FIELDS: tuple[str, ...] = ("status", "at", "source", "evidence")
ORDER_FIELDS: tuple[str, ...] = (
    "id",
    "source",
    "external_id",
    "placed_at",
    "channel",
    "store_external_id",
    "currency",
    "total",
    "status",
    "is_return",
    "original_order_external_id",
)
LINE_FIELDS: tuple[str, ...] = ("line_no", "sku", "quantity", "unit_price", "discount", "line_total")


def jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data: ISO text for dates and times (UTC for aware datetimes), text for Decimals,
    None for non-finite floats, lists for tuples and sets; anything else unknown becomes its text."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo is not None else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


def customer_views(conn: sa.Connection, customer_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The view of each customer in ``customer_ids`` that exists: three queries (customer, identity, consent)."""
    if not customer_ids:
        return {}
    ids = sorted(set(customer_ids))
    views: dict[int, dict[str, Any]] = {}
    columns = [_customer.c[name] for name in CUSTOMER_FIELDS]
    for row in conn.execute(sa.select(*columns).where(one_of(conn, _customer.c.id, ids))):
        views[row[0]] = {
            "customer": {name: jsonable(value) for name, value in zip(CUSTOMER_FIELDS, row, strict=True)},
            "identities": {**{kind: [] for kind in IDENTITY_LISTS}, "external_id": {}},
            "consents": {},
        }
    identities = (
        sa.select(_identity.c.customer_id, _identity.c.kind, _identity.c.system, _identity.c.value)
        .where(one_of(conn, _identity.c.customer_id, ids))
        .order_by(_identity.c.customer_id, _identity.c.first_seen_at, _identity.c.id)
    )
    for customer_id, kind, system, value in conn.execute(identities):
        view = views.get(customer_id)
        if view is None:
            continue
        found = view["identities"]
        if kind == "external_id":
            found["external_id"].setdefault(system, value)  # the first one a system gave
        elif kind in found:
            found[kind].append(value)
    consents = sa.select(
        _consent.c.customer_id, _consent.c.channel, *(_consent.c[name] for name in CONSENT_FIELDS)
    ).where(one_of(conn, _consent.c.customer_id, ids))
    for customer_id, channel, *values in conn.execute(consents):
        if customer_id in views:
            views[customer_id]["consents"][channel] = {
                name: jsonable(value) for name, value in zip(CONSENT_FIELDS, values, strict=True)
            }
    return views


def hub_keys(view: Mapping[str, Any]) -> dict[str, Any]:
    """The reserved ``_hub`` block of a customer view: the keys a plugin looks a contact up by."""
    customer = view["customer"]
    return {
        "customer_id": customer["id"],
        "email": customer.get("email"),
        "phone": customer.get("phone"),
        "member_no": customer.get("member_no"),
        "external_ids": dict(view["identities"]["external_id"]),
    }


def contact_delete_view(
    view: Mapping[str, Any], *, merged_into: int | None, remote_id: str | None = None
) -> dict[str, Any]:
    """The ``contact_delete`` view of a customer merged away: its own keys, its survivor and the remote id the
    destination gave it (the plugin should delete by that id: the survivor may share the other keys)."""
    return {"_hub": {**hub_keys(view), "merged_into": merged_into, "remote_id": remote_id}}


def survivors(conn: sa.Connection, customer_ids: Iterable[int]) -> dict[int, int]:
    """customer id -> the live customer it is (itself, or the one it was merged into); one query.

    Merge chains are kept flat by the resolver, so one hop is enough.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return {}
    query = sa.select(_customer.c.id, _customer.c.merged_into).where(one_of(conn, _customer.c.id, ids))
    return {customer_id: into if into is not None else customer_id for customer_id, into in conn.execute(query)}


def order_views(conn: sa.Connection, order_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The ``order`` view of each order in ``order_ids``: the order, its lines with product name and group, and
    the ``_hub`` keys of its surviving customer (``_hub`` is None for an anonymous order). Five queries."""
    if not order_ids:
        return {}
    ids = sorted(set(order_ids))
    columns = [_order.c[name] for name in ORDER_FIELDS]
    orders: dict[int, dict[str, Any]] = {}
    owners: dict[int, int | None] = {}
    query = sa.select(*columns, _order.c.customer_id).where(one_of(conn, _order.c.id, ids))
    for *values, customer_id in conn.execute(query):
        order = {name: jsonable(value) for name, value in zip(ORDER_FIELDS, values, strict=True)}
        orders[order["id"]] = {"order": order, "lines": [], "_hub": None}
        owners[order["id"]] = customer_id
    lines = (
        sa.select(
            _line.c.order_id,
            *(_line.c[name] for name in LINE_FIELDS),
            _product.c.name,
            _product.c.product_group,
        )
        .select_from(_line.outerjoin(_product, _product.c.sku == _line.c.sku))
        .where(one_of(conn, _line.c.order_id, ids))
        .order_by(_line.c.order_id, _line.c.line_no)
    )
    for order_id, *values, name, group in conn.execute(lines):
        line = {field: jsonable(value) for field, value in zip(LINE_FIELDS, values, strict=True)}
        line["product_name"], line["product_group"] = name, group
        orders[order_id]["lines"].append(line)
    live = survivors(conn, [c for c in owners.values() if c is not None])
    views = customer_views(conn, sorted(set(live.values())))
    for order_id, customer_id in owners.items():
        if customer_id is None:
            continue
        view = views.get(live.get(customer_id, customer_id))
        if view is not None:
            orders[order_id]["_hub"] = hub_keys(view)
    return orders
