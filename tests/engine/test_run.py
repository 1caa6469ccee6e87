"""The sync engine end to end on real files and real SQLite: idempotent re-runs, rejects, cursors, drift."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.app import Hub
from hub.engine.run import SyncEngine
from hub.errors import SchemaOutOfDate
from hub.models import Reject, SyncState
from hub.schema import upgrade

MAPPING = """\
description: shop orders (JSONL), one order with its lines per record
key: "{id}"
entities:
  - entity: customer
    optional: true
    fields:
      external_id: customer.id
      email: {path: customer.email, transforms: [email]}
      phone: {path: customer.phone, transforms: [{e164: {region: "NO"}}]}
  - entity: order
    fields:
      external_id: {path: id, type: str}
      placed_at: {path: created_at, type: datetime}
      currency: {path: currency, default: NOK}
      total: {path: total_price, type: decimal}
  - entity: order_line
    each: line_items
    fields:
      order_external_id: {path: $.id, type: str}
      line_no: {path: $index, type: int}
      sku: sku
      quantity: {path: quantity, type: decimal}
      unit_price: {path: price, type: decimal}
"""


def order(n: int, email: str, *, created: str = "2025-03-01T10:00:00+01:00", **extra) -> dict:
    record = {
        "id": n,
        "created_at": created,
        "total_price": "199.00",
        "customer": {"id": "c-" + email.strip().lower(), "email": email, "phone": None},
        "line_items": [{"sku": f"SKU-{n}", "quantity": 1, "price": "199.00"}],
    }
    record.update(extra)
    return record


def write_project(tmp_path: Path, orders: list[dict], *, batch_size: int = 4, url: str = "sqlite:///hub.db") -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "orders.yaml").write_text(MAPPING, encoding="utf-8")
    with (tmp_path / "data" / "orders-1.jsonl").open("w", encoding="utf-8") as fh:
        for o in orders:
            fh.write(o if isinstance(o, str) else json.dumps(o))
            fh.write("\n")
    config = tmp_path / "hub.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            database: {{url: "{url}"}}
            project_dir: {tmp_path}
            timezone: Europe/Oslo
            batch_size: {batch_size}
            connectors:
              shop:
                plugin: files
                mapping: mappings/orders.yaml
                settings: {{streams: {{orders: {{paths: ["data/*.jsonl"], format: jsonl}}}}}}
            """
        ),
        encoding="utf-8",
    )
    return config


@pytest.fixture
def hubs(database_url):
    """Builds hubs on SQLite and on a real PostgreSQL, and closes their connections afterwards."""
    made: list[Hub] = []

    def make(tmp_path: Path, orders: list, **kwargs) -> Hub:
        hub = Hub.load(write_project(tmp_path, orders, url=database_url, **kwargs))
        upgrade(hub.engine)
        made.append(hub)
        return hub

    yield make
    for hub in made:
        hub.engine.dispose()


def counts(hub: Hub) -> dict[str, int]:
    with hub.engine.connect() as conn:
        return {
            t: conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one()
            for t in ("customer", "identity", "orders", "order_line", "consent", "consent_event", "reject")
        }


def test_a_sync_loads_orders_lines_and_customers(tmp_path, hubs):
    hub = hubs(tmp_path, [order(n, f"p{n % 3}@x.no") for n in range(10)])
    summary = SyncEngine(hub).sync()
    assert summary.ok
    assert counts(hub)["orders"] == 10
    assert counts(hub)["order_line"] == 10
    with hub.engine.connect() as conn:
        total = conn.execute(sa.text("SELECT sum(total) FROM orders")).scalar_one()
    assert float(total) == pytest.approx(1990.0)


def test_running_the_same_sync_twice_changes_nothing(tmp_path, hubs):
    hub = hubs(tmp_path, [order(n, f"p{n % 3}@x.no") for n in range(10)])
    SyncEngine(hub).sync()
    before = counts(hub)
    (tmp_path / "data" / "orders-1.jsonl").touch()
    second = SyncEngine(hub).sync()
    assert second.ok
    assert counts(hub) == before


