"""Change detection after real loads: the demo data set through hub's engine, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.app import Hub
from hub.delivery.changes import enqueue_changes
from hub.engine.run import SyncEngine
from hub.models import SyncState
from hub_plugins.demo.generator import generate
from tests.delivery._changes_fixtures import REPO, load_hub, messages, write_project

CUSTOMERS = 120


@pytest.fixture
def demo_hub(tmp_path: Path, sqlite_url: str):
    """A hub whose sources read a small generated demo data set, with the recorder destination ``crm``."""
    hubs: list[Hub] = []

    def make(url: str = sqlite_url, **kwargs) -> Hub:
        generate(tmp_path / "var" / "demo", customers=CUSTOMERS, seed=11)
        hub = load_hub(write_project(tmp_path, url, demo=True, batch_size=50, **kwargs))
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        hub.engine.dispose()


def forget_cursors(hub: Hub) -> None:
    """Make the next sync read every file again, as a full re-sync of unchanged data would."""
    with hub.engine.begin() as conn:
        conn.execute(sa.delete(SyncState.__table__))


def scalar(hub: Hub, sql: str) -> int:
    with hub.engine.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def test_loads_then_enqueue_then_an_unchanged_resync_enqueues_nothing(demo_hub, database_url):
    hub = demo_hub(database_url)
    assert SyncEngine(hub).sync().ok
    first = enqueue_changes(hub, "crm")
    live = scalar(hub, "SELECT count(*) FROM customer WHERE merged_into IS NULL")
    owned = scalar(hub, "SELECT count(*) FROM orders WHERE customer_id IS NOT NULL")
    assert first.counts["contact_create"] == live
    assert first.counts["order"] == owned
    assert first.anonymous_orders == scalar(hub, "SELECT count(*) FROM orders WHERE customer_id IS NULL")
    assert len({m.idempotency_key for m in messages(hub)}) == live + owned

    forget_cursors(hub)
    assert SyncEngine(hub).sync().ok
    second = enqueue_changes(hub, "crm")
    assert second.counts == dict.fromkeys(second.counts, 0)
    assert len(messages(hub)) == live + owned


def test_a_changed_customer_in_the_erp_export_is_one_update(demo_hub, tmp_path):
    hub = demo_hub()
    SyncEngine(hub).sync()
    enqueue_changes(hub, "crm")
    export = tmp_path / "var" / "demo" / "erp" / "customers.csv"
    header, first, *rest = export.read_text(encoding="utf-8-sig").splitlines()
    columns = header.split(";")
    row = first.split(";")
    row[columns.index("fornavn")] = "Ragnhild"
    row[columns.index("endret")] = "2031-01-01 10:00:00"  # newer than anything: survivorship takes it
    export.write_text("\n".join([header, ";".join(row), *rest]) + "\n", encoding="utf-8-sig")
    assert SyncEngine(hub).sync().ok
    summary = enqueue_changes(hub, "crm")
    assert (summary.counts["contact_update"], summary.enqueued) == (1, 1)
    (update,) = [m for m in messages(hub) if m.idempotency_key.endswith(":v2")]
    assert update.payload["firstName"] == "Ragnhild"


def test_the_shipped_voyado_mapping_maps_the_demo_customers(demo_hub):
    hub = demo_hub(mapping=REPO / "mappings" / "voyado.yaml")
    SyncEngine(hub).sync()
    enqueue_changes(hub, "crm")
    contacts = [m.payload for m in messages(hub, kind="contact_upsert")]
    with hub.engine.connect() as conn:
        customers = {row.id: row for row in conn.execute(sa.text("SELECT * FROM customer WHERE merged_into IS NULL"))}
        consents = dict(conn.execute(sa.text("SELECT customer_id, status FROM consent WHERE channel = 'email'")).all())
    assert len(contacts) == len(customers)
    allowed = {
        "prepared",
        "_hub",
        "firstName",
        "lastName",
        "email",
        "mobilePhone",
        "birthDay",
        "street",
        "zipCode",
        "city",
        "countryCode",
        "lang",
        "externalId",
        "memberNumber",
        "preferences",
    }
    for contact in contacts:
        assert set(contact) <= allowed
        customer = customers[contact["_hub"]["customer_id"]]
        assert contact.get("email") == customer.email
        assert contact.get("mobilePhone") == customer.phone
        assert contact.get("memberNumber") == customer.member_no
        status = consents.get(customer.id)
        assert contact.get("preferences", {}).get("acceptsEmail") == (None if status is None else status == "opt_in")
    assert any("birthDay" in c and "externalId" in c for c in contacts)  # the ERP's customers
