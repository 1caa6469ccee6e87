"""Deletions the sources report (tombstones) are applied by the engine, per the stream mapping's target and key.

Two ``files`` connectors feed the model: ``shop`` (orders, carts, products, relations, customers, events) and
``erp`` (customers). A tombstone is a JSONL line ``{"_deleted": true, "id": ...}`` in a later file, as a source
yields it in the read after the deletion.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

from hub.app import Hub
from hub.audience.attributes import compute_attributes, touched_customers
from hub.config._audience import AttributesConfig
from hub.engine.deletions import deletion_keys
from hub.engine.run import StreamResult, SyncEngine

MAPPINGS = {
    "orders": """\
        key: "{id}"
        entities:
          - entity: customer
            optional: true
            fields:
              external_id: customer.id
              email: {path: customer.email, transforms: [email]}
          - entity: order
            fields:
              external_id: {path: id, type: str}
              placed_at: {path: created_at, type: datetime}
          - entity: order_line
            each: lines
            fields:
              order_external_id: {path: $.id, type: str}
              line_no: {path: $index, type: int}
              sku: sku
              quantity: {path: quantity, type: decimal}
              unit_price: {path: price, type: decimal}
          - entity: order
            each: refunds
            fields:
              external_id: {path: id, type: str, transforms: [{prefix: "refund-"}]}
              placed_at: {path: created_at, type: datetime}
              is_return: {value: true}
              total: {path: amount, type: decimal}
    """,
    "carts": """\
        entities:
          - entity: customer
            fields:
              email: {path: email, transforms: [email]}
          - entity: cart
            fields:
              external_id: id
              updated_at: {path: updated_at, type: datetime}
    """,
    "products": """\
        entities:
          - entity: product
            fields:
              sku: sku
              name: name
              product_group: group
          - entity: product_relation
            each: accessories
            fields:
              sku: $.sku
              related_sku: sku
              kind: {value: accessory}
    """,
    "relations": """\
        entities:
          - entity: product_relation
            fields:
              sku: sku
              related_sku: related
              kind: {value: cross_sell}
    """,
    "customers": """\
        entities:
          - entity: customer
            fields:
              external_id: id
              email: {path: email, transforms: [email]}
              first_name: name
    """,
    "events": """\
        entities:
          - entity: customer
            optional: true
            fields:
              email: {path: email, transforms: [email]}
          - entity: event
            fields:
              external_id: id
              type: {value: page_view}
              at: {path: at, type: datetime}
    """,
}
SHOP_STREAMS = ("orders", "carts", "products", "relations", "customers", "events")


class Project:
    """A hub project on a temp folder: ``feed`` drops one more JSONL file, ``sync`` reads what is new."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.files = 0
        (root / "mappings").mkdir()
        for stream, text in MAPPINGS.items():
            (root / "mappings" / f"{stream}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")

        def streams(connector: str, names: tuple[str, ...]) -> str:
            return ", ".join(f'{s}: {{paths: ["data/{connector}/{s}-*.jsonl"], format: jsonl}}' for s in names)

        def mapping(names: tuple[str, ...]) -> str:
            return ", ".join(f"{s}: mappings/{s}.yaml" for s in names)

        (root / "hub.yaml").write_text(
            textwrap.dedent(
                f"""\
                database: {{url: "{url}"}}
                project_dir: {root}
                timezone: Europe/Oslo
                batch_size: 3
                connectors:
                  shop:
                    plugin: files
                    mapping: {{{mapping(SHOP_STREAMS)}}}
                    settings: {{streams: {{{streams("shop", SHOP_STREAMS)}}}}}
                  erp:
                    plugin: files
                    mapping: {{{mapping(("customers",))}}}
                    settings: {{streams: {{{streams("erp", ("customers",))}}}}}
                """
            ),
            encoding="utf-8",
        )
        self.hub = Hub.load(root / "hub.yaml")
        SQLModel.metadata.create_all(self.hub.engine)  # the tables alone, as in the engine's other tests

    def feed(self, connector: str, stream: str, *records: dict[str, Any]) -> None:
        self.files += 1
        folder = self.root / "data" / connector
        folder.mkdir(parents=True, exist_ok=True)
        lines = "".join(json.dumps(record) + "\n" for record in records)
        (folder / f"{stream}-{self.files:04d}.jsonl").write_text(lines, encoding="utf-8")

    def sync(self, connector: str, stream: str) -> StreamResult:
        result = SyncEngine(self.hub).sync_stream(connector, stream)
        assert result.status == "succeeded", result.error
        return result

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        with self.hub.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(sql), params)]

    def count(self, table: str) -> int:
        return int(self.rows(f'SELECT count(*) FROM "{table}"')[0][0])


