"""Housekeeping prunes history older than retention, and keeps what the rest of hub still reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from hub.config import HubConfig
from hub.daemon.housekeeping import cutoffs, prune
from hub.models import ContactLog, Message, SegmentChange, SyncRun

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=100)
RECENT = NOW - timedelta(days=10)


def _ids(hub, model) -> list[int]:
    table = model.__table__
    with hub.engine.connect() as conn:
        return sorted(conn.execute(sa.select(table.c.id)).scalars())


def test_old_runs_go_but_each_streams_latest_run_and_running_ones_stay(make_hub) -> None:
    hub = make_hub()
    rows = [
        {"id": 1, "connector": "shop", "stream": "records", "status": "succeeded", "started_at": OLD},
        {"id": 2, "connector": "shop", "stream": "records", "status": "failed", "started_at": RECENT},
        {"id": 3, "connector": "pos", "stream": "receipts", "status": "succeeded", "started_at": OLD},  # latest
        {"id": 4, "connector": "erp", "stream": "orders", "status": "running", "started_at": OLD},
        {"id": 5, "connector": "erp", "stream": "orders", "status": "interrupted", "started_at": OLD},
    ]
    with hub.engine.begin() as conn:
        conn.execute(sa.insert(SyncRun.__table__), rows)
    summary = prune(hub, now=NOW)
    assert summary.deleted["sync_run"] == 1
    assert _ids(hub, SyncRun) == [2, 3, 4, 5]


def test_sent_and_skipped_messages_go_work_and_dead_letters_stay(make_hub) -> None:
    hub = make_hub()
    base = {"destination": "esp", "kind": "trigger", "payload": {}, "next_attempt_at": OLD, "created_at": OLD}
    rows = [
        {**base, "id": 1, "idempotency_key": "a", "status": "sent", "sent_at": OLD},
        {**base, "id": 2, "idempotency_key": "b", "status": "sent", "sent_at": RECENT},
        {**base, "id": 3, "idempotency_key": "c", "status": "skipped", "sent_at": None},
        {**base, "id": 4, "idempotency_key": "d", "status": "dead", "sent_at": None},
        {**base, "id": 5, "idempotency_key": "e", "status": "pending", "sent_at": None},
    ]
    with hub.engine.begin() as conn:
        conn.execute(sa.insert(Message.__table__), rows)
    assert prune(hub, now=NOW).deleted["message"] == 2
    assert _ids(hub, Message) == [2, 4, 5]


def test_contact_log_and_segment_changes_older_than_retention_go(make_hub) -> None:
    hub = make_hub(daemon="daemon:\n  retention: 30d\n")
    base = {
        "customer_id": 1,
        "message_type": "newsletter",
        "channel": "email",
        "priority": "normal",
        "decision": "send",
        "rule": "ok",
        "reason": "ok",
        "destinations": [],
    }
    with hub.engine.begin() as conn:
        conn.execute(
            sa.insert(ContactLog.__table__),
            [{**base, "id": 1, "at": NOW - timedelta(days=40)}, {**base, "id": 2, "at": NOW - timedelta(days=20)}],
        )
        conn.execute(
            sa.insert(SegmentChange.__table__),
            [
                {"id": 1, "segment": "vip", "customer_id": 1, "change": "entered", "at": NOW - timedelta(days=40)},
                {"id": 2, "segment": "vip", "customer_id": 1, "change": "left", "at": NOW - timedelta(days=20)},
            ],
        )
    deleted = prune(hub, now=NOW).deleted
    assert (deleted["contact_log"], deleted["segment_change"]) == (1, 1)
    assert _ids(hub, ContactLog) == [2]
    assert _ids(hub, SegmentChange) == [2]


def test_a_cap_window_or_trigger_max_age_longer_than_retention_stretches_the_cutoff() -> None:
    config = HubConfig.model_validate(
        {
            "daemon": {"retention": "30d"},
            "contact_pressure": {
                "message_types": {"newsletter": {}},
                "caps": [{"name": "monthly", "message_types": ["newsletter"], "max": 4, "per": "60d"}],
            },
        }
    )
    found = cutoffs(config, NOW)
    assert found["contact_log"] == NOW - timedelta(days=60)
    assert found["sync_run"] == found["message"] == found["segment_change"] == NOW - timedelta(days=30)
