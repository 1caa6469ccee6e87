"""The emulated shop answers as WooCommerce does: paging, filters, validation, auth, errors, throttle, webhooks."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.sandbox import serve
from hub_plugins.woocommerce._sender import signature
from hub_plugins.woocommerce._state import DEFAULT_KEY, DEFAULT_SECRET
from hub_plugins.woocommerce.emulator import API
from hub_plugins.woocommerce.oauth import OAuth1QueryAuth
from tests.plugins.woocommerce.conftest import Shop

SIGNED = OAuth1QueryAuth(DEFAULT_KEY, DEFAULT_SECRET)


def _list(shop: Shop, stream: str, **params: str) -> httpx.Response:
    return shop.client.get(f"{API}/{stream}", params=params, auth=SIGNED)


def test_per_page_above_100_is_refused_with_rest_invalid_param(shop: Shop) -> None:
    response = _list(shop, "orders", per_page="101")
    assert response.status_code == 400
    assert response.json() == {
        "code": "rest_invalid_param",
        "message": "Invalid parameter(s): per_page",
        "data": {"status": 400, "params": {"per_page": "per_page must be between 1 (inclusive) and 100 (inclusive)"}},
    }


def test_a_list_says_its_total_and_pages_and_links_the_next_page(shop: Shop) -> None:
    shop.put("products", *[{}] * 7)
    response = _list(shop, "products", per_page="3", page="2")
    assert (response.headers["X-WP-Total"], response.headers["X-WP-TotalPages"]) == ("7", "3")
    assert 'rel="prev"' in response.headers["Link"] and "page=3" in response.headers["Link"]
    assert len(response.json()) == 3


def test_modified_after_is_exclusive_to_the_second(shop: Shop) -> None:
    [key] = shop.put("orders", {}, updated_at="2025-01-06T09:00:00Z")
    at_it = _list(shop, "orders", modified_after="2025-01-06T09:00:00", dates_are_gmt="true")
    before_it = _list(shop, "orders", modified_after="2025-01-06T08:59:59", dates_are_gmt="true")
    assert at_it.json() == [] and [str(o["id"]) for o in before_it.json()] == [key]


def test_dates_are_served_in_the_site_zone_and_in_gmt_without_an_offset(shop: Shop) -> None:
    shop.put("customers", {}, updated_at="2025-07-01T10:00:00Z")
    [customer] = _list(shop, "customers").json()
    assert (customer["date_modified"], customer["date_modified_gmt"]) == ("2025-07-01T12:00:00", "2025-07-01T10:00:00")


def test_trashed_orders_are_listed_only_when_asked_for(shop: Shop) -> None:
    kept, trashed = shop.put("orders", {}, {})
    shop.delete("orders", trashed)
    assert [str(o["id"]) for o in _list(shop, "orders").json()] == [kept]
    assert [(str(o["id"]), o["status"]) for o in _list(shop, "orders", status="trash").json()] == [(trashed, "trash")]


def test_basic_auth_over_plain_http_runs_anonymously_and_is_refused(shop: Shop) -> None:
    response = shop.client.get(f"{API}/orders", auth=(DEFAULT_KEY, DEFAULT_SECRET))
    assert response.status_code == 401 and response.json()["code"] == "woocommerce_rest_cannot_view"


def test_behind_tls_a_wrong_secret_is_refused_with_a_basic_challenge(shop: Shop) -> None:
    shop.client.post("/_emulator/config", json={"tls": True}).raise_for_status()
    assert shop.client.get(f"{API}/orders", auth=(DEFAULT_KEY, DEFAULT_SECRET)).status_code == 200
    response = shop.client.get(f"{API}/orders", auth=(DEFAULT_KEY, "cs_wrong"))
    assert response.json()["message"] == "Consumer secret is invalid."
    assert response.headers["WWW-Authenticate"].startswith('Basic realm="WooCommerce API.')
    query = shop.client.get(f"{API}/orders", params={"consumer_key": DEFAULT_KEY, "consumer_secret": DEFAULT_SECRET})
    assert query.status_code == 200


def test_a_read_only_key_cannot_create_a_webhook(shop: Shop) -> None:
    keys = {"ck_read": {"secret": "cs_read", "permissions": "read"}}
    shop.client.post("/_emulator/config", json={"keys": keys}).raise_for_status()
    body = {"topic": "order.created", "delivery_url": "http://127.0.0.1:9/none", "secret": "s"}
    response = shop.client.post(f"{API}/webhooks", json=body, auth=OAuth1QueryAuth("ck_read", "cs_read"))
    assert (response.status_code, response.json()["message"]) == (
        401,
        "The API key provided does not have write permissions.",
    )


def test_an_unknown_route_is_rest_no_route(shop: Shop) -> None:
    response = shop.client.get("/wp-json/wc/v3/coupons", auth=SIGNED)
    assert (response.status_code, response.json()["code"]) == (404, "rest_no_route")


def test_a_throttle_asks_to_wait_in_the_store_apis_words(shop: Shop) -> None:
    shop.client.post("/_emulator/throttle", json={"count": 1, "retry_after": 2}).raise_for_status()
    response = _list(shop, "orders")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "2")
    assert response.json()["code"] == "rate_limit_exceeded"
    assert _list(shop, "orders").status_code == 200


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[Request], list[int]]]:
    """A delivery URL answering with the statuses queued in the returned list (200 once it runs out)."""
    seen: list[Request] = []
    statuses: list[int] = []

    async def endpoint(request: Request) -> Response:
        await request.body()
        seen.append(request)
        return Response(status_code=statuses.pop(0) if statuses else 200)

    with serve(Starlette(routes=[Route("/hook", endpoint, methods=["POST"])])) as url:
        yield f"{url}/hook", seen, statuses


def _webhook(shop: Shop, url: str, topic: str = "order.created") -> dict[str, object]:
    body = {"topic": topic, "delivery_url": url, "secret": "hook-secret"}
    response = shop.client.post(f"{API}/webhooks", json=body, auth=SIGNED)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_a_new_webhook_is_pinged_and_then_gets_signed_deliveries(
    shop: Shop, receiver: tuple[str, list[Request], list[int]]
) -> None:
    url, seen, _ = receiver
    _webhook(shop, url)
    shop.put("orders", {})
    shop.state.sender.wait()
    ping, delivery = seen
    assert ping.headers.get("x-wc-webhook-signature") is None and ping.headers["content-type"].startswith(
        "application/x-www-form-urlencoded"
    )
    assert delivery.headers["x-wc-webhook-topic"] == "order.created"
    body = shop.state.sender.deliveries[-1].body.encode()
    assert delivery.headers["x-wc-webhook-signature"] == signature(body, "hook-secret")
    assert b"\\/wp-json\\/wc\\/v3\\/orders" in body  # PHP's json_encode escapes slashes: sign the raw body


def test_a_webhook_is_disabled_on_the_seventh_failure_in_a_row(
    shop: Shop, receiver: tuple[str, list[Request], list[int]]
) -> None:
    url, seen, statuses = receiver
    statuses.extend([200] + [500] * 8)  # the ping, then failures
    _webhook(shop, url)
    for _ in range(8):
        shop.put("orders", {})
        shop.state.sender.wait()
    [webhook] = shop.state.sender.webhooks.values()
    assert webhook.status == "disabled" and len(seen) == 1 + 7  # the 8th order is never sent


def test_a_ping_answered_with_anything_but_200_leaves_the_webhook_pending(
    shop: Shop, receiver: tuple[str, list[Request], list[int]]
) -> None:
    url, _, statuses = receiver
    statuses.append(202)
    assert _webhook(shop, url)["pending_delivery"] is True