@pytest.fixture
def project(tmp_path: Path, database_url: str) -> Iterator[Project]:
    made = Project(tmp_path, database_url)
    yield made
    made.hub.close()


def gone(key: Any) -> dict[str, Any]:
    return {"_deleted": True, "id": key, "deleted_at": "2025-03-02T10:00:00Z"}


def order(n: int, email: str = "ola@x.no", *, lines: int = 2, **extra: Any) -> dict[str, Any]:
    items = [{"sku": f"SKU-{n}-{i}", "quantity": 1, "price": "100.00"} for i in range(lines)]
    return {
        "id": f"o{n}",
        "created_at": "2025-03-01T10:00:00+01:00",
        "customer": {"id": f"c-{email}", "email": email},
        "lines": items,
        **extra,
    }


def customer(key: str, email: str, name: str = "Ola") -> dict[str, Any]:
    return {"id": key, "email": email, "name": name}


# -------------------------------------------------------------------------------------------------- orders


def test_a_deleted_order_goes_with_its_lines_and_no_longer_counts_at_the_next_compute(project: Project) -> None:
    project.feed("shop", "orders", order(1), order(2), order(3, "kari@x.no"))
    project.sync("shop", "orders")
    config = AttributesConfig()
    with project.hub.engine.begin() as conn:
        compute_attributes(conn, config, datetime.now(UTC))
    before_deletion = datetime.now(UTC)
    project.feed("shop", "orders", gone("o2"))
    result = project.sync("shop", "orders")
    assert (result.deleted, result.deletions_ignored) == (1, 0)
    assert project.rows("SELECT external_id FROM orders ORDER BY external_id") == [("o1",), ("o3",)]
    assert project.count("order_line") == 4
    ola = project.rows("SELECT customer_id FROM orders WHERE external_id = 'o1'")[0][0]
    with project.hub.engine.begin() as conn:
        touched = touched_customers(conn, before_deletion)
        assert touched == [ola]
        compute_attributes(conn, config, datetime.now(UTC), customer_ids=touched)
    assert project.rows("SELECT orders_lifetime FROM customer_attributes WHERE customer_id = :c", c=ola) == [(1,)]


def test_a_tombstone_read_twice_deletes_once(project: Project) -> None:
    project.feed("shop", "orders", order(1), order(2))
    project.sync("shop", "orders")
    project.feed("shop", "orders", gone("o1"))
    project.sync("shop", "orders")
    project.feed("shop", "orders", gone("o1"))
    again = project.sync("shop", "orders")
    assert (again.deleted, again.deletions_ignored, again.rejected) == (0, 1, 0)
    assert project.rows("SELECT external_id FROM orders") == [("o2",)]


def test_a_tombstone_for_a_record_never_loaded_is_counted_and_ignored_not_rejected(project: Project) -> None:
    project.feed("shop", "orders", order(1), gone("o404"))
    result = project.sync("shop", "orders")
    assert (result.read, result.loaded, result.rejected) == (2, 1, 0)
    assert (result.deleted, result.deletions_ignored) == (0, 1)
    assert project.count("reject") == 0


def test_a_deleted_order_comes_back_when_the_source_creates_it_again_in_a_later_batch(project: Project) -> None:
    project.feed("shop", "orders", order(1))
    project.sync("shop", "orders")
    project.feed("shop", "orders", gone("o1"))
    project.sync("shop", "orders")
    project.feed("shop", "orders", order(1, lines=3))
    result = project.sync("shop", "orders")
    assert (result.loaded, result.deleted) == (1, 0)
    assert project.rows("SELECT count(*) FROM order_line JOIN orders ON orders.id = order_id") == [(3,)]