def test_a_bad_record_is_rejected_with_its_payload_and_the_batch_goes_on(tmp_path, hubs):
    records = [order(1, "a@x.no"), order(2, "b@x.no", created="31/02/2025"), "{not json", order(3, "c@x.no")]
    hub = hubs(tmp_path, records)
    summary = SyncEngine(hub).sync()
    assert summary.streams[0].rejected == 2
    assert summary.streams[0].loaded == 2
    with hub.engine.connect() as conn:
        rejects = {r.stage: r for r in conn.execute(sa.select(Reject.__table__))}
    assert rejects["map"].payload["id"] == 2
    assert any("placed_at" in e for e in rejects["map"].errors)
    assert any("invalid JSON" in e for e in rejects["read"].errors)
    assert counts(hub)["orders"] == 2


def test_a_rejected_record_seen_again_is_not_a_second_reject(tmp_path, hubs):
    records = [order(1, "a@x.no", created="nonsense")]
    hub = hubs(tmp_path, records)
    SyncEngine(hub).sync()
    (tmp_path / "data" / "orders-1.jsonl").write_text(json.dumps(records[0]) + "\n\n", encoding="utf-8")
    SyncEngine(hub).sync()
    assert counts(hub)["reject"] == 1


def test_a_new_file_is_read_from_the_saved_cursor_alone(tmp_path, hubs):
    hub = hubs(tmp_path, [order(n, "a@x.no") for n in range(5)])
    SyncEngine(hub).sync()
    (tmp_path / "data" / "orders-2.jsonl").write_text(json.dumps(order(99, "a@x.no")) + "\n", encoding="utf-8")
    summary = SyncEngine(hub).sync()
    assert summary.streams[0].read == 1
    assert counts(hub)["orders"] == 6


def test_unknown_source_fields_are_ignored_and_listed(tmp_path, hubs):
    hub = hubs(tmp_path, [order(1, "a@x.no", gift_wrap=True)])
    SyncEngine(hub).sync()
    with hub.engine.connect() as conn:
        unknown = conn.execute(sa.select(SyncState.__table__.c.unknown_fields)).scalar_one()
    assert unknown == ["gift_wrap"]


def test_the_same_customer_across_orders_is_one_customer(tmp_path, hubs):
    records = [order(1, "Ola@X.no"), order(8, " ola@x.NO ")]  # same shop customer id 1001, email variants
    hub = hubs(tmp_path, records)
    SyncEngine(hub).sync()
    with hub.engine.connect() as conn:
        owners = conn.execute(sa.text("SELECT DISTINCT customer_id FROM orders")).all()
    assert len(owners) == 1
    assert counts(hub)["customer"] == 1


def test_the_run_history_keeps_counts_and_status(tmp_path, hubs):
    hub = hubs(tmp_path, [order(n, "a@x.no") for n in range(9)])
    SyncEngine(hub).sync()
    with hub.engine.connect() as conn:
        run = conn.execute(sa.text("SELECT * FROM sync_run")).one()
    assert (run.status, run.records_read, run.records_loaded, run.batches) == ("succeeded", 9, 9, 3)
    assert run.finished_at is not None


def test_an_out_of_date_database_is_refused_with_what_to_run(tmp_path):
    hub = Hub.load(write_project(tmp_path, [order(1, "a@x.no")]))
    with pytest.raises(SchemaOutOfDate, match="hub db upgrade"):
        SyncEngine(hub).sync()


def test_run_finished_observers_see_the_summary_and_a_failing_one_cannot_fail_the_run(tmp_path):
    from hub import hookimpl

    seen = []

    class Observer:
        @hookimpl
        def hub_run_finished(self, summary):
            seen.append((summary.ok, summary.records_read))

    class Broken:
        @hookimpl
        def hub_run_finished(self, summary):
            raise RuntimeError("observer bug")

    hub = Hub.load(write_project(tmp_path, [order(1, "a@x.no")]), plugins=[Observer(), Broken()])
    upgrade(hub.engine)
    summary = SyncEngine(hub).sync()
    hub.engine.dispose()
    assert summary.ok
    assert seen == [(True, 1)]
