"""The Shopify source's reads: bulk first loads streamed, pages paced under the cost bucket, nothing truncated."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from hub.sandbox import serve
from hub.sources.http import SourceHttp
from hub.testing.source import read_all
from hub_plugins.shopify.bulk import BulkRunner, assemble
from hub_plugins.shopify.client import CostBucket
from hub_plugins.shopify.source import ShopifySource
from tests.plugins.shopify.conftest import Shop

MakeSource = Callable[..., ShopifySource]


def _refund(shop: Shop, order: str) -> None:
    line = shop.state.records["orders"][int(order)]["line_items"][0]
    refund = {"refund_line_items": [{"line_item_id": line["id"], "quantity": 1}]}
    shop.put("orders", {"_key": order, "refunds": [refund]}, updated_at="2025-01-07T09:00:00Z")


def test_a_bulk_first_load_and_a_paged_read_give_the_same_records(shop: Shop, make_source: MakeSource) -> None:
    shop.put("customers", {}, {})
    orders = shop.put("orders", {}, {}, {}, updated_at="2025-01-06T09:00:00Z")
    _refund(shop, orders[1])
    by_bulk, _ = read_all(make_source(shop, first_load="bulk"), "orders")
    by_pages, _ = read_all(make_source(shop, first_load="pages", page_size=2), "orders")
    assert sorted(by_bulk, key=lambda r: r["id"]) == sorted(by_pages, key=lambda r: r["id"])
    refunded = next(r for r in by_bulk if r["id"] == orders[1])
    assert refunded["refunds"][0]["refund_line_items"][0]["quantity"] == 1  # fetched by refund id after the bulk


def test_a_record_longer_than_its_page_arrives_whole(shop: Shop, make_source: MakeSource) -> None:
    (order,) = shop.put("orders", {"line_items": [{"sku": f"SKU-{n}", "quantity": 1} for n in range(23)]})
    records, _ = read_all(make_source(shop, first_load="pages"), "orders")
    assert [line["sku"] for line in records[0]["line_items"]] == [f"SKU-{n}" for n in range(23)]
    assert records[0]["id"] == order


def test_a_steady_paged_read_is_paced_and_never_throttled(shop: Shop, make_source: MakeSource) -> None:
    shop.config(bucket_max=120, restore_rate=400)  # each page asks for 2 + 25 x 4 = 102 points
    shop.put("customers", *({} for _ in range(60)))
    records, _ = read_all(make_source(shop, first_load="pages", page_size=25), "customers")
    assert len(records) == 60
    assert shop.state.throttled == 0


def test_a_throttled_answer_waits_what_the_restore_rate_needs() -> None:
    body = {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "extensions": {
            "cost": {
                "requestedQueryCost": 752,
                "actualQueryCost": None,
                "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 652, "restoreRate": 50.0},
            }
        },
    }
    assert CostBucket().throttled_wait(body) == pytest.approx(2.0)
    assert CostBucket().throttled_wait({"data": {}}) is None


def test_an_expired_bulk_result_is_loaded_again_from_a_new_operation(shop: Shop, make_source: MakeSource) -> None:
    created = shop.put("customers", *({} for _ in range(7)), updated_at="2025-01-06T09:00:00Z")
    source = make_source(shop, batch_size=3)
    first = next(iter(source.read("customers", None)))
    for op in shop.state.bulk_ops.values():
        op.expires = 0.0
    rest, _ = read_all(source, "customers", first.cursor)
    assert {r["id"] for r in first.records + rest} == set(created)
    assert len(shop.state.bulk_ops) == 2


def test_a_failed_bulk_operation_falls_back_to_pages(shop: Shop, make_source: MakeSource) -> None:
    created = shop.put("customers", {}, {}, {})
    shop.config(bulk_fail_next=True)
    records, cursor = read_all(make_source(shop), "customers")
    assert sorted(r["id"] for r in records) == sorted(created)
    assert cursor["ids"]


def test_the_bulk_result_is_read_as_a_stream_not_whole(make_source: MakeSource) -> None:
    """The first records are in hand while the server still holds the rest of the file back."""
    release = threading.Event()

    def body() -> Iterator[bytes]:
        yield b'{"id":"gid://shopify/Order/1"}\n{"id":"gid://shopify/LineItem/9","__parentId":"gid://shopify/Order/1"}\n'
        yield b'{"id":"gid://shopify/Order/2"}\n'
        release.wait(5)
        yield b'{"id":"gid://shopify/Order/3"}\n'

    async def result(request: Request) -> StreamingResponse:
        return StreamingResponse(body(), media_type="application/jsonl")

    storage = Starlette(routes=[Route("/result.jsonl", result)])
    with serve(storage) as url, SourceHttp(url, name="shop") as download:
        runner = BulkRunner(None, download, poll_interval=0.01, timeout=5)  # type: ignore[arg-type]
        records = assemble(runner.lines(f"{url}/result.jsonl", 0), "lineItems")
        first: Any = next(records)
        assert first == (
            {"id": "gid://shopify/Order/1", "lineItems": {"nodes": [{"id": "gid://shopify/LineItem/9"}]}},
            2,
        )
        release.set()
        assert [node["id"][-1] for node, _ in records] == ["2", "3"]


def test_a_deleted_product_is_read_once_as_a_tombstone(shop: Shop, make_source: MakeSource) -> None:
    products = shop.put("products", {}, {}, updated_at="2025-01-06T09:00:00Z")
    source = make_source(shop)
    _, cursor = read_all(source, "products")
    shop.control.delete(f"/_emulator/records/products/{products[0]}", params={"at": "2025-01-06T10:00:00Z"})
    second, cursor = read_all(source, "products", cursor)
    third, _ = read_all(source, "products", cursor)
    assert second == [{"_deleted": True, "id": products[0], "deleted_at": "2025-01-06T10:00:00Z"}]
    assert third == []


@pytest.mark.slow
def test_a_large_bulk_first_load_arrives_whole_in_batches(shop: Shop, make_source: MakeSource) -> None:
    shop.control.post("/_emulator/seed", json={"customers": 500, "orders": 5000}).raise_for_status()
    expected = {str(i): len(o["line_items"]) for i, o in shop.state.records["orders"].items()}
    batches = list(make_source(shop, batch_size=1000).read("orders", None))
    got = {r["id"]: len(r["line_items"]) for b in batches for r in b.records}
    assert got == expected
    assert len(batches) >= 5 and all(len(b.records) <= 1000 for b in batches)
