"""The shipped ``mappings/shopify_*.yaml`` turn a synced shop into hub's model: consents, returns, SKUs, carts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from hub.app import Hub
from hub.engine.run import SyncEngine
from tests.plugins.shopify.conftest import Shop


def _rows(hub: Hub, query: str, **params: Any) -> list[tuple[Any, ...]]:
    with hub.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(query), params)]


def _consent(state: str, at: str | None = "2025-01-01T10:00:00Z") -> dict[str, Any]:
    return {"state": state, "opt_in_level": "single_opt_in", "consent_updated_at": at}


def test_a_whole_shop_syncs_into_the_model_without_rejects(shop: Shop, make_hub: Callable[..., Hub]) -> None:
    shop.put("customers", *({} for _ in range(4)))
    orders = shop.put("orders", *({} for _ in range(6)))
    shop.put("products", {}, {})
    shop.put("checkouts", {}, {"completed_at": "2025-01-02T10:00:00Z"})
    shop.put("inventory", {})
    line = shop.state.records["orders"][int(orders[0])]["line_items"][0]
    refund = {"refund_line_items": [{"line_item_id": line["id"], "quantity": 1}]}
    shop.put("orders", {"_key": orders[0], "refunds": [refund]})
    hub = make_hub(shop)
    summary = SyncEngine(hub).sync(["shop"])
    assert summary.ok, [s.error for s in summary.streams]
    assert {s.stream: s.rejected for s in summary.streams} == dict.fromkeys(
        ("customers", "orders", "products", "checkouts", "inventory"), 0
    )
    assert _rows(hub, "SELECT count(*) FROM orders WHERE NOT is_return") == [(6,)]
    returned = _rows(
        hub,
        "SELECT o.original_order_external_id, l.sku, l.quantity FROM orders o JOIN order_line l ON l.order_id = o.id "
        "WHERE o.is_return",
    )
    assert [(r[0], r[1], float(r[2])) for r in returned] == [(orders[0], line["sku"], -1.0)]
    assert _rows(hub, "SELECT status FROM cart ORDER BY external_id") == [("open",), ("converted",)]
    skus = _rows(hub, "SELECT count(*), count(DISTINCT product_group), count(brand) FROM product")
    assert skus[0][0] >= 2 and skus[0][2] == skus[0][0]
    assert _rows(hub, "SELECT type FROM event") == [("stock_level",)]
    assert _rows(hub, "SELECT count(*) FROM customer") == [(4,)]


def test_never_asked_makes_no_consent_and_unsubscribed_is_an_opt_out(shop: Shop, make_hub: Callable[..., Hub]) -> None:
    shop.put("customers", {"email": "never@online.no", "email_marketing_consent": _consent("not_subscribed")})
    shop.put("customers", {"email": "pending@online.no", "email_marketing_consent": _consent("pending")})
    shop.put("customers", {"email": "out@online.no", "email_marketing_consent": _consent("unsubscribed")})
    shop.put(
        "customers",
        {
            "email": "in@online.no",
            "email_marketing_consent": _consent("subscribed"),
            "sms_marketing_consent": {**_consent("subscribed"), "consent_collected_from": "shopify"},
        },
    )
    hub = make_hub(shop)
    assert SyncEngine(hub).sync(["shop"]).ok
    consents = _rows(
        hub,
        "SELECT i.value, c.channel, c.status FROM consent c JOIN identity i ON i.customer_id = c.customer_id "
        "AND i.kind = 'email' ORDER BY i.value, c.channel",
    )
    assert consents == [
        ("in@online.no", "email", "opt_in"),
        ("in@online.no", "sms", "opt_in"),
        ("out@online.no", "email", "opt_out"),
    ]
