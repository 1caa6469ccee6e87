"""What a trigger's message carries to the ESP: the customer, the order, cart or product, recommended accessories.

Recommendations from a recommender connector or the built-in one are a block of their own, built by
:mod:`hub.recommend.blocks`.

The loaders take a whole batch of ids and run one query per table (never one per candidate); the builder then
assembles each payload in Python from what they returned. Every value is JSON-safe: ISO 8601 text for times,
floats for amounts and quantities (an ESP template formats numbers, it does not parse Decimal strings).

Accessories come from ``product_relation`` rows of kind ``accessory`` whose ``sku`` is a main product of the order
(or cart) in the trigger's matched groups. Products the customer already bought, or has in the cart, are left
out; the rest are ranked by popularity (order lines sold, returns not counted), then by the relation's order.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Hashable, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa

from hub.db import one_of
from hub.delivery.views import jsonable
from hub.models import Cart, Customer, Order, OrderLine, Product, ProductRelation

__all__ = [
    "CLOSED_CART_STATUSES",
    "CUSTOMER_ATTRIBUTES",
    "CUSTOMER_FIELDS",
    "build_payload",
    "cart_items",
    "customer_block",
    "load_carts",
    "load_orders",
    "recommend_accessories",
    "to_json",
]

_customer: sa.Table = Customer.__table__  # type: ignore[attr-defined]
_order: sa.Table = Order.__table__  # type: ignore[attr-defined]
_line: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]
_product: sa.Table = Product.__table__  # type: ignore[attr-defined]
_relation: sa.Table = ProductRelation.__table__  # type: ignore[attr-defined]
_cart: sa.Table = Cart.__table__  # type: ignore[attr-defined]

#: A cart in one of these states became an order (or was closed): it is not abandoned.
CLOSED_CART_STATUSES = ("converted", "ordered", "completed")
#: Customer view fields a message may use to greet and address the customer.
CUSTOMER_FIELDS: tuple[str, ...] = (
    "id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "member_no",
    "birth_date",
    "city",
    "country",
    "language",
)
#: Computed attributes worth personalising on (tier greetings, "your favourite store").
CUSTOMER_ATTRIBUTES: tuple[str, ...] = (
    "tier",
    "rfm_segment",
    "orders_lifetime",
    "monetary_lifetime",
    "avg_order_value",
    "first_order_at",
    "last_order_at",
    "favourite_store",
    "favourite_channel",
    "age",
)

K = TypeVar("K", bound=Hashable)


def to_json(value: Any) -> Any:
    """JSON-safe data for a payload: like :func:`hub.delivery.views.jsonable`, but amounts as floats."""
    if isinstance(value, Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    return jsonable(value)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _products(conn: sa.Connection, skus: Iterable[str]) -> dict[str, dict[str, Any]]:
    """sku -> name, product_group, brand, price, is_accessory: one query."""
    wanted = sorted({sku for sku in skus if sku})
    if not wanted:
        return {}
    query = sa.select(
        _product.c.sku,
        _product.c.name,
        _product.c.product_group,
        _product.c.brand,
        _product.c.price,
        _product.c.is_accessory,
    ).where(one_of(conn, _product.c.sku, wanted))
    return {
        sku: {"name": name, "product_group": group, "brand": brand, "price": price, "is_accessory": bool(accessory)}
        for sku, name, group, brand, price, accessory in conn.execute(query)
    }


def load_orders(conn: sa.Connection, order_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """order id -> the order's payload block, with ``customer_id`` and each line's ``is_accessory`` for the
    caller (not sent). Orders that no longer exist are absent. Two queries."""
    ids = sorted(set(order_ids))
    if not ids:
        return {}
    query = sa.select(
        _order.c.id,
        _order.c.external_id,
        _order.c.customer_id,
        _order.c.placed_at,
        _order.c.total,
        _order.c.currency,
        _order.c.store_external_id,
        _order.c.channel,
        _order.c.campaign,
        _order.c.is_return,
    ).where(one_of(conn, _order.c.id, ids))
    orders: dict[int, dict[str, Any]] = {}
    for row in conn.execute(query):
        orders[row.id] = {
            "id": row.id,
            "external_id": row.external_id,
            "customer_id": row.customer_id,
            "placed_at": row.placed_at,
            "total": _number(row.total),
            "currency": row.currency,
            "store": row.store_external_id,
            "channel": row.channel,
            "campaign": row.campaign,
            "is_return": bool(row.is_return),
            "lines": [],
        }
    lines = (
        sa.select(
            _line.c.order_id,
            _line.c.sku,
            _line.c.quantity,
            _line.c.unit_price,
            _line.c.line_total,
            _product.c.name,
            _product.c.product_group,
            _product.c.brand,
            _product.c.is_accessory,
        )
        .select_from(_line.outerjoin(_product, _product.c.sku == _line.c.sku))
        .where(one_of(conn, _line.c.order_id, ids))
        .order_by(_line.c.order_id, _line.c.line_no)
    )
    for row in conn.execute(lines):
        orders[row.order_id]["lines"].append(
            {
                "sku": row.sku,
                "name": row.name,
                "product_group": row.product_group,
                "brand": row.brand,
                "quantity": _number(row.quantity),
                "unit_price": _number(row.unit_price),
                "line_total": _number(row.line_total),
                "is_accessory": bool(row.is_accessory),
            }
        )
    for order in orders.values():
        if order["total"] is None:
            totals = [line["line_total"] for line in order["lines"] if line["line_total"] is not None]
            order["total"] = float(sum(totals)) if totals else None
    return orders


def cart_items(items: Any) -> list[dict[str, Any]]:
    """A cart's ``items_json`` as a list of item objects (a source may wrap them in ``{"items": [...]}``)."""
    if isinstance(items, Mapping):
        items = items.get("items") or items.get("lines") or []
    if not isinstance(items, list):
        return []
    return [item for item in items if isinstance(item, Mapping)]


