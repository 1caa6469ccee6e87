"""Change detection: what enqueue_changes puts in the outbox, on real SQLite (and PostgreSQL where marked)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.app import Hub
from hub.delivery.changes import SCAN_OVERLAP, enqueue, enqueue_changes, rebuild_payload
from hub.delivery.outcomes import InvalidMessage
from hub.errors import ConfigError, MappingError
from hub.models import DestinationState, Message
from hub.watermarks import QUICK_OVERLAP, SWEEP_EVERY
from tests.delivery._changes_fixtures import (
    T0,
    add_consent,
    add_customer,
    add_identity,
    add_order,
    add_product,
    customer_t,
    load_hub,
    message_t,
    messages,
    states,
    touch,
    write_project,
)

LATER = T0 + timedelta(hours=1)
MUCH_LATER = T0 + timedelta(days=1)


@pytest.fixture
def made() -> list[Hub]:
    hubs: list[Hub] = []
    yield hubs
    for hub in hubs:
        hub.engine.dispose()


@pytest.fixture
def make_hub(tmp_path: Path, sqlite_url: str, made: list[Hub]):
    """A hub on SQLite with a ``crm`` recorder destination; keyword arguments go to write_project."""

    def make(**kwargs) -> Hub:
        hub = load_hub(write_project(tmp_path, kwargs.pop("url", sqlite_url), **kwargs))
        made.append(hub)
        return hub

    return make


def three_customers(hub: Hub) -> None:
    with hub.engine.begin() as conn:
        add_customer(conn, 1, email="kari@example.no", first_name="Kari")
        add_customer(conn, 2, email="ola@example.no", phone="+4791234567")
        add_customer(conn, 3, email="per@example.no")
        add_identity(conn, 1, "external_id", "K1", system="erp")
        add_consent(conn, 1, "email", "opt_in")


# ------------------------------------------------------------------------------------------------ contacts


def test_the_first_pass_enqueues_an_upsert_per_live_customer(make_hub):
    hub = make_hub()
    three_customers(hub)
    summary = enqueue_changes(hub, "crm", now=LATER)
    assert summary.counts == {"contact_create": 3, "contact_update": 0, "contact_delete": 0, "order": 0, "invalid": 0}
    rows = messages(hub)
    assert [r.idempotency_key for r in rows] == [f"crm:contact_upsert:{n}:v1" for n in (1, 2, 3)]
    assert {r.status for r in rows} == {"pending"}
    assert rows[0].payload == {
        "prepared": "contact_upsert",
        "email": "kari@example.no",
        "firstName": "Kari",
        "erpId": "K1",
        "prefs": {"email": True},
        "_hub": {
            "customer_id": 1,
            "email": "kari@example.no",
            "phone": None,
            "member_no": None,
            "external_ids": {"erp": "K1"},
        },
    }


def test_a_pass_with_nothing_changed_enqueues_nothing(make_hub):
    hub = make_hub()
    three_customers(hub)
    enqueue_changes(hub, "crm", now=LATER)
    second = enqueue_changes(hub, "crm", now=MUCH_LATER)
    assert second.enqueued == 0
    assert len(messages(hub)) == 3


def test_a_changed_field_enqueues_the_next_version_and_skips_the_pending_one(make_hub):
    hub = make_hub()
    three_customers(hub)
    enqueue_changes(hub, "crm", now=LATER)
    with hub.engine.begin() as conn:
        touch(conn, 1, LATER + timedelta(minutes=1), first_name="Karianne")
    summary = enqueue_changes(hub, "crm", now=MUCH_LATER)
    assert summary.counts["contact_update"] == 1
    assert summary.superseded == 1
    versions = {r.idempotency_key: (r.status, r.payload.get("firstName")) for r in messages(hub, customer_id=1)}
    assert versions == {
        "crm:contact_upsert:1:v1": ("skipped", "Kari"),
        "crm:contact_upsert:1:v2": ("pending", "Karianne"),
    }
    assert states(hub)[1].version == 2


def test_an_upsert_already_in_flight_is_not_superseded(make_hub):
    hub = make_hub()
    three_customers(hub)
    enqueue_changes(hub, "crm", now=LATER)
    with hub.engine.begin() as conn:
        conn.execute(message_t.update().values(status="in_flight"))
        touch(conn, 1, LATER, first_name="Karianne")
    enqueue_changes(hub, "crm", now=MUCH_LATER)
    assert [r.status for r in messages(hub, customer_id=1)] == ["in_flight", "pending"]


def test_a_change_to_an_unmapped_column_enqueues_nothing(make_hub):
    hub = make_hub()
    three_customers(hub)
    enqueue_changes(hub, "crm", now=LATER)
    with hub.engine.begin() as conn:
        touch(conn, 2, LATER, gender="f", company_name="Acme")
    summary = enqueue_changes(hub, "crm", now=MUCH_LATER)
    assert (summary.scanned, summary.unchanged, summary.enqueued) == (1, 1, 0)


def test_a_new_consent_is_a_change_though_the_customer_row_is_untouched(make_hub):
    hub = make_hub()
    three_customers(hub)
    enqueue_changes(hub, "crm", now=LATER)
    with hub.engine.begin() as conn:
        add_consent(conn, 3, "email", "opt_out", at=LATER)
    summary = enqueue_changes(hub, "crm", now=MUCH_LATER)
    assert summary.scanned == 1
    assert messages(hub, idempotency_key="crm:contact_upsert:3:v2")[0].payload["prefs"] == {"email": False}


def test_a_new_identity_is_a_change(make_hub):
    hub = make_hub()
    three_customers(hub)
    enqueue_changes(hub, "crm", now=LATER)
    with hub.engine.begin() as conn:
        add_identity(conn, 2, "external_id", "K2", system="erp", at=LATER)
    enqueue_changes(hub, "crm", now=MUCH_LATER)
    assert messages(hub, idempotency_key="crm:contact_upsert:2:v2")[0].payload["erpId"] == "K2"


def test_only_customers_touched_since_the_watermark_less_the_overlap_are_scanned(make_hub):
    hub = make_hub()
    three_customers(hub)
    enqueue_changes(hub, "crm", now=MUCH_LATER)
    with hub.engine.begin() as conn:
        touch(conn, 1, MUCH_LATER - SCAN_OVERLAP + timedelta(seconds=1))  # committed late: inside the overlap
        touch(conn, 2, MUCH_LATER - SCAN_OVERLAP - timedelta(seconds=1), first_name="Not seen")
    summary = enqueue_changes(hub, "crm", now=MUCH_LATER + timedelta(hours=1))
    assert summary.scanned == 1
    with hub.engine.connect() as conn:
        watermark = conn.execute(sa.select(DestinationState.__table__.c.customers_scanned_at)).scalar_one()
    assert watermark == MUCH_LATER + timedelta(hours=1)


def test_a_scan_within_a_minute_of_the_last_sweep_looks_back_seconds_and_the_next_sweep_minutes(make_hub):
    hub = make_hub()
    three_customers(hub)
    assert enqueue_changes(hub, "crm", now=MUCH_LATER).swept  # the first scan is a sweep
    with hub.engine.begin() as conn:
        touch(conn, 1, MUCH_LATER - QUICK_OVERLAP + timedelta(seconds=1))  # a webhook's short transaction
        touch(conn, 2, MUCH_LATER - timedelta(minutes=2), first_name="Long sync")  # a long one, committed late
    quick = enqueue_changes(hub, "crm", now=MUCH_LATER + timedelta(seconds=30))
    assert (quick.swept, quick.scanned) == (False, 1)
    sweep = enqueue_changes(hub, "crm", now=MUCH_LATER + SWEEP_EVERY)
    assert (sweep.swept, sweep.scanned) == (True, 2)  # customer 2 now; customer 1 again, unchanged
    assert messages(hub, idempotency_key="crm:contact_upsert:2:v2")[0].payload["firstName"] == "Long sync"
    with hub.engine.connect() as conn:
        row = conn.execute(sa.select(DestinationState.__table__)).one()
    assert (row.customers_scanned_at, row.customers_swept_at) == (MUCH_LATER + SWEEP_EVERY,) * 2


def test_invalid_payloads_are_dead_letters_with_the_reason_and_are_not_stored_twice(make_hub):
    hub = make_hub(settings={"require": ["email"]})
    with hub.engine.begin() as conn:
        add_customer(conn, 1, phone="+4791234567")
        add_customer(conn, 2, email="ola@example.no")
    summary = enqueue_changes(hub, "crm", now=LATER)
    assert (summary.counts["invalid"], summary.counts["contact_create"]) == (1, 1)
    (dead,) = messages(hub, status="dead")
    assert (dead.customer_id, dead.error_class, dead.last_error) == (1, "invalid", "no email")
    with hub.engine.begin() as conn:
        touch(conn, 1, LATER)  # touched, still invalid: the same dead letter is not stored again
    assert enqueue_changes(hub, "crm", now=MUCH_LATER).counts["invalid"] == 0
    with hub.engine.begin() as conn:
        touch(conn, 1, MUCH_LATER, email="kari@example.no")
    fixed = enqueue_changes(hub, "crm", now=MUCH_LATER + timedelta(hours=1))
    assert fixed.counts["contact_create"] == 1  # the destination never had it
    assert messages(hub, idempotency_key="crm:contact_upsert:1:v2")[0].status == "pending"


def test_a_transform_that_refuses_a_value_makes_the_message_invalid(make_hub):
    mapping = "fields:\n  email: {path: customer.email, transforms: [email]}\n"
    hub = make_hub(mapping=mapping)
    with hub.engine.begin() as conn:
        add_customer(conn, 1, email="not an address")
    assert enqueue_changes(hub, "crm", now=LATER).counts["invalid"] == 1
    (dead,) = messages(hub)
    assert dead.last_error.startswith("email: email:")


def test_every_batch_commits_and_a_crash_neither_loses_nor_doubles_a_message(make_hub):
    hub = make_hub(batch_size=3, settings={"fail_on": ["c7@example.no"]})
    with hub.engine.begin() as conn:
        for n in range(1, 11):
            add_customer(conn, n, email=f"c{n}@example.no")
    with pytest.raises(RuntimeError):
        enqueue_changes(hub, "crm", now=LATER)
    assert len(messages(hub)) == 6  # two batches of three committed, the third died with the crash
    healed = load_hub(hub.config.project_dir / "hub.yaml")  # the same project, a healthy plugin
    healed.config.connectors["crm"].settings.fail_on.clear()
    summary = enqueue_changes(healed, "crm", now=LATER)
    healed.engine.dispose()
    assert summary.counts["contact_create"] == 4
    assert sorted(r.customer_id for r in messages(hub)) == list(range(1, 11))


def test_dry_run_counts_the_same_and_writes_nothing(make_hub):
    hub = make_hub(batch_size=2)
    three_customers(hub)
    with hub.engine.begin() as conn:
        add_order(conn, 1, 1)
    dry = enqueue_changes(hub, "crm", dry_run=True, now=LATER)
    assert messages(hub) == []
    assert states(hub) == {}
    real = enqueue_changes(hub, "crm", now=LATER)
    assert (
        dry.counts
        == real.counts
        == {
            "contact_create": 3,
            "contact_update": 0,
            "contact_delete": 0,
            "order": 1,
            "invalid": 0,
        }
    )


def test_a_connector_that_is_not_a_destination_is_a_config_error(tmp_path, sqlite_url, made):
    config = write_project(tmp_path, sqlite_url, demo=True)
    hub = load_hub(config)
    made.append(hub)
    with pytest.raises(ConfigError, match=r"'erp' .* is not a destination"):
        enqueue_changes(hub, "erp")


def test_a_contact_destination_without_a_mapping_is_a_located_error(tmp_path, sqlite_url, made):
    config = write_project(tmp_path, sqlite_url)
    config.write_text(config.read_text().replace(f"    mapping: {tmp_path}/mappings/crm.yaml\n", ""))
    hub = load_hub(config)
    made.append(hub)
    with pytest.raises(MappingError, match=r"connectors\.crm\.mapping: a destination that takes contact_upsert"):
        enqueue_changes(hub, "crm")


# ------------------------------------------------------------------------------------------------- merges


def merge(conn: sa.Connection, merged: int, survivor: int, at) -> None:
    conn.execute(customer_t.update().where(customer_t.c.id == merged).values(merged_into=survivor, updated_at=at))


def test_a_customer_merged_away_gets_a_delete_with_its_remote_id_and_its_state_goes(make_hub):
    hub = make_hub()
    three_customers(hub)
    enqueue_changes(hub, "crm", now=LATER)
    with hub.engine.begin() as conn:
        conn.execute(message_t.update().values(status="sent"))
        conn.execute(sa.text("UPDATE outbound_state SET remote_id = 'R-' || customer_id"))
        merge(conn, 3, 1, LATER)
    summary = enqueue_changes(hub, "crm", now=MUCH_LATER)
    assert summary.counts["contact_delete"] == 1
    (delete,) = messages(hub, kind="contact_delete")
    assert delete.idempotency_key == "crm:contact_delete:3"
    assert delete.remote_ref == "R-3"
    assert delete.payload["_hub"] == {
        "customer_id": 3,
        "email": "per@example.no",
        "phone": None,
        "member_no": None,
        "external_ids": {},
        "merged_into": 1,
        "remote_id": "R-3",
    }
    assert 3 not in states(hub)
    assert enqueue_changes(hub, "crm", now=MUCH_LATER + timedelta(hours=1)).enqueued == 0


def test_an_erased_customer_gets_one_delete_and_is_never_upserted_again(make_hub):
    hub = make_hub()
    three_customers(hub)
    enqueue_changes(hub, "crm", now=LATER)
    with hub.engine.begin() as conn:
        conn.execute(message_t.update().values(status="sent"))
        conn.execute(sa.text("UPDATE outbound_state SET remote_id = 'R-' || customer_id"))
        # A source reported the person deleted and no other source knows them (hub.engine.deletions).
        conn.execute(sa.text("UPDATE customer SET erased_at = :at, first_name = 'changed' WHERE id = 2"), {"at": LATER})
    summary = enqueue_changes(hub, "crm", now=MUCH_LATER)
    assert summary.counts["contact_delete"] == 1
    (delete,) = messages(hub, kind="contact_delete")
    assert (delete.customer_id, delete.remote_ref) == (2, "R-2")
    assert delete.payload["_hub"]["merged_into"] is None
    assert [m.kind for m in messages(hub, customer_id=2)] == ["contact_upsert", "contact_delete"]
    assert 2 not in states(hub)
    assert enqueue_changes(hub, "crm", now=MUCH_LATER + timedelta(hours=1)).enqueued == 0


def test_a_survivor_without_a_contact_adopts_the_merged_customers_instead_of_a_delete(make_hub):
    hub = make_hub()
    three_customers(hub)
    enqueue_changes(hub, "crm", now=LATER)
    with hub.engine.begin() as conn:
        conn.execute(message_t.update().values(status="sent"))
        conn.execute(sa.text("UPDATE outbound_state SET remote_id = 'R-3' WHERE customer_id = 3"))
        merge(conn, 3, 1, LATER)
    summary = enqueue_changes(hub, "crm", now=MUCH_LATER)
    assert summary.counts["contact_delete"] == 0  # the contact (and its history at the destination) is kept
    assert states(hub)[1].remote_id == "R-3" and 3 not in states(hub)


def test_a_merged_customer_whose_contact_is_already_the_survivors_gets_no_delete(make_hub):
    hub = make_hub()
    three_customers(hub)
    enqueue_changes(hub, "crm", now=LATER)
    with hub.engine.begin() as conn:
        conn.execute(message_t.update().values(status="sent"))
        conn.execute(sa.text("UPDATE outbound_state SET remote_id = 'R-same' WHERE customer_id IN (1, 3)"))
        merge(conn, 3, 1, LATER)
    assert enqueue_changes(hub, "crm", now=MUCH_LATER).counts["contact_delete"] == 0
    assert states(hub)[1].remote_id == "R-same"


def test_a_merged_customer_the_destination_never_had_gets_no_delete_and_its_pending_upsert_is_skipped(make_hub):
    hub = make_hub(settings={"require": ["firstName"]})
    three_customers(hub)  # only customer 1 has a first name: 2 and 3 are invalid, never sent
    enqueue_changes(hub, "crm", now=LATER)
    with hub.engine.begin() as conn:
        merge(conn, 2, 1, LATER)
    assert enqueue_changes(hub, "crm", now=MUCH_LATER).counts["contact_delete"] == 0
    assert 2 not in states(hub)


def test_pending_upserts_of_a_merged_customer_are_skipped(make_hub):
    hub = make_hub()
    three_customers(hub)
    enqueue_changes(hub, "crm", now=LATER)
    with hub.engine.begin() as conn:
        merge(conn, 2, 1, LATER)
    enqueue_changes(hub, "crm", now=MUCH_LATER)
    assert [r.status for r in messages(hub, customer_id=2)] == ["skipped", "pending"]
    assert [r.kind for r in messages(hub, customer_id=2)] == ["contact_upsert", "contact_delete"]


def test_a_destination_without_deletes_only_forgets_the_merged_customer(make_hub):
    hub = make_hub(plugin="contacts_only")
    three_customers(hub)
    enqueue_changes(hub, "crm", now=LATER)
    with hub.engine.begin() as conn:
        merge(conn, 2, 1, LATER)
    summary = enqueue_changes(hub, "crm", now=MUCH_LATER)
    assert summary.counts["contact_delete"] == 0
    assert 2 not in states(hub)
    assert messages(hub, kind="contact_delete") == []


# -------------------------------------------------------------------------------------------------- orders


def test_orders_with_a_customer_are_enqueued_once_with_the_survivors_keys(make_hub):
    hub = make_hub()
    three_customers(hub)
    with hub.engine.begin() as conn:
        add_product(conn, "AB-1", "Espresso machine", "coffee")
        add_order(conn, 1, 1, lines=[("AB-1", "1", "4990.00")])
        add_order(conn, 2, None)  # a walk-in
        add_order(conn, 3, 2)
        merge(conn, 2, 1, T0)
    summary = enqueue_changes(hub, "crm", now=LATER)
    assert (summary.counts["order"], summary.anonymous_orders) == (2, 1)
    orders = messages(hub, kind="order")
    assert [r.idempotency_key for r in orders] == ["crm:order:pos:R-1", "crm:order:pos:R-3"]
    assert [r.payload["_hub"]["customer_id"] for r in orders] == [1, 1]
    assert orders[0].payload["lines"][0]["product_name"] == "Espresso machine"
    assert enqueue_changes(hub, "crm", now=MUCH_LATER).counts["order"] == 0
    with hub.engine.begin() as conn:
        add_order(conn, 4, 3)
    assert enqueue_changes(hub, "crm", now=MUCH_LATER).counts["order"] == 1


def test_a_destination_without_orders_leaves_them_alone(make_hub):
    hub = make_hub(plugin="contacts_only")
    with hub.engine.begin() as conn:
        add_customer(conn, 1, email="kari@example.no")
        add_order(conn, 1, 1)
    summary = enqueue_changes(hub, "crm", now=LATER)
    assert summary.counts["order"] == 0
    assert messages(hub, kind="order") == []


# ------------------------------------------------------------------------------------------------ enqueue


def test_enqueue_writes_a_row_once_per_idempotency_key(make_hub):
    hub = make_hub()
    with hub.engine.begin() as conn:
        assert enqueue(conn, "crm", "trigger", None, {"trigger_id": "welcome"}, "crm:trigger:welcome:1", LATER)
        assert not enqueue(conn, "crm", "trigger", None, {"trigger_id": "other"}, "crm:trigger:welcome:1", LATER)
    (row,) = messages(hub)
    assert (row.status, row.attempts, row.payload) == ("pending", 0, {"trigger_id": "welcome"})
    assert row.next_attempt_at == LATER


def test_enqueue_joins_the_callers_transaction(make_hub):
    hub = make_hub()
    with pytest.raises(RuntimeError), hub.engine.begin() as conn:
        enqueue(conn, "crm", "trigger", None, {}, "crm:trigger:x", LATER)
        raise RuntimeError("the decision failed")
    assert messages(hub) == []


# ------------------------------------------------------------------------------------------------ rebuild


def stored(hub: Hub, key: str) -> Message:
    with hub.engine.connect() as conn:
        row = conn.execute(sa.select(message_t).where(message_t.c.idempotency_key == key)).one()
    return Message(**row._mapping)


def test_rebuild_gives_the_payload_of_todays_data(make_hub):
    hub = make_hub(settings={"require": ["email"]})
    with hub.engine.begin() as conn:
        add_customer(conn, 1, phone="+4791234567")
    enqueue_changes(hub, "crm", now=LATER)
    dead = stored(hub, "crm:contact_upsert:1:v1")
    with pytest.raises(InvalidMessage, match="no email"):
        rebuild_payload(hub, "crm", dead)
    with hub.engine.begin() as conn:
        touch(conn, 1, LATER, email="kari@example.no")
    assert rebuild_payload(hub, "crm", dead)["email"] == "kari@example.no"


def test_rebuild_of_an_order_and_a_delete(make_hub):
    hub = make_hub()
    three_customers(hub)
    with hub.engine.begin() as conn:
        add_order(conn, 1, 2)
    enqueue_changes(hub, "crm", now=LATER)
    with hub.engine.begin() as conn:
        merge(conn, 2, 1, LATER)
    enqueue_changes(hub, "crm", now=MUCH_LATER)
    order = rebuild_payload(hub, "crm", stored(hub, "crm:order:pos:R-1"))
    assert order["_hub"]["customer_id"] == 1  # the survivor, today
    delete = rebuild_payload(hub, "crm", stored(hub, "crm:contact_delete:2"))
    assert delete["_hub"]["merged_into"] == 1
    with pytest.raises(InvalidMessage, match="merged into 1"):
        rebuild_payload(hub, "crm", stored(hub, "crm:contact_upsert:2:v1"))


def test_a_trigger_cannot_be_rebuilt(make_hub):
    hub = make_hub()
    with hub.engine.begin() as conn:
        enqueue(conn, "crm", "trigger", None, {"trigger_id": "t"}, "crm:trigger:t", LATER)
    assert rebuild_payload(hub, "crm", stored(hub, "crm:trigger:t")) is None


def test_updates_deletes_and_orders_on_each_database(tmp_path, database_url, made):
    hub = load_hub(write_project(tmp_path, database_url, batch_size=2))
    made.append(hub)
    three_customers(hub)
    with hub.engine.begin() as conn:
        add_order(conn, 1, 3)
    enqueue_changes(hub, "crm", now=LATER)
    with hub.engine.begin() as conn:
        touch(conn, 1, LATER, first_name="Karianne")
        merge(conn, 3, 1, LATER)
    summary = enqueue_changes(hub, "crm", now=MUCH_LATER)
    assert (summary.counts["contact_update"], summary.counts["contact_delete"], summary.superseded) == (1, 1, 2)
    assert sorted(states(hub)) == [1, 2]
    assert enqueue_changes(hub, "crm", now=MUCH_LATER + timedelta(hours=1)).enqueued == 0
