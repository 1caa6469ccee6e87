"""The outbox's SQL: claims by kind order and waiting rules, disjoint claims on PostgreSQL, recovery, replay."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from hub.delivery import outbox
from hub.delivery.dispatcher import deliver

LEASE = datetime.now(UTC) + timedelta(hours=1)


def _claim(env, kind, limit=100, owner="h:1"):
    with env.hub.engine.begin() as conn:
        return outbox.claim(
            conn, "dest", kind, limit=limit, owner=owner, lease_until=LEASE, due=datetime.now(UTC) + timedelta(1)
        )


def test_a_claim_takes_due_rows_of_one_kind_oldest_first_and_marks_them_in_flight(env):
    now = datetime.now(UTC)
    later = env.enqueue("order", customer_id=1, now=now)
    first = env.enqueue("order", customer_id=2, now=now - timedelta(minutes=5))
    env.enqueue("order", customer_id=3, next_attempt_at=now + timedelta(days=2), created_at=now)
    env.enqueue("contact_upsert", customer_id=9)
    rows = _claim(env, "order", limit=1)
    assert [r.idempotency_key for r in rows] == [first]
    assert env.row(first).status == "in_flight" and env.row(first).claimed_by == "h:1"
    assert [r.idempotency_key for r in _claim(env, "order")] == [later]


def test_an_order_is_not_claimed_while_its_customers_upsert_is_open(env):
    env.enqueue("contact_upsert", customer_id=1)
    blocked = env.enqueue("order", customer_id=1)
    anonymous = env.enqueue("order", customer_id=None)
    assert {r.idempotency_key for r in _claim(env, "order")} == {anonymous}
    upserts = _claim(env, "contact_upsert")
    assert _claim(env, "order") == []  # in flight blocks too
    with env.hub.engine.begin() as conn:
        now = datetime.now(UTC)
        outbox.record(conn, "dest", [outbox.RowUpdate(upserts[0].id, "sent", 1, now)], now=now)
    assert [r.idempotency_key for r in _claim(env, "order")] == [blocked]


def test_a_claim_carries_the_remote_ref_and_the_uncertain_flag(env):
    key = env.enqueue("contact_upsert", customer_id=4, error_class="unknown")
    with env.hub.engine.begin() as conn:
        now = datetime.now(UTC)
        outbox.record(conn, "dest", [], remote_ids=[(4, "V-4")], now=now)
    (row,) = _claim(env, "contact_upsert")
    message = row.outgoing()
    assert (message.idempotency_key, message.remote_ref, message.uncertain) == (key, "V-4", True)


def test_recovery_leaves_a_row_finished_meanwhile_alone(env):
    key = env.enqueue("contact_upsert", customer_id=1, status="in_flight", claimed_by="h:1", lease_until=LEASE)
    with env.hub.engine.connect() as conn:
        stale = outbox.find_stale(conn, LEASE + timedelta(seconds=1))
    with env.hub.engine.begin() as conn:
        now = datetime.now(UTC)
        outbox.record(conn, "dest", [outbox.RowUpdate(env.row(key).id, "sent", 1, now)], now=now)
        assert outbox.recover(conn, stale, lambda d, k: "at_least_once", now) == {"pending": 1, "dead": 0}
    assert env.status(key) == "sent"


def test_the_pending_plan_splits_creates_from_updates(env):
    env.enqueue("contact_upsert", customer_id=1)
    env.enqueue("contact_upsert", customer_id=2)
    env.enqueue("order", customer_id=2)
    with env.hub.engine.begin() as conn:
        outbox.record(conn, "dest", [], remote_ids=[(2, "V-2")], now=datetime.now(UTC))
        assert outbox.pending_plan(conn, "dest") == {"contact_create": 1, "contact_update": 1, "order": 1}


@pytest.mark.postgres
def test_concurrent_claims_on_postgresql_skip_locked_rows_and_never_overlap(make_env, pg_database_url):
    env = make_env(url=pg_database_url)
    keys = {env.enqueue("order", customer_id=i) for i in range(300)}
    claimed: list[list[str]] = [[], [], [], []]
    start = threading.Barrier(len(claimed))

    def worker(n: int) -> None:
        start.wait()
        while rows := _claim(env, "order", limit=7, owner=f"h:{n}"):
            claimed[n].extend(r.idempotency_key for r in rows)
            time.sleep(0.02)  # a busy sender: lets the other workers claim in between, even on a loaded machine

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(len(claimed))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [k for part in claimed for k in part]
    assert Counter(everything).most_common(1)[0][1] == 1
    assert set(everything) == keys
    assert sum(1 for part in claimed if part) > 1


@pytest.mark.postgres
def test_two_dispatchers_on_postgresql_never_send_a_message_twice(make_env, pg_database_url):
    connectors = {"dest": {"plugin": "scripted", "delivery": {"concurrency": 3}}}
    first = make_env(connectors, url=pg_database_url)
    second = make_env(connectors, url=pg_database_url)
    keys = {first.enqueue("contact_upsert", customer_id=i) for i in range(200)}
    keys |= {first.enqueue("order", customer_id=i) for i in range(200)}
    passes = [threading.Thread(target=deliver, args=(e.hub,)) for e in (first, second)]
    for t in passes:
        t.start()
    for t in passes:
        t.join()
    sent = first.script().sent_keys()
    assert Counter(sent).most_common(1)[0][1] == 1
    assert set(sent) == keys
    assert set(first.statuses().values()) == {"sent"}