def test_a_record_after_its_tombstone_in_the_same_batch_supersedes_it(project: Project) -> None:
    project.feed("shop", "orders", order(1), order(2))
    project.sync("shop", "orders")
    project.feed("shop", "orders", gone("o1"), order(1), order(2), gone("o2"))
    result = project.sync("shop", "orders")
    assert (result.deleted, result.deletions_ignored) == (1, 1)
    assert project.rows("SELECT external_id FROM orders") == [("o1",)]


def test_a_deletion_commits_with_its_batch_and_is_applied_again_after_a_crash(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.feed("shop", "orders", order(1), order(2))
    project.sync("shop", "orders")
    project.feed("shop", "orders", gone("o1"))
    save = SyncEngine._save_progress

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("power cut before the commit")

    monkeypatch.setattr(SyncEngine, "_save_progress", crash)
    failed = SyncEngine(project.hub).sync_stream("shop", "orders")
    assert failed.status == "failed"
    assert project.count("orders") == 2  # rolled back with its cursor
    monkeypatch.setattr(SyncEngine, "_save_progress", save)
    assert project.sync("shop", "orders").deleted == 1
    assert project.rows("SELECT external_id FROM orders") == [("o2",)]


def test_the_run_history_counts_deletions_apart_from_loaded_records(project: Project) -> None:
    project.feed("shop", "orders", order(1), order(2))
    project.sync("shop", "orders")
    project.feed("shop", "orders", gone("o1"), gone("o9"), order(3))
    run_id = project.sync("shop", "orders").run_id
    columns = "records_read, records_loaded, records_rejected, records_deleted, deletions_ignored"
    assert project.rows(f"SELECT {columns} FROM sync_run WHERE id = :r", r=run_id) == [(3, 1, 0, 1, 1)]


def test_an_orders_keys_are_read_through_its_mappings_transforms(tmp_path: Path, sqlite_url: str) -> None:
    keys = deletion_keys(Project(tmp_path, sqlite_url).hub, "shop", "orders")
    tombstone = {"_deleted": True, "id": 7, "refunds": [{"id": 70}, {"id": 71}]}
    assert keys.target == "order"
    assert keys.keys(tombstone) == [("7",), ("refund-70",), ("refund-71",)]


# -------------------------------------------------------------------------------------------------- carts, events


def test_a_deleted_cart_is_deleted(project: Project) -> None:
    carts = [{"id": f"k{n}", "email": "ola@x.no", "updated_at": "2025-03-01T10:00:00Z"} for n in range(3)]
    project.feed("shop", "carts", *carts)
    project.sync("shop", "carts")
    project.feed("shop", "carts", gone("k1"))
    assert project.sync("shop", "carts").deleted == 1
    assert project.rows("SELECT external_id FROM cart ORDER BY external_id") == [("k0",), ("k2",)]


def test_a_deleted_event_is_deleted(project: Project) -> None:
    events = [{"id": f"e{n}", "email": "ola@x.no", "at": "2025-03-01T10:00:00Z"} for n in range(3)]
    project.feed("shop", "events", *events)
    project.sync("shop", "events")
    project.feed("shop", "events", gone("e0"), gone("e2"))
    assert project.sync("shop", "events").deleted == 2
    assert project.rows("SELECT external_id FROM event") == [("e1",)]


# -------------------------------------------------------------------------------------------------- products


def product(sku: str, *accessories: str, name: str = "Boot") -> dict[str, Any]:
    return {"sku": sku, "name": name, "group": "boots", "accessories": [{"sku": a} for a in accessories]}


def test_a_deleted_product_is_marked_and_past_order_lines_keep_it(project: Project) -> None:
    project.feed("shop", "products", product("B1", "WAX"), product("B2", "WAX"))
    project.sync("shop", "products")
    project.feed("shop", "orders", {**order(1, lines=0), "lines": [{"sku": "B1", "quantity": 1, "price": "900"}]})
    project.sync("shop", "orders")
    project.feed("shop", "products", {"_deleted": True, "sku": "B1"})
    assert project.sync("shop", "products").deleted == 1
    marked = project.rows("SELECT sku FROM product WHERE deleted_at IS NOT NULL")
    assert (marked, project.count("product")) == ([("B1",)], 2)
    assert project.rows("SELECT sku, related_sku FROM product_relation") == [("B2", "WAX")]
    assert project.rows("SELECT p.name FROM order_line l JOIN product p ON p.sku = l.sku") == [("Boot",)]


def test_a_product_loaded_again_after_its_deletion_is_no_longer_marked(project: Project) -> None:
    project.feed("shop", "products", product("B1", "WAX"))
    project.sync("shop", "products")
    project.feed("shop", "products", {"_deleted": True, "sku": "B1"})
    project.sync("shop", "products")
    project.feed("shop", "products", product("B1", "WAX", name="Boot II"))
    project.sync("shop", "products")
    assert project.rows("SELECT name, deleted_at FROM product") == [("Boot II", None)]
    assert project.count("product_relation") == 1


def test_a_deleted_relation_is_deleted(project: Project) -> None:
    project.feed("shop", "relations", {"sku": "B1", "related": "S1"}, {"sku": "B1", "related": "S2"})
    project.sync("shop", "relations")
    project.feed("shop", "relations", {"_deleted": True, "id": "B1>S1", "sku": "B1", "related": "S1"})
    assert project.sync("shop", "relations").deleted == 1
    assert project.rows("SELECT related_sku FROM product_relation") == [("S2",)]


# -------------------------------------------------------------------------------------------------- customers


def test_a_customer_deleted_in_one_source_loses_that_link_and_stays_for_the_other(project: Project) -> None:
    project.feed("shop", "customers", customer("s1", "ola@x.no"))
    project.sync("shop", "customers")
    project.feed("erp", "customers", customer("E-7", "ola@x.no"))
    project.sync("erp", "customers")
    project.feed("shop", "customers", gone("s1"))
    assert project.sync("shop", "customers").deleted == 1
    keys = project.rows("SELECT kind, system, value FROM identity ORDER BY kind, system")
    assert keys == [("email", "", "ola@x.no"), ("external_id", "erp", "E-7")]
    assert project.rows("SELECT erased_at FROM customer") == [(None,)]


def test_a_customer_no_other_source_knows_is_erased_and_a_recreation_is_a_new_customer(project: Project) -> None:
    project.feed("shop", "customers", customer("s1", "ola@x.no"), customer("s2", "kari@x.no", "Kari"))
    project.sync("shop", "customers")
    project.feed("shop", "customers", gone("s1"))
    assert project.sync("shop", "customers").deleted == 1
    erased = project.rows("SELECT id FROM customer WHERE erased_at IS NOT NULL")
    assert len(erased) == 1
    assert project.rows("SELECT count(*) FROM identity WHERE customer_id = :c", c=erased[0][0]) == [(0,)]
    project.feed("shop", "customers", customer("s1", "ola@x.no", "Ola again"))
    project.sync("shop", "customers")
    assert project.rows("SELECT first_name, erased_at IS NULL FROM customer ORDER BY id") == [
        ("Ola", False),
        ("Kari", True),
        ("Ola again", True),
    ]


def test_an_event_from_another_source_keeps_the_customer(project: Project) -> None:
    project.feed("erp", "customers", customer("E-1", "per@x.no"))
    project.sync("erp", "customers")
    project.feed("shop", "events", {"id": "e1", "email": "per@x.no", "at": "2025-03-01T10:00:00Z"})
    project.sync("shop", "events")
    project.feed("erp", "customers", gone("E-1"))
    assert project.sync("erp", "customers").deleted == 1
    assert project.rows("SELECT erased_at FROM customer") == [(None,)]
    assert ("external_id", "erp") not in project.rows("SELECT kind, system FROM identity")
