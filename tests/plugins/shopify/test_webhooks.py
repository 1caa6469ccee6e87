"""Shopify webhooks: verified over the raw body, deduplicated by their delivery ids, in the shape a sync reads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import orjson
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.app import Hub
from hub.daemon.webhooks import WebhookIntake
from hub.engine.run import SyncEngine
from hub.sandbox import serve
from hub.testing.source import read_all
from hub_plugins.shopify import emulator
from hub_plugins.shopify.source import ShopifySource
from tests.plugins.shopify.conftest import Shop

MakeSource = Callable[..., ShopifySource]
SECRET = emulator.DEFAULT_WEBHOOK_SECRET


def _signed(
    body: bytes, topic: str, webhook_id: str = "w-1", event_id: str = "e-1", secret: str = SECRET
) -> dict[str, str]:
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": event_id,
    }


def test_only_a_signature_over_the_exact_raw_body_verifies(shop: Shop, make_source: MakeSource) -> None:
    source = make_source(shop)
    body = b'{"id": 1, "updated_at": "2025-01-06T09:00:00Z"}'
    headers = _signed(body, "customers/update")
    assert source.verify(body, headers)
    assert not source.verify(body.replace(b"1", b"2"), headers)
    assert not source.verify(body, _signed(body, "customers/update", secret="another"))
    assert not source.verify(body, {"shopify-topic": "customers/update"})
    events_style = {"shopify-hmac-sha256": headers["X-Shopify-Hmac-Sha256"]}
    assert source.verify(body, events_style)
    assert not make_source(shop, webhook_secret=None).verify(body, headers)


def test_a_webhook_and_a_graphql_read_give_the_same_raw_record(shop: Shop, make_source: MakeSource) -> None:
    shop.put("customers", {})
    (order,) = shop.put("orders", {"discount_codes": ["TENOFF"]})
    line = shop.state.records["orders"][int(order)]["line_items"][0]
    refund = {"refund_line_items": [{"line_item_id": line["id"], "quantity": 1}]}
    shop.put("orders", {"_key": order, "refunds": [refund]})
    source = make_source(shop, first_load="pages")
    (read,), _ = read_all(source, "orders")
    body = orjson.dumps(shop.rest("orders", order))
    stream, (pushed,) = source.records(body, _signed(body, "orders/updated"))
    assert stream == "orders"
    for key in ("id", "name", "email", "created_at", "updated_at", "currency", "financial_status", "total_price"):
        assert pushed[key] == read[key], key
    assert pushed["customer"]["id"] == read["customer"]["id"]
    assert pushed["discount_codes"][0]["code"] == read["discount_codes"][0]["code"] == "TENOFF"
    simple = [{k: line[k] for k in ("id", "sku", "quantity", "price")} for line in read["line_items"]]
    assert [{k: line[k] for k in ("id", "sku", "quantity", "price")} for line in pushed["line_items"]] == simple
    (pushed_refund,), (read_refund,) = pushed["refunds"], read["refunds"]
    for key in ("id", "refund_id", "line_item_id", "quantity"):
        assert pushed_refund["refund_line_items"][0][key] == read_refund["refund_line_items"][0][key], key


def test_a_repeated_delivery_or_event_id_yields_nothing(shop: Shop, make_source: MakeSource) -> None:
    source = make_source(shop)
    body = b'{"id": 7, "email": "kari@online.no", "updated_at": "2025-01-06T09:00:00Z"}'
    assert len(source.records(body, _signed(body, "customers/create", "w-1", "e-1"))[1]) == 1
    source.acknowledge(_signed(body, "customers/create", "w-1", "e-1"))  # the daemon committed it
    assert source.records(body, _signed(body, "customers/create", "w-1", "e-2")) == ("customers", [])
    assert source.records(body, _signed(body, "customers/create", "w-2", "e-1")) == ("customers", [])
    assert len(source.records(body, _signed(body, "customers/update", "w-3", "e-1"))[1]) == 1


def test_a_delivery_whose_write_failed_is_taken_again(shop: Shop, make_source: MakeSource) -> None:
    source = make_source(shop)
    body = b'{"id": 8, "email": "ola@online.no", "updated_at": "2025-01-06T09:00:00Z"}'
    headers = _signed(body, "customers/create", "w-9", "e-9")
    assert len(source.records(body, headers)[1]) == 1  # never acknowledged: the write failed, Shopify retries
    assert len(source.records(body, headers)[1]) == 1


def test_a_stale_copy_never_overwrites_a_newer_one(shop: Shop, make_source: MakeSource) -> None:
    source = make_source(shop)
    newer = b'{"id": 7, "updated_at": "2025-01-06T10:00:00Z"}'
    older = b'{"id": 7, "updated_at": "2025-01-06T09:00:00Z"}'
    assert len(source.records(newer, _signed(newer, "customers/update", "w-2", "e-2"))[1]) == 1
    assert source.records(older, _signed(older, "customers/update", "w-1", "e-1")) == ("customers", [])


def test_a_refund_webhook_loads_its_whole_order_read_from_shopify(shop: Shop, make_source: MakeSource) -> None:
    shop.put("customers", {})
    (order,) = shop.put("orders", {})
    body = orjson.dumps({"id": 99, "order_id": int(order), "refund_line_items": []})
    stream, (record,) = make_source(shop).records(body, _signed(body, "refunds/create"))
    assert (stream, record["id"], record["customer"]["id"]) == (
        "orders",
        order,
        shop.state.records["orders"][int(order)]["customer_id"].__str__(),
    )


def test_a_body_that_breaks_the_shape_is_an_error_record_not_a_refusal(shop: Shop, make_source: MakeSource) -> None:
    body = b'{"id": 5, "updated_at": "yesterday"}'
    stream, (record,) = make_source(shop).records(body, _signed(body, "checkouts/update"))
    assert stream == "checkouts" and "not an ISO 8601 timestamp" in record["_error"] and '"id":5' in record["_raw"]


def _count(hub: Hub, table: str) -> int:
    with hub.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_a_delivered_order_loads_at_once_and_neither_its_duplicate_nor_its_sync_copy_counts_twice(
    shop: Shop, make_hub: Callable[..., Hub]
) -> None:
    hub = make_hub(shop)
    intake = WebhookIntake(hub)
    receiver = intake.receiver("shop")
    assert receiver is not None, "the shopify source is not taken as a webhook receiver"
    answers: list[int] = []

    async def deliver(request: Request) -> Response:
        answer = intake.handle("shop", receiver, await request.body(), request.headers, None)
        answers.append(answer.status)
        return Response(orjson.dumps(answer.body), status_code=answer.status)

    with serve(Starlette(routes=[Route("/webhooks/shop", deliver, methods=["POST"])])) as url:
        shop.control.post("/_emulator/webhooks", json={"url": f"{url}/webhooks/shop", "secret": SECRET})
        shop.put("customers", {"email": "kari@online.no"})
        shop.put("orders", {})
        _wait(lambda: len(answers) == 2)
        assert _count(hub, "orders") == 1 and _count(hub, "order_line") > 0
        delivery = next(
            d for d in shop.control.get("/_emulator/webhooks").json()["deliveries"] if d["topic"] == "orders/create"
        )
        shop.control.post(f"/_emulator/webhooks/{delivery['id']}/resend")
        _wait(lambda: len(answers) == 3)
    assert answers == [202, 202, 202]
    SyncEngine(hub).sync(["shop"])
    assert _count(hub, "orders") == 1 and _count(hub, "customer") == 1


def _wait(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
