"""The shipped WooCommerce mappings through a real sync: the emulated shop's records become hub's rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from hub.app import Hub
from hub.engine.run import SyncEngine
from tests.plugins.woocommerce.conftest import Shop


def _rows(hub: Hub, query: str, **params: Any) -> list[tuple[Any, ...]]:
    with hub.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(query), params)]


AT = "2025-01-06T09:00:00Z"


def _seed(shop: Shop) -> dict[str, list[str]]:
    products = shop.put("products", {}, {}, {"sku": ""}, updated_at=AT)
    customer = shop.put(
        "customers",
        {"meta_data": [{"id": 7, "key": "mailchimp_woocommerce_is_subscribed", "value": "1"}]},
        {},
        updated_at=AT,
    )
    orders = shop.put(
        "orders",
        {"customer_id": int(customer[0]), "line_items": [{"sku": "WC-100", "quantity": 2}]},
        {},  # a guest
        {
            "refunds": [{"reason": "too small", "line_items": [{"sku": "WC-101", "quantity": 1}]}],
            "line_items": [{"sku": "WC-101", "quantity": 1}, {"sku": "WC-102", "quantity": 1}],
        },
        updated_at=AT,
    )
    return {"products": products, "customers": customer, "orders": orders}


def test_a_sync_loads_customers_orders_refunds_and_products(shop: Shop, make_hub: Callable[..., Hub]) -> None:
    keys = _seed(shop)
    hub = make_hub(shop)
    summary = SyncEngine(hub).sync(["woo"])
    assert summary.ok, [s.error for s in summary.streams if s.error]
    assert {s.stream: s.rejected for s in summary.streams} == {"customers": 0, "orders": 0, "products": 0}
    assert _rows(hub, "SELECT sku, product_group, brand FROM product ORDER BY sku") == [
        ("WC-100", "jakker", "Bergans"),
        ("WC-101", "gensere", "Devold"),
    ]  # the third product has no SKU
    consents = _rows(hub, "SELECT channel, status FROM consent")
    assert consents == [("email", "opt_in")]
    sale, _guest, refunded = keys["orders"]
    lines = _rows(
        hub,
        "SELECT o.external_id, l.sku, l.quantity FROM order_line l JOIN orders o ON o.id = l.order_id "
        "ORDER BY o.external_id, l.line_no",
    )
    assert (sale, "WC-100", 2) in lines
    returns = _rows(hub, "SELECT external_id, is_return, original_order_external_id, total FROM orders WHERE is_return")
    refund_id = returns[0][0]
    assert returns == [(refund_id, 1, refunded, -899)]
    assert (refund_id, "WC-101", -1) in lines
    customers = _rows(hub, "SELECT count(*) FROM customer")[0][0]
    assert customers == 4  # the two accounts (the first one's order finds it), the two guests by their e-mail


def test_a_second_sync_with_nothing_changed_reads_nothing(shop: Shop, make_hub: Callable[..., Hub]) -> None:
    _seed(shop)
    hub = make_hub(shop)
    SyncEngine(hub).sync(["woo"])
    second = SyncEngine(hub).sync(["woo"])
    assert {s.stream: s.read for s in second.streams} == {"customers": 0, "orders": 0, "products": 0}


def test_a_trashed_order_is_deleted_with_its_returns_by_the_next_sync(shop: Shop, make_hub: Callable[..., Hub]) -> None:
    keys = _seed(shop)
    hub = make_hub(shop)
    SyncEngine(hub).sync(["woo"])
    shop.delete("orders", keys["orders"][2])
    summary = SyncEngine(hub).sync(["woo"])
    assert {s.stream: s.deleted for s in summary.streams} == {"customers": 0, "orders": 1, "products": 0}
    orders = [row[0] for row in _rows(hub, "SELECT external_id FROM orders ORDER BY external_id")]
    assert keys["orders"][2] not in orders and not [o for o in orders if o.startswith("refund-")]
