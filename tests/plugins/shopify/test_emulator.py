"""The Shopify emulator answers as the GraphQL Admin API does: gate, cost, throttle, pages, bulk, webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.sandbox import serve
from hub_plugins.shopify import emulator
from tests.plugins.shopify.conftest import Shop

PAGE = """query($first: Int!, $after: String) {
  customers(first: $first, after: $after, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor } edges { cursor node { id updatedAt } } } }"""


def test_an_unknown_version_is_404_and_a_wrong_token_is_401_with_a_string_error(shop: Shop) -> None:
    unknown = shop.control.post("/admin/api/2019-13/graphql.json", json={"query": "{ shop { name } }"})
    wrong = shop.graphql("{ shop { name } }", **{"X-Shopify-Access-Token": "shpat_wrong"})
    assert (unknown.status_code, unknown.json()) == (404, {"errors": "Not Found"})
    assert wrong.status_code == 401
    assert wrong.json()["errors"].startswith("[API] Invalid API key or access token")


def test_every_answer_reports_its_cost_and_the_bucket(shop: Shop) -> None:
    shop.put("customers", {}, {})
    body = shop.graphql(PAGE, {"first": 10}).json()
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 2 + 10 * 1  # a connection: 2 + first x (1 per node of scalars)
    assert cost["actualQueryCost"] == 2 + 2 * 1  # charged for the two customers it returned
    assert cost["throttleStatus"] == {"maximumAvailable": 1000.0, "currentlyAvailable": 996, "restoreRate": 50.0}


def test_a_query_dearer_than_the_bucket_holds_is_throttled_and_not_run(shop: Shop) -> None:
    shop.config(bucket_max=30, restore_rate=1)
    body = shop.graphql(PAGE, {"first": 50}).json()
    assert body["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert "data" not in body and body["extensions"]["cost"]["actualQueryCost"] is None


def test_a_query_over_the_single_query_cap_is_refused(shop: Shop) -> None:
    query = "{ orders(first: 250) { nodes { id lineItems(first: 250) { nodes { id } } } } }"
    body = shop.graphql(query).json()
    assert body["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"


def test_pages_follow_update_time_then_id_and_a_record_changed_mid_read_comes_again_later(shop: Shop) -> None:
    first, second, third = shop.put("customers", {}, {}, {}, updated_at="2025-01-06T09:00:00Z")
    page = shop.graphql(PAGE, {"first": 2}).json()["data"]["customers"]
    assert [edge["node"]["id"].rsplit("/", 1)[1] for edge in page["edges"]] == [first, second]
    shop.put("customers", {"_key": first}, updated_at="2025-01-06T10:00:00Z")
    rest = shop.graphql(PAGE, {"first": 5, "after": page["pageInfo"]["endCursor"]}).json()["data"]["customers"]
    assert [edge["node"]["id"].rsplit("/", 1)[1] for edge in rest["edges"]] == [third, first]


def test_a_bulk_query_with_a_connection_inside_a_list_is_refused_as_shopify_does(shop: Shop) -> None:
    inner = "{ orders { edges { node { id refunds { id refundLineItems { edges { node { id } } } } } } } }"
    mutation = (
        "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id } userErrors { message } } }"
    )
    payload = shop.graphql(mutation, {"q": inner}).json()["data"]["bulkOperationRunQuery"]
    assert payload["bulkOperation"] is None
    assert "connection field within a list field" in payload["userErrors"][0]["message"]


def _bulk(shop: Shop, inner: str) -> dict[str, Any]:
    mutation = (
        "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id } userErrors { message } } }"
    )
    op = shop.graphql(mutation, {"q": inner}).json()["data"]["bulkOperationRunQuery"]["bulkOperation"]
    poll = "query($id: ID!) { node(id: $id) { ... on BulkOperation { status url rootObjectCount } } }"
    for _ in range(200):
        node = shop.graphql(poll, {"id": op["id"]}).json()["data"]["node"]
        if node["status"] == "COMPLETED":
            return dict(node)
        time.sleep(0.01)
    raise AssertionError("the bulk operation never completed")


def test_a_bulk_result_puts_each_child_on_its_own_line_after_its_parent(shop: Shop) -> None:
    shop.put("orders", {"line_items": [{"sku": "A"}, {"sku": "B"}]}, {"line_items": [{"sku": "C"}]})
    node = _bulk(shop, "{ orders { edges { node { id lineItems { edges { node { id sku } } } } } } }")
    rows = [orjson.loads(line) for line in httpx.get(node["url"]).text.splitlines()]
    assert [(row.get("sku"), row.get("__parentId") is not None) for row in rows] == [
        (None, False),
        ("A", True),
        ("B", True),
        (None, False),
        ("C", True),
    ]
    assert rows[1]["__parentId"] == rows[0]["id"] and rows[4]["__parentId"] == rows[3]["id"]


def test_a_bulk_result_url_expires(shop: Shop) -> None:
    shop.put("customers", {})
    shop.config(bulk_url_ttl=0)
    node = _bulk(shop, "{ customers { edges { node { id } } } }")
    answer = httpx.get(node["url"])
    assert answer.status_code == 403 and "ExpiredToken" in answer.text


def test_a_change_is_delivered_as_a_signed_webhook_and_retried_after_a_failure(shop: Shop) -> None:
    received: list[tuple[dict[str, str], bytes]] = []
    statuses = iter([500, 200])

    async def hook(request: Request) -> Response:
        received.append((dict(request.headers), await request.body()))
        return Response(status_code=next(statuses))

    receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    with serve(receiver) as url:
        shop.config(webhook_retry_delays=[0.05])
        shop.control.post("/_emulator/webhooks", json={"url": f"{url}/hook", "secret": "s3cret"}).raise_for_status()
        (key,) = shop.put("customers", {"first_name": "Kari"})
        deadline = time.monotonic() + 5
        while len(received) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
    (first_headers, first_body), (retry_headers, retry_body) = received
    assert first_body == retry_body and first_headers["x-shopify-webhook-id"] == retry_headers["x-shopify-webhook-id"]
    assert first_headers["x-shopify-topic"] == "customers/create"
    signature = base64.b64encode(hmac.new(b"s3cret", first_body, hashlib.sha256).digest()).decode()
    assert first_headers["x-shopify-hmac-sha256"] == signature
    assert orjson.loads(first_body)["id"] == int(key)
    assert {"x-shopify-event-id", "x-shopify-shop-domain", "x-shopify-api-version"} <= set(first_headers)


def test_the_default_app_is_empty_and_seeds_on_request() -> None:
    app = emulator.app(seed={"customers": 3, "orders": 2})
    assert app.state.shopify.counts()["records"] == {
        "customers": 3,
        "orders": 2,
        "products": 0,
        "checkouts": 0,
        "inventory": 0,
    }
