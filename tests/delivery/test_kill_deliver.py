"""kill -9 during `hub deliver`, at many points, then deliver again: every message delivered, no trigger twice.

The emulator runs in this test process, so it outlives every killed `hub deliver` and counts what it received.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from hub._yaml import load_located
from hub.app import Hub
from hub.delivery.changes import enqueue
from hub.delivery.views import customer_views, hub_keys
from hub.engine.run import SyncEngine
from hub.sandbox.server import serve
from hub.schema import upgrade
from hub_plugins.demo.generator import generate
from hub_plugins.voyado import emulator

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

#: Kill `hub deliver` once the emulator has received this many more requests (0: while it is still starting).
KILL_AFTER_REQUESTS = [0, 1, 3, 10, 25, 60, 120, 200, 320]
TRIGGERS = 40


def _project(base: Path, data: Path, url: str) -> Path:
    base.mkdir()
    (base / "mappings").symlink_to(ROOT / "mappings")
    (base / "var").mkdir()
    (base / "var" / "demo").symlink_to(data)
    config = load_located(ROOT / "config" / "hub.yaml").data  # hub's reader: `on:` is a key, not true
    config["batch_size"] = 50
    config["connectors"]["voyado"] = {
        "plugin": "voyado",
        "mapping": "mappings/voyado.yaml",
        "settings": {"base_url": url, "api_key": emulator.DEFAULT_API_KEY, "store_external_id": "WEB"},
        "delivery": {"concurrency": 4, "backoff_initial": "1s", "backoff_max": "2s"},
    }
    (base / "hub.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return base


def _hub_process(project: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HUB_CONFIG": str(project / "hub.yaml")}
    return subprocess.Popen(
        [sys.executable, "-m", "hub", "--log-json", *args],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _enqueue_triggers(hub: Hub, count: int) -> None:
    """Custom triggers for the first customers, each with a reference the emulator's log can be counted by."""
    destination = hub.connector("voyado")
    now = datetime.now(UTC)
    with hub.engine.begin() as conn:
        ids = [
            row[0]
            for row in conn.exec_driver_sql(
                "SELECT id FROM customer WHERE merged_into IS NULL AND email IS NOT NULL ORDER BY id LIMIT ?", (count,)
            )
        ]
        views = customer_views(conn, ids)
        for customer_id in ids:
            view = {"trigger_id": "welcome", "data": {"ref": f"t{customer_id}"}, "_hub": hub_keys(views[customer_id])}
            payload = destination.prepare("trigger", view)
            enqueue(conn, "voyado", "trigger", customer_id, payload, f"voyado:trigger:welcome:{customer_id}", now)


def _requests(state: emulator.VoyadoState) -> int:
    with state.lock:
        return state.requests


def _kill_after(project: Path, state: emulator.VoyadoState, more: int) -> bool:
    """Start `hub deliver`, SIGKILL it once the emulator has seen ``more`` further requests. False if it finished."""
    start = _requests(state)
    proc = _hub_process(project, "deliver")
    deadline = time.monotonic() + 120
    while _requests(state) < start + more and time.monotonic() < deadline:
        if proc.poll() is not None:
            proc.communicate()
            return False
        time.sleep(0.002 if more else 0.3)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    return True


def test_kill_9_at_many_points_delivers_everything_and_no_trigger_twice(tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data, customers=150, seed=7)
    app = emulator.app(rate_limit=None)
    state = app.state.voyado
    with serve(app) as url:
        project = _project(tmp_path / "project", data, url)
        hub = Hub.load(project / "hub.yaml", project_dir=project)
        upgrade(hub.engine)
        SyncEngine(hub).sync()
        _enqueue_triggers(hub, TRIGGERS)
        hub.engine.dispose()

        kills = sum(_kill_after(project, state, more) for more in KILL_AFTER_REQUESTS)
        for _ in range(3):  # retries scheduled a few seconds ahead may need a later pass
            proc = _hub_process(project, "deliver")
            _, stderr = proc.communicate(timeout=300)
            assert proc.returncode == 0, stderr.decode()[-3000:]
            with sqlite3.connect(project / "var" / "hub.db") as db:
                open_rows = db.execute(
                    "SELECT count(*) FROM message WHERE status IN ('pending', 'in_flight')"
                ).fetchone()
            if open_rows[0] == 0:
                break
            time.sleep(2.5)

        with sqlite3.connect(project / "var" / "hub.db") as db:
            rows = db.execute("SELECT kind, status, error_class, customer_id, payload FROM message").fetchall()
        snapshot = state.snapshot()

    assert kills >= len(KILL_AFTER_REQUESTS) - 1, "most kill points must hit a running delivery"
    statuses = Counter((kind, status, error_class) for kind, status, error_class, _, _ in rows)
    undelivered = {
        key: n
        for key, n in statuses.items()
        if key[1] not in ("sent", "skipped")
        and key[2] != "invalid"
        and not (key[0] == "trigger" and key[2] == "unknown")
    }
    assert undelivered == {}, f"messages neither delivered nor parked by design: {undelivered}"

    sent_orders = sum(n for (kind, status, _), n in statuses.items() if kind == "order" and status == "sent")
    assert len(snapshot["receipts"]) == sent_orders

    received = Counter(call["data"]["ref"] for call in snapshot["triggers"])
    assert max(received.values(), default=0) <= 1, "a trigger reached Voyado twice"
    for kind, status, _, customer_id, _ in rows:
        if kind == "trigger" and status == "sent":
            assert received[f"t{customer_id}"] == 1
    parked = statuses.get(("trigger", "dead", "unknown"), 0)
    assert sum(received.values()) >= TRIGGERS - parked

    emails = Counter(contact["attributes"].get("email") for contact in snapshot["contacts"])
    assert max(emails.values()) == 1
