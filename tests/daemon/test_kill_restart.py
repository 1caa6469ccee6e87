"""``kill -9`` of ``hub run`` in the middle of its work, then a restart: nothing lost, nothing doubled.

A real ``hub run`` subprocess on SQLite syncs a small ``files`` connector (orders as JSON Lines, in many tiny
batches), runs the audience (a post-purchase trigger per order) and delivers contacts, orders and triggers to the
Voyado emulator, which runs in this test process so that it outlives every killed daemon and counts what it got.
The daemon is killed with SIGKILL once in the middle of the sync and twice in the middle of the delivery, and
started again each time. In the end:

- every order and customer is loaded exactly once, the stream's cursor covers every file, and the sync runs
  together read each record exactly once (a run cut off mid-sync is marked ``interrupted``; its uncommitted
  batch is read again by the next run, its committed batches are not);
- every outbox message is sent (or, for a trigger whose outcome the kill made unknown, parked by design), and
  the emulator has one contact per customer, one order per order and at most one trigger per order.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from hub.sandbox.server import serve
from hub_plugins.voyado import emulator

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FILES = 8
ORDERS_PER_FILE = 30
ORDERS = FILES * ORDERS_PER_FILE
FIRST_ORDER = 8_200_000_000_000
TRIGGER_ID = "post-purchase"


def _config(voyado_url: str) -> dict[str, Any]:
    return {
        "database": {"url": "sqlite:///var/hub.db"},
        "timezone": "UTC",
        "batch_size": 3,  # many small batches: a kill mid-sync lands between committed ones
        "connectors": {
            "shop": {
                "plugin": "files",
                "schedule": {"every": "1s"},
                "mapping": {"orders": str(ROOT / "mappings" / "webshop_orders.yaml")},
                "settings": {"streams": {"orders": {"paths": ["data/*.jsonl"]}}},
            },
            "voyado": {
                "plugin": "voyado",
                "mapping": str(ROOT / "mappings" / "voyado.yaml"),
                "settings": {"base_url": voyado_url, "api_key": emulator.DEFAULT_API_KEY, "store_external_id": "WEB"},
                # Slow enough that a kill lands in the middle of the delivery.
                "delivery": {"rate_limit": 60, "concurrency": 2, "backoff_initial": "1s", "backoff_max": "1s"},
            },
        },
        "triggers": {
            "post_purchase": {
                "on": "order_placed",
                "message_type": "post_purchase",
                "to": {"voyado": {"trigger_id": TRIGGER_ID}},
            }
        },
        "contact_pressure": {"message_types": {"post_purchase": {"priority": "triggered", "max_hold": "1d"}}},
        "daemon": {"audience": {"every": "1s"}, "deliver": {"every": "1s"}, "shutdown_timeout": "5s"},
    }


def _order(n: int) -> dict[str, Any]:
    """A Shopify-shaped order (mappings/webshop_orders.yaml) of a customer of its own."""
    order_id = FIRST_ORDER + n
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    return {
        "id": order_id,
        "name": f"#{n + 1001}",
        "created_at": now,
        "updated_at": now,
        "currency": "NOK",
        "current_total_price": "449.00",
        "financial_status": "paid",
        "customer": {
            "id": 5_000 + n,
            "email": f"kill.restart.{n}@example.no",
            "first_name": "Kari",
            "last_name": f"Nordmann{n}",
            "accepts_marketing": True,
            "accepts_marketing_updated_at": now,
        },
        "line_items": [
            {"id": order_id * 10, "sku": "GRL-00001", "quantity": 1, "price": "349.00", "total_discount": "0"},
            {"id": order_id * 10 + 1, "sku": "ACC-00042", "quantity": 1, "price": "100.00", "total_discount": "0"},
        ],
    }


def _project(base: Path, voyado_url: str) -> Path:
    (base / "var").mkdir()
    (base / "data").mkdir()
    for f in range(FILES):
        lines = [json.dumps(_order(f * ORDERS_PER_FILE + i)) for i in range(ORDERS_PER_FILE)]
        (base / "data" / f"orders_{f:02d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = base / "hub.yaml"
    config.write_text(json.dumps(_config(voyado_url), indent=1), encoding="utf-8")
    subprocess.run(
        [sys.executable, "-m", "hub", "db", "upgrade", "-c", str(config)],
        cwd=base,
        check=True,
        capture_output=True,
        timeout=60,
    )
    return config


def _start(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "hub", "--log-json", "run", "-c", str(config), "--http-port", "0"],
        cwd=config.parent,
        env={**os.environ, "COLUMNS": "200"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)
    assert process.returncode == -signal.SIGKILL


def _query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db, timeout=10) as conn:
        return list(conn.execute(sql))


def _wait(predicate: Callable[[], bool], timeout: float, what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"hub run exited ({process.returncode}) waiting for {what}")
        try:
            if predicate():
                return
        except sqlite3.OperationalError:  # the schema is there; a busy moment is not a failure
            pass
        time.sleep(0.005)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _requests(state: emulator.VoyadoState) -> int:
    with state.lock:
        return int(state.requests)


def test_kill_9_mid_sync_and_mid_delivery_then_restart_loses_nothing_and_doubles_nothing(tmp_path: Path) -> None:
    app = emulator.app(rate_limit=None)
    state = app.state.voyado
    with serve(app) as url:
        config = _project(tmp_path, url)
        db = tmp_path / "var" / "hub.db"

        def loaded() -> int:
            return int(_query(db, "SELECT count(*) FROM orders")[0][0])

        # 1. Killed in the middle of the first sync: some batches committed, the rest not read yet.
        process = _start(config)
        _wait(lambda: loaded() >= ORDERS // 4, 30, "a quarter of the orders", process)
        _kill(process)
        assert loaded() < ORDERS, "the kill came after the sync: make the batches smaller"
        assert _query(db, "SELECT count(*) FROM sync_run WHERE status = 'running'") == [(1,)]

        # 2. Restarted: the sync resumes; killed again once the delivery is under way.
        process = _start(config)
        _wait(lambda: loaded() == ORDERS, 30, "every order", process)
        start = _requests(state)
        _wait(lambda: _requests(state) >= start + 40, 30, "the delivery to start", process)
        _kill(process)

        # 3. Killed again further into the delivery (messages claimed, some in flight).
        process = _start(config)
        start = _requests(state)
        _wait(lambda: _requests(state) >= start + 120, 30, "more deliveries", process)
        _kill(process)

        # 4. Restarted for good: everything goes out; then a clean stop. A trigger or receipt whose contact was
        # not at Engage yet (its upsert cut off by a kill) waits a minute before its next try; fast-forward that
        # clock while no daemon runs, so the test need not wait for it.
        with sqlite3.connect(db, timeout=10) as conn:
            conn.execute("UPDATE message SET next_attempt_at = '2000-01-01 00:00:00.000000' WHERE status = 'pending'")
        process = _start(config)

        def settled() -> bool:
            open_rows = _query(db, "SELECT count(*) FROM message WHERE status IN ('pending', 'in_flight')")[0][0]
            triggers = _query(db, "SELECT count(*) FROM message WHERE kind = 'trigger'")[0][0]
            return open_rows == 0 and triggers == ORDERS

        try:
            _wait(settled, 45, "every message sent", process)
        except AssertionError:
            process.kill()
            _, stderr = process.communicate(timeout=10)
            counts = _query(db, "SELECT kind, status, count(*) FROM message GROUP BY 1, 2")
            errors = [line for line in stderr.decode().splitlines() if '"error"' in line]
            raise AssertionError(f"not settled: outbox {counts}; {len(errors)} errors, last: {errors[-3:]}") from None
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
        assert process.returncode == 0, stderr.decode()[-3000:]
        snapshot = state.snapshot()

    # Nothing lost, nothing doubled in the database.
    assert _query(db, "SELECT count(*), count(DISTINCT external_id) FROM orders") == [(ORDERS, ORDERS)]
    assert _query(db, "SELECT count(*) FROM order_line") == [(2 * ORDERS,)]
    assert _query(db, "SELECT count(*), count(DISTINCT email) FROM customer WHERE merged_into IS NULL") == [
        (ORDERS, ORDERS)
    ]
    assert _query(db, "SELECT count(*) FROM customer_merge") == [(0,)]
    assert _query(db, "SELECT count(*) FROM reject") == [(0,)]

    # The cursor covers every file, none half read; the runs together read each record exactly once.
    ((cursor,),) = _query(db, "SELECT cursor FROM sync_state WHERE connector = 'shop' AND stream = 'orders'")
    cursor = json.loads(cursor)
    assert sorted(cursor["files"]) == [f"data/orders_{f:02d}.jsonl" for f in range(FILES)]
    assert cursor.get("current") is None
    runs = Counter(status for (status,) in _query(db, "SELECT status FROM sync_run"))
    assert runs["interrupted"] >= 1 and runs["running"] == 0
    assert _query(db, "SELECT sum(records_read), sum(records_loaded) FROM sync_run") == [(ORDERS, ORDERS)]

    # Every message sent once at the emulator (a trigger cut off mid-request is parked, never re-sent).
    messages = Counter(
        (kind, status, error_class)
        for kind, status, error_class in _query(db, "SELECT kind, status, error_class FROM message")
    )
    unsent = {
        key: n
        for key, n in messages.items()
        if key[1] not in ("sent", "skipped") and not (key[0] == "trigger" and key[2] == "unknown")
    }
    assert unsent == {}, f"messages neither sent nor parked by design: {unsent}"
    # Receipts are at least once by design (Engage drops a uniqueReceiptId it has): one per order in the end.
    assert len(snapshot["receipts"]) == ORDERS
    emails = Counter(contact["attributes"].get("email") for contact in snapshot["contacts"])
    assert len(emails) == ORDERS and max(emails.values()) == 1, "a contact was created twice"
    triggers = Counter(call["contactId"] for call in snapshot["triggers"] if call["triggerId"] == TRIGGER_ID)
    assert max(triggers.values()) == 1, "a trigger reached Voyado twice"
    parked = messages.get(("trigger", "dead", "unknown"), 0)
    sent_triggers = messages.get(("trigger", "sent", None), 0)
    assert sent_triggers <= sum(triggers.values()) <= sent_triggers + parked
    assert sent_triggers + parked == ORDERS
    print(
        f"messages: {dict(messages)}; emulator: {len(emails)} contacts, {sum(triggers.values())} triggers,"
        f" {len(snapshot['receipts'])} receipts ({snapshot['receipt_duplicates']} repeats ignored)"
    )
