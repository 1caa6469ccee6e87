"""The stock and price triggers: ``back_in_stock`` and ``price_drop``, for the customers who hold the product.

Both read the ``product_event`` rows the loader records (:mod:`hub.models.product_events`) past the trigger's
watermark. ``back_in_stock`` takes a stock change from unavailable to available; ``price_drop`` a price that fell
by at least ``min_drop``. Each event fires for the customers who, when it happened, had the product in an
abandoned cart changed within ``cart_max_age`` before it, or on their wishlist (``from``), and who have not bought
it since they put it aside. One candidate per customer and event; when a product changed several times since
the last pass, only its latest change fires, so one pass never mails the same product twice.

Carts hold their items as JSON: SQL narrows the carts to those whose items' text contains the SKU (a plain
``LIKE``, the same on SQLite and PostgreSQL), and Python keeps those with an item of exactly that SKU.

When the candidate is prepared (after ``delay``), :func:`product_contexts` checks that it still makes sense: the
product exists and is still available (back in stock) or still as cheap (price drop), the cart or wishlist still
holds it, and the customer has not bought it meanwhile.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hub.audience.payloads import CLOSED_CART_STATUSES, cart_items, load_carts, to_json
from hub.db import one_of
from hub.models import Cart, Customer, Order, OrderLine, Product, ProductEvent, WishlistItem
from hub.models.product_events import PRICE, STOCK, availability

if TYPE_CHECKING:
    from hub.config._audience import TriggerConfig

__all__ = ["ProductCandidate", "ProductContext", "product_candidates", "product_contexts"]

_event: sa.Table = ProductEvent.__table__  # type: ignore[attr-defined]
_product: sa.Table = Product.__table__  # type: ignore[attr-defined]
_cart: sa.Table = Cart.__table__  # type: ignore[attr-defined]
_wish: sa.Table = WishlistItem.__table__  # type: ignore[attr-defined]
_customer: sa.Table = Customer.__table__  # type: ignore[attr-defined]
_order: sa.Table = Order.__table__  # type: ignore[attr-defined]
_line: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class ProductCandidate:
    """A customer to tell about one product event, with what holds the product (the candidate's facts)."""

    customer_id: int
    event_id: int
    at: datetime
    facts: dict[str, Any]


@dataclass(slots=True)
class ProductContext:
    """What a product candidate's payload carries, or why it can no longer be sent (``error``)."""

    product: dict[str, Any] = field(default_factory=dict)
    cart: dict[str, Any] | None = None
    wishlist: dict[str, Any] | None = None
    main: list[dict[str, Any]] = field(default_factory=list)  # the product as a line, for accessories
    anchor: datetime | None = None  # when the customer put it aside
    error: str | None = None


def _owner(table: sa.Table | sa.FromClause) -> sa.ColumnElement[int]:
    return sa.func.coalesce(table.c.merged_into, table.c.id)


def _bought_after(sku: sa.ColumnElement[str], since: sa.ColumnElement[Any], owner: Any) -> sa.Exists:
    """An order (not a return) by the customer ``owner`` (or one merged into them) of ``sku`` after ``since``."""
    buyer = _customer.alias("buyer")
    return (
        sa.exists()
        .select_from(
            _line.join(_order, _order.c.id == _line.c.order_id).join(buyer, buyer.c.id == _order.c.customer_id)
        )
        .where(
            _line.c.sku == sku,
            _line.c.quantity > 0,
            sa.not_(_order.c.is_return),
            _order.c.placed_at > since,
            _owner(buyer) == owner,
        )
    )


def _events(conn: sa.Connection, trigger: TriggerConfig, now: datetime, after: int) -> dict[int, sa.Row[Any]]:
    """The product events past ``after`` that fire this trigger: within ``max_age``, of a live product matching
    the filter; a price drop of at least ``min_drop`` on a product not known to be out of stock."""
    conditions: list[Any] = [
        _event.c.id > after,
        _event.c.at >= now - trigger.max_age,
        _event.c.at <= now,
        _product.c.deleted_at.is_(None),
    ]
    if trigger.on == "back_in_stock":
        conditions += [
            _event.c.kind == STOCK,
            _event.c.was_available.is_(sa.false()),
            _event.c.available.is_(sa.true()),
        ]
    else:
        conditions += [_event.c.kind == PRICE, _event.c.new_value < _event.c.old_value]
    if trigger.filter.product_groups:
        conditions.append(_product.c.product_group.in_(trigger.filter.product_groups))
    if trigger.filter.brands:
        conditions.append(_product.c.brand.in_(trigger.filter.brands))
    query = (
        sa.select(
            _event.c.id,
            _event.c.sku,
            _event.c.old_value,
            _event.c.new_value,
            _event.c.at,
            _product.c.product_group,
            _product.c.stock,
            _product.c.in_stock,
        )
        .select_from(_event.join(_product, _product.c.sku == _event.c.sku))
        .where(*conditions)
    )
    found = {}
    for row in conn.execute(query):
        if trigger.on == "price_drop" and (
            not trigger.min_drop.reached(row.old_value, row.new_value) or availability(row.stock, row.in_stock) is False
        ):
            continue
        found[row.id] = row
    return found


def product_candidates(
    conn: sa.Connection, trigger: TriggerConfig, now: datetime, after: int, where: sa.Select[Any] | None
) -> list[ProductCandidate]:
    """The candidates of the product events past ``after``: one query for the events, one per place (carts,
    wishlists) for the customers holding their products."""
    events = _events(conn, trigger, now, after)
    if not events:
        return []
    ids = sorted(events)
    owner = _owner(_customer)
    admitted = [] if where is None else [owner.in_(where)]
    # (customer, event id) -> "cart" / "wishlist" -> (its id, when the product was put there)
    held: dict[tuple[int, int], dict[str, tuple[int, datetime]]] = defaultdict(dict)
    if "cart" in trigger.from_:
        earliest = min(row.at for row in events.values()) - trigger.cart_max_age
        open_cart = sa.or_(_cart.c.status.is_(None), sa.func.lower(_cart.c.status).not_in(CLOSED_CART_STATUSES))
        query = (
            sa.select(_event.c.id, _cart.c.id, owner, _cart.c.updated_at, _cart.c.items_json)
            .select_from(
                _event.join(
                    _cart,
                    sa.and_(
                        sa.cast(_cart.c.items_json, sa.Text).contains(_event.c.sku), _cart.c.updated_at <= _event.c.at
                    ),
                ).join(_customer, _customer.c.id == _cart.c.customer_id)
            )
            .where(
                one_of(conn, _event.c.id, ids),
                _cart.c.updated_at >= earliest,
                open_cart,
                sa.not_(_bought_after(_event.c.sku, _cart.c.updated_at, owner)),
                *admitted,
            )
        )
        for event_id, cart_id, customer_id, updated_at, items in conn.execute(query):
            event = events[event_id]
            if updated_at < event.at - trigger.cart_max_age:
                continue
            if not any(str(item.get("sku")) == event.sku for item in cart_items(items)):
                continue
            known = held[customer_id, event_id].get("cart")
            if known is None or (updated_at, cart_id) > (known[1], known[0]):
                held[customer_id, event_id]["cart"] = (cart_id, updated_at)
    if "wishlist" in trigger.from_:
        query = (
            sa.select(_event.c.id, _wish.c.id, owner, _wish.c.added_at)
            .select_from(
                _event.join(_wish, sa.and_(_wish.c.sku == _event.c.sku, _wish.c.added_at <= _event.c.at)).join(
                    _customer, _customer.c.id == _wish.c.customer_id
                )
            )
            .where(
                one_of(conn, _event.c.id, ids),
                _wish.c.removed_at.is_(None),
                sa.not_(_bought_after(_event.c.sku, _wish.c.added_at, owner)),
                *admitted,
            )
            .order_by(_wish.c.added_at, _wish.c.id)
        )
        for event_id, item_id, customer_id, added_at in conn.execute(query):
            held[customer_id, event_id].setdefault("wishlist", (item_id, added_at))
    latest: dict[tuple[int, str], int] = {}  # (customer, sku) -> the latest event: one message per product
    for customer_id, event_id in held:
        key = (customer_id, events[event_id].sku)
        chosen = latest.get(key)
        if chosen is None or (events[event_id].at, event_id) > (events[chosen].at, chosen):
            latest[key] = event_id
    return [
        _candidate(customer_id, events[event_id], held[customer_id, event_id])
        for (customer_id, _), event_id in sorted(latest.items())
    ]


def _candidate(customer_id: int, event: sa.Row[Any], held: Mapping[str, tuple[int, datetime]]) -> ProductCandidate:
    cart, wish = held.get("cart"), held.get("wishlist")
    facts = {
        "event_id": event.id,
        "sku": event.sku,
        "product_groups": [event.product_group] if event.product_group else [],
        "old_value": to_json(event.old_value),
        "new_value": to_json(event.new_value),
        "at": event.at.isoformat(),
        "cart_id": cart[0] if cart else None,
        "cart_updated_at": cart[1].isoformat() if cart else None,
        "wishlist_item_id": wish[0] if wish else None,
        "wishlist_added_at": wish[1].isoformat() if wish else None,
    }
    return ProductCandidate(customer_id=customer_id, event_id=event.id, at=event.at, facts=facts)


# -- preparing --------------------------------------------------------------------------------------------------------


def product_contexts(
    conn: sa.Connection, wanted: Mapping[int, tuple[str, int, Mapping[str, Any]]]
) -> dict[int, ProductContext]:
    """key -> the product, cart and wishlist blocks of each candidate (``wanted``: key -> (trigger kind,
    customer id, facts)), or why it can no longer be sent. One query per table for the whole batch."""
    if not wanted:
        return {}
    skus = sorted({str(facts["sku"]) for _, _, facts in wanted.values()})
    products = {
        row.sku: row
        for row in conn.execute(
            sa.select(
                _product.c.sku,
                _product.c.name,
                _product.c.product_group,
                _product.c.brand,
                _product.c.price,
                _product.c.stock,
                _product.c.in_stock,
                _product.c.is_accessory,
                _product.c.deleted_at,
            ).where(one_of(conn, _product.c.sku, skus))
        )
    }
    carts = load_carts(conn, [int(f["cart_id"]) for _, _, f in wanted.values() if f.get("cart_id") is not None])
    item_ids = sorted({int(f["wishlist_item_id"]) for _, _, f in wanted.values() if f.get("wishlist_item_id")})
    wishes: dict[int, sa.Row[Any]] = {}
    if item_ids:
        query = sa.select(_wish.c.id, _wish.c.added_at, _wish.c.removed_at).where(one_of(conn, _wish.c.id, item_ids))
        wishes = {row.id: row for row in conn.execute(query)}
    bought = _last_bought(conn, sorted({customer for _, customer, _ in wanted.values()}), skus)
    return {
        key: _context(on, customer_id, facts, products, carts, wishes, bought)
        for key, (on, customer_id, facts) in wanted.items()
    }


def _last_bought(
    conn: sa.Connection, customer_ids: Sequence[int], skus: Sequence[str]
) -> dict[tuple[int, str], datetime]:
    """(customer, sku) -> when the customer (or one merged into them) last bought it: one query."""
    if not customer_ids or not skus:
        return {}
    owner = _owner(_customer)
    query = (
        sa.select(owner, _line.c.sku, sa.func.max(_order.c.placed_at))
        .select_from(
            _line.join(_order, _order.c.id == _line.c.order_id).join(_customer, _customer.c.id == _order.c.customer_id)
        )
        .where(
            one_of(conn, _line.c.sku, skus),
            sa.or_(one_of(conn, _customer.c.id, customer_ids), one_of(conn, _customer.c.merged_into, customer_ids)),
            sa.not_(_order.c.is_return),
            _line.c.quantity > 0,
        )
        .group_by(owner, _line.c.sku)
    )
    return {(customer, sku): at for customer, sku, at in conn.execute(query)}


def _holds(cart: Mapping[str, Any], sku: str) -> bool:
    """The cart is still open and still has the product in it."""
    closed = (cart["status"] or "").lower() in CLOSED_CART_STATUSES
    return not closed and any(str(item["sku"]) == sku for item in cart["items"])


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _context(
    on: str,
    customer_id: int,
    facts: Mapping[str, Any],
    products: Mapping[str, sa.Row[Any]],
    carts: Mapping[int, dict[str, Any]],
    wishes: Mapping[int, sa.Row[Any]],
    bought: Mapping[tuple[int, str], datetime],
) -> ProductContext:
    sku = str(facts["sku"])
    product = products.get(sku)
    if product is None or product.deleted_at is not None:
        return ProductContext(error=f"product {sku} no longer exists")
    available = availability(product.stock, product.in_stock)
    if on == "back_in_stock" and available is False:
        return ProductContext(error=f"product {sku} is out of stock again")
    new_price = facts.get("new_value")
    if (
        on == "price_drop"
        and product.price is not None
        and new_price is not None
        and product.price > Decimal(str(new_price))
    ):
        return ProductContext(error=f"the price of product {sku} went back up to {product.price:.2f}")
    cart = carts.get(int(facts["cart_id"])) if facts.get("cart_id") is not None else None
    if cart is not None and not _holds(cart, sku):
        cart = None
    wish = wishes.get(int(facts["wishlist_item_id"])) if facts.get("wishlist_item_id") else None
    if wish is not None and wish.removed_at is not None:
        wish = None
    if cart is None and wish is None:
        return ProductContext(error=f"product {sku} is no longer in the customer's cart or wishlist")
    put_aside = [cart["updated_at"]] if cart is not None else []
    put_aside += [wish.added_at] if wish is not None else []
    anchor = min(put_aside)
    last = bought.get((customer_id, sku))
    if last is not None and last > anchor:
        return ProductContext(error=f"the customer bought product {sku} after putting it aside")
    block: dict[str, Any] = {
        "sku": sku,
        "name": product.name,
        "product_group": product.product_group,
        "brand": product.brand,
        "price": _number(product.price),
        "stock": _number(product.stock),
        "in_stock": available,
    }
    if on == "price_drop":
        old = facts.get("old_value")
        block["old_price"] = old
        if old and product.price is not None:
            block["price_drop"] = round(old - float(product.price), 2)
            block["price_drop_percent"] = round(100 * (old - float(product.price)) / old, 1)
    else:
        block["previous_stock"] = facts.get("old_value")
    line = {
        "sku": sku,
        "name": product.name,
        "product_group": product.product_group,
        "brand": product.brand,
        "unit_price": _number(product.price),
        "is_accessory": bool(product.is_accessory),
    }
    return ProductContext(
        product=block,
        cart=cart,
        wishlist={"added_at": wish.added_at} if wish is not None else None,
        main=[line],
        anchor=anchor,
    )