def load_carts(conn: sa.Connection, cart_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """cart id -> the cart's payload block (items completed from ``product``), with ``customer_id`` and each
    item's ``is_accessory`` for the caller. Carts that no longer exist are absent. Two queries."""
    ids = sorted(set(cart_ids))
    if not ids:
        return {}
    query = sa.select(
        _cart.c.id,
        _cart.c.external_id,
        _cart.c.customer_id,
        _cart.c.updated_at,
        _cart.c.total,
        _cart.c.currency,
        _cart.c.status,
        _cart.c.items_json,
    ).where(one_of(conn, _cart.c.id, ids))
    rows = list(conn.execute(query))
    products = _products(conn, (str(item.get("sku")) for row in rows for item in cart_items(row.items_json)))
    carts: dict[int, dict[str, Any]] = {}
    for row in rows:
        items = []
        for item in cart_items(row.items_json):
            sku = item.get("sku")
            product = products.get(str(sku), {})
            price = _number(item.get("unit_price", item.get("price")))
            if price is None:
                price = _number(product.get("price"))
            quantity = _number(item.get("quantity"))
            total = _number(item.get("line_total"))
            if total is None and price is not None and quantity is not None:
                total = price * quantity
            items.append(
                {
                    "sku": sku,
                    "name": item.get("name") or product.get("name"),
                    "product_group": product.get("product_group"),
                    "brand": product.get("brand"),
                    "quantity": quantity,
                    "unit_price": price,
                    "line_total": total,
                    "is_accessory": bool(product.get("is_accessory")),
                }
            )
        carts[row.id] = {
            "id": row.id,
            "external_id": row.external_id,
            "customer_id": row.customer_id,
            "updated_at": row.updated_at,
            "total": _number(row.total),
            "currency": row.currency,
            "status": row.status,
            "items": items,
        }
    return carts


def recommend_accessories(
    conn: sa.Connection, wants: Mapping[K, tuple[int, Collection[str], Collection[str]]], limit: int
) -> dict[K, list[dict[str, Any]]]:
    """For each key, up to ``limit`` accessories of its main products that its customer does not have (never a
    product marked deleted).

    ``wants``: key -> (customer id, main product SKUs, SKUs to leave out besides the customer's purchases, e.g.
    the cart's). Four queries for the whole batch: relations, products, popularity, what the customers bought.
    """
    if limit <= 0 or not wants:
        return {key: [] for key in wants}
    mains = sorted({sku for _, skus, _ in wants.values() for sku in skus})
    related: dict[str, list[str]] = defaultdict(list)
    if mains:
        query = (
            sa.select(_relation.c.sku, _relation.c.related_sku)
            .where(
                _relation.c.kind == "accessory",
                one_of(conn, _relation.c.sku, mains),
                ~sa.exists().where(_product.c.sku == _relation.c.related_sku, _product.c.deleted_at.is_not(None)),
            )
            .order_by(_relation.c.id)
        )
        for sku, related_sku in conn.execute(query):
            related[sku].append(related_sku)
    candidates = sorted({sku for skus in related.values() for sku in skus})
    if not candidates:
        return {key: [] for key in wants}
    products = _products(conn, candidates)
    sold = (
        sa.select(_line.c.sku, sa.func.count())
        .select_from(_line.join(_order, _order.c.id == _line.c.order_id))
        .where(one_of(conn, _line.c.sku, candidates), sa.not_(_order.c.is_return))
        .group_by(_line.c.sku)
    )
    popularity = {sku: count for sku, count in conn.execute(sold)}
    customers = sorted({customer for customer, _, _ in wants.values()})
    owner = sa.func.coalesce(_customer.c.merged_into, _customer.c.id)
    bought_query = (
        sa.select(owner, _line.c.sku)
        .distinct()
        .select_from(
            _line.join(_order, _order.c.id == _line.c.order_id).join(_customer, _customer.c.id == _order.c.customer_id)
        )
        .where(
            one_of(conn, _line.c.sku, candidates),
            sa.or_(one_of(conn, _customer.c.id, customers), one_of(conn, _customer.c.merged_into, customers)),
            sa.not_(_order.c.is_return),
        )
    )
    bought: dict[int, set[str]] = defaultdict(set)
    for customer, sku in conn.execute(bought_query):
        bought[customer].add(sku)

    result: dict[K, list[dict[str, Any]]] = {}
    for key, (customer, skus, leave_out) in wants.items():
        seen: dict[str, int] = {}
        for sku in skus:
            for rank, related_sku in enumerate(related.get(sku, ())):
                if related_sku in products and related_sku not in seen:
                    seen[related_sku] = rank
        skip = bought[customer] | set(leave_out) | set(skus)
        ranked = sorted(
            (sku for sku in seen if sku not in skip), key=lambda sku: (-popularity.get(sku, 0), seen[sku], sku)
        )
        result[key] = [
            {
                "sku": sku,
                "name": products[sku]["name"],
                "price": _number(products[sku]["price"]),
                "product_group": products[sku]["product_group"],
                "brand": products[sku]["brand"],
            }
            for sku in ranked[:limit]
        ]
    return result


def customer_block(view: Mapping[str, Any] | None, attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``customer`` block: greeting and contact fields from the view, and the key computed attributes."""
    customer = (view or {}).get("customer") or {}
    block = {name: customer.get(name) for name in CUSTOMER_FIELDS}
    values = attributes or {}
    block.update({name: values.get(name) for name in CUSTOMER_ATTRIBUTES})
    return to_json(block)


def _public_lines(lines: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{name: value for name, value in line.items() if name != "is_accessory"} for line in lines]


def build_payload(
    *,
    trigger: str,
    message_type: str,
    on: str,
    fired_at: datetime | date,
    branch: str | None,
    variant: str | None,
    customer: Mapping[str, Any],
    facts: Mapping[str, Any],
    order: Mapping[str, Any] | None = None,
    cart: Mapping[str, Any] | None = None,
    accessories: Sequence[Mapping[str, Any]] | None = None,
    recommendations: Mapping[str, Any] | None = None,
    product: Mapping[str, Any] | None = None,
    wishlist: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One candidate's payload (JSON-safe). Blocks that do not apply to the event are left out.

    The stock and price triggers carry ``product`` (name, price, stock; ``old_price`` and the drop for a price
    drop, ``previous_stock`` for a restock) and where the customer keeps it: ``cart`` and/or ``wishlist``.

    ``recommendations`` (``{"source", "items"}``, from :mod:`hub.recommend.blocks`) is there when the trigger
    asks for it.

    ``event`` always says what fired and when; for date events (birthday, anniversary, win-back, points) it also
    carries the trigger's facts (``years``, ``days_since_last_order``, ...).
    """
    payload: dict[str, Any] = {
        "trigger": trigger,
        "message_type": message_type,
        "branch": branch,
        "variant": variant,
        "customer": dict(customer),
        "event": {"type": on, "at": fired_at},
    }
    if order is not None:
        payload["order"] = {
            **{name: order.get(name) for name in ("id", "external_id", "placed_at", "total", "currency", "store")},
            "channel": order.get("channel"),
            "lines": _public_lines(order.get("lines", ())),
        }
        payload["product_groups"] = list(facts.get("product_groups") or [])
    if cart is not None:
        payload["cart"] = {
            **{name: cart.get(name) for name in ("id", "external_id", "updated_at", "total", "currency")},
            "items": _public_lines(cart.get("items", ())),
        }
        payload["product_groups"] = list(facts.get("product_groups") or [])
    if product is not None:
        payload["product"] = dict(product)
        payload["product_groups"] = list(facts.get("product_groups") or [])
    if wishlist is not None:
        payload["wishlist"] = dict(wishlist)
    if accessories is not None:
        payload["accessories"] = [dict(item) for item in accessories]
    if recommendations is not None:
        payload["recommendations"] = {
            "source": recommendations["source"],
            "items": [dict(item) for item in recommendations["items"]],
        }
    if on in ("segment_entered", "segment_left"):
        payload["segment"] = facts.get("segment")
    elif on == "campaign":
        payload["segment"] = facts.get("segment")
        payload["event"]["tick"] = facts.get("tick")
    elif on == "points_expiring":
        payload["points"] = {"points": facts.get("points"), "expires_on": facts.get("expires_on")}
    elif on in ("birthday", "first_order_anniversary", "win_back"):
        payload["event"].update(facts)
    return to_json(payload)
