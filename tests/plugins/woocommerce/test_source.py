"""Reading the emulated shop: pages that move while hub reads, shared seconds, refunds, customers' full reads."""

from __future__ import annotations

from collections import Counter

from hub.testing.source import read_all
from hub_plugins.woocommerce.source import WooCommerceSource
from tests.plugins.woocommerce.conftest import MakeSource, Shop, ids

AT = "2025-01-06T09:00:00Z"


def _minute(n: int) -> str:
    return f"2025-01-06T09:{n:02d}:00Z"


def test_rows_sliding_forward_during_a_read_are_neither_lost_nor_read_twice(
    shop: Shop, make_source: MakeSource
) -> None:
    keys = [key for n in range(20) for key in shop.put("orders", {}, updated_at=_minute(n))]
    source = make_source(shop)
    batches = source.read("orders", None)
    first = ids(next(batches).records)
    for key in first[:3]:  # three rows leave the list: every later row slides three places forward
        shop.delete("orders", key, at=_minute(30))
    rest = [record for batch in batches for record in batch.records]
    assert Counter(first + ids(rest)) == Counter(keys)
    assert sorted(str(r["id"]) for r in rest if r.get("_deleted")) == sorted(first[:3])


def test_more_rows_in_one_second_than_a_page_are_read_once_and_a_late_one_next_time(
    shop: Shop, make_source: MakeSource
) -> None:
    keys = shop.put("orders", *[{}] * 12, updated_at=AT)
    source = make_source(shop)
    records, cursor = read_all(source, "orders")
    assert Counter(ids(records)) == Counter(keys)
    late = shop.put("orders", {}, updated_at=AT)
    again, cursor = read_all(source, "orders", cursor)
    assert ids(again) == late
    assert ids(read_all(source, "orders", cursor)[0]) == []


def test_a_refunded_orders_refunds_come_with_their_lines(shop: Shop, make_source: MakeSource) -> None:
    refund = {"reason": "too small", "line_items": [{"sku": "WC-A", "quantity": 1}]}
    lines = [{"sku": "WC-A", "quantity": 2, "price": "300.00"}]
    shop.put("orders", {"line_items": lines, "refunds": [refund]}, updated_at=AT)
    [order], _ = read_all(make_source(shop), "orders")
    [returned] = order["refunds"]
    assert (returned["total"], returned["amount"], returned["reason"]) == ("-300.00", "300.00", "too small")
    [line] = returned["line_items"]
    assert (line["sku"], line["quantity"], line["total"], line["refund_id"]) == ("WC-A", -1, "-300.00", returned["id"])


def test_customers_are_not_read_again_before_customer_scan_every(shop: Shop, make_source: MakeSource) -> None:
    shop.put("customers", {}, updated_at=AT)
    source = make_source(shop, customer_scan_every="1h")
    records, cursor = read_all(source, "customers")
    shop.put("customers", {}, updated_at=_minute(5))
    assert len(ids(records)) == 1
    assert list(source.read("customers", cursor)) == []


def test_a_customer_who_is_no_longer_a_customer_is_not_taken_for_deleted(shop: Shop, make_source: MakeSource) -> None:
    staff, gone, _kept = shop.put("customers", {}, {}, {}, updated_at=AT)
    source = make_source(shop)
    _, cursor = read_all(source, "customers")
    shop.put("customers", {"_key": staff, "role": "shop_manager"}, updated_at=_minute(5))
    shop.delete("customers", gone)
    records, _ = read_all(source, "customers", cursor)
    assert [(str(r["id"]), r.get("_deleted")) for r in records] == [(gone, True)]


def test_a_customer_changed_behind_a_full_read_arrives_in_the_next_one(shop: Shop, make_source: MakeSource) -> None:
    keys = shop.put("customers", *[{}] * 12)  # changed now, as the read runs
    source: WooCommerceSource = make_source(shop)
    batches = source.read("customers", None)
    next(batches)
    shop.put("customers", {"_key": keys[0], "first_name": "Kari"})  # passed already
    shop.put("customers", {"_key": keys[-1], "first_name": "Ola"})  # not yet: read, at a later second maybe
    cursor = [batch.cursor for batch in batches][-1]
    records, _ = read_all(source, "customers", cursor)
    assert keys[0] in ids(records)


def test_check_says_what_to_look_at_when_the_api_path_is_wrong(shop: Shop, make_source: MakeSource) -> None:
    result = make_source(shop, api_path="/wp-json/wc/v9").check()
    assert not result.ok and "rest_no_route" in result.message and "permalinks" in result.message


def test_behind_tls_the_source_reads_with_http_basic(shop: Shop, make_source: MakeSource) -> None:
    shop.client.post("/_emulator/config", json={"tls": True}).raise_for_status()  # a TLS-terminating proxy
    keys = shop.put("products", *[{}] * 7, updated_at=AT)
    records, _ = read_all(make_source(shop, auth="basic"), "products")
    assert ids(records) == keys
    refused = make_source(shop, auth="basic", consumer_secret="cs_wrong").check()
    assert not refused.ok and "Consumer secret is invalid" in refused.message
