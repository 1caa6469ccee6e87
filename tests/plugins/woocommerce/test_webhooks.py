"""WooCommerce webhooks: verified over the raw body, the ping answered, and a signed delivery never refused for data."""

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
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.app import Hub
from hub.daemon.webhooks import WebhookIntake
from hub.engine.run import SyncEngine
from hub.sandbox import serve
from hub_plugins.woocommerce._sender import php_json
from hub_plugins.woocommerce._state import DEFAULT_KEY, DEFAULT_SECRET
from hub_plugins.woocommerce.emulator import API
from hub_plugins.woocommerce.oauth import OAuth1QueryAuth
from tests.plugins.woocommerce.conftest import MakeSource, Shop

SECRET = "whsec-woo"
SIGNED = OAuth1QueryAuth(DEFAULT_KEY, DEFAULT_SECRET)


def _signed(body: bytes, topic: str, secret: str = SECRET) -> dict[str, str]:
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {"X-WC-Webhook-Signature": digest, "X-WC-Webhook-Topic": topic, "Content-Type": "application/json"}


def _order(shop: Shop) -> dict[str, Any]:
    [key] = shop.put("orders", {}, updated_at="2025-01-06T09:00:00Z")
    return dict(shop.state.serve("orders", shop.state.items["orders"][int(key)]))


def test_only_a_signature_over_the_exact_raw_body_verifies(shop: Shop, make_source: MakeSource) -> None:
    source = make_source(shop, webhook_secret=SECRET)
    body = php_json(_order(shop))
    assert source.verify(body, _signed(body, "order.created"))
    assert not source.verify(body.replace(b"\\/", b"/"), _signed(body, "order.created"))  # the same JSON, re-encoded
    assert not source.verify(body, _signed(body, "order.created", "another-secret"))
    assert not source.verify(body, {"X-WC-Webhook-Topic": "order.created"})
    assert not make_source(shop).verify(body, _signed(body, "order.created"))  # no webhook_secret: nothing verifies


def test_the_activation_ping_is_answered_and_loads_nothing(shop: Shop, make_source: MakeSource) -> None:
    source = make_source(shop, webhook_secret=SECRET)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert source.handshake(b"webhook_id=12", headers) == {"status": "ok", "webhook_id": 12}
    assert source.verify(b"webhook_id=12", headers)
    assert source.records(b"webhook_id=12", headers)[1] == []
    assert source.handshake(b"webhook_id=12", _signed(b"webhook_id=12", "order.created")) is None


def test_a_signed_delivery_hub_cannot_use_is_never_an_exception(shop: Shop, make_source: MakeSource) -> None:
    source = make_source(shop, webhook_secret=SECRET)
    assert source.records(b'{"id": 5}', _signed(b'{"id": 5}', "coupon.updated"))[1] == []
    _, [broken] = source.records(b"<html>", _signed(b"<html>", "order.updated"))
    assert "not JSON" in broken["_error"] and broken["_raw"] == "<html>"
    _, [dated] = source.records(b'{"id": 5, "date_modified_gmt": "0000-00-00T00:00:00"}', _signed(b"", "order.updated"))
    assert "date_modified_gmt" in dated["_error"] and dated["id"] == 5


def test_a_deleted_topic_is_a_tombstone(shop: Shop, make_source: MakeSource) -> None:
    source = make_source(shop, webhook_secret=SECRET)
    assert source.records(b'{"id":42}', _signed(b'{"id":42}', "order.deleted")) == (
        "orders",
        [{"id": 42, "_deleted": True}],
    )


def test_a_copy_older_than_one_taken_yields_nothing(shop: Shop, make_source: MakeSource) -> None:
    source = make_source(shop, webhook_secret=SECRET)
    newer = {**_order(shop), "date_modified_gmt": "2025-01-06T10:00:00"}
    older = {**newer, "date_modified_gmt": "2025-01-06T09:00:00", "status": "pending"}
    for body, expected in ((newer, 1), (older, 0), (newer, 1)):
        raw = php_json(body)
        assert len(source.records(raw, _signed(raw, "order.updated"))[1]) == expected


def _count(hub: Hub, table: str) -> int:
    with hub.engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def _wait(predicate: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _endpoint(hub: Hub, answers: list[int], observe: Callable[..., None] | None = None) -> Starlette:
    """``POST /webhooks/woo`` as the daemon serves it, with the handshake step the plugin README asks of it."""
    intake = WebhookIntake(hub, observe=observe)
    receiver = intake.receiver("woo")
    assert receiver is not None, "the woocommerce source is not taken as a webhook receiver"

    async def deliver(request: Request) -> Response:
        body = await request.body()
        handshake = getattr(receiver, "handshake", None)
        pinged = handshake(body, request.headers) if handshake else None
        if pinged is not None:
            answers.append(200)
            return JSONResponse(pinged)
        answer = intake.handle("woo", receiver, body, request.headers, None)
        answers.append(answer.status)
        return Response(orjson.dumps(answer.body), status_code=answer.status)

    return Starlette(routes=[Route("/webhooks/woo", deliver, methods=["POST"])])


def _subscribe(shop: Shop, url: str, *topics: str) -> None:
    for topic in topics:
        body = {"topic": topic, "delivery_url": url, "secret": SECRET}
        shop.client.post(f"{API}/webhooks", json=body, auth=SIGNED).raise_for_status()


def test_a_delivered_order_loads_at_once_and_its_sync_copy_is_not_counted_twice(
    shop: Shop, make_hub: Callable[..., Hub]
) -> None:
    hub = make_hub(shop, webhook_secret=SECRET)
    answers: list[int] = []
    with serve(_endpoint(hub, answers)) as url:
        _subscribe(shop, f"{url}/webhooks/woo", "order.created")
        assert answers == [200]  # the ping
        assert not [w for w in shop.state.sender.webhooks.values() if w.pending_delivery]
        shop.put("orders", {"line_items": [{"sku": "WC-1", "quantity": 1}, {"sku": "WC-2", "quantity": 3}]})
        _wait(lambda: len(answers) == 2)
        assert answers == [200, 202]
        assert (_count(hub, "orders"), _count(hub, "order_line")) == (1, 2)
    summary = SyncEngine(hub).sync(["woo"])
    assert summary.ok
    assert (_count(hub, "orders"), _count(hub, "order_line"), _count(hub, "customer")) == (1, 2, 1)


def test_a_delivery_the_mapping_rejects_is_still_taken_so_the_webhook_stays_active(
    shop: Shop, make_hub: Callable[..., Hub]
) -> None:
    hub = make_hub(shop, webhook_secret=SECRET)
    answers: list[int] = []
    with serve(_endpoint(hub, answers)) as url:
        _subscribe(shop, f"{url}/webhooks/woo", "order.created")
        for n in range(8):  # past WooCommerce's five failures in a row
            shop.put("orders", {"billing": {"email": f"not an address {n}"}})
            shop.state.sender.wait()
    [webhook] = shop.state.sender.webhooks.values()
    assert answers[1:] == [202] * 8 and (webhook.status, webhook.failure_count) == ("active", 0)
    assert _count(hub, "reject") == 8 and _count(hub, "orders") == 0


def test_a_deleted_order_delivery_deletes_it_and_is_counted_as_the_metrics_count_it(
    shop: Shop, make_hub: Callable[..., Hub]
) -> None:
    hub = make_hub(shop, webhook_secret=SECRET)
    answers: list[int] = []
    seen: list[Any] = []
    with serve(_endpoint(hub, answers, observe=lambda connector, status, result: seen.append(result))) as url:
        _subscribe(shop, f"{url}/webhooks/woo", "order.created", "order.deleted")
        (key,) = shop.put("orders", {"line_items": [{"sku": "WC-1", "quantity": 1}]})
        shop.state.sender.wait()
        assert _count(hub, "orders") == 1
        shop.delete("orders", key)
        shop.state.sender.wait()
        shop.delete("orders", key)  # again: nothing left to delete
        shop.state.sender.wait()
    assert answers == [200, 200, 202, 202, 202] and _count(hub, "orders") == 0
    deleted, again = seen[-2:]
    assert (deleted.deleted, deleted.deletions_ignored, deleted.loaded) == (1, 0, 0)
    assert (again.deleted, again.deletions_ignored) == (0, 1)
