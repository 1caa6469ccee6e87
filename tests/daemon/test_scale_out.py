"""Scale-out on PostgreSQL: three ``hub run`` processes on one real database, the Voyado emulator on loopback.

One process holds the scheduler (it runs the sync that loads the orders), the two others are standbys; all three
run the dispatcher. The leader is killed with SIGKILL while messages are going out: a standby must take the
scheduler over within seconds, the dead process's in-flight messages are recovered, and at the end every message
is at the emulator exactly once (receipts that a recovered message sent again are de-duplicated by their
``uniqueReceiptId``, as Voyado does; they are counted).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from hub.db import make_engine
from hub.sandbox.faults import FaultInjector, Faults
from hub.sandbox.server import serve
from hub.schema import upgrade
from hub_plugins.voyado import emulator

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ORDERS = 300
TAKEOVER_INTERVAL = 1.0


def _order(n: int) -> dict[str, Any]:
    """A Shopify-shaped order (mappings/webshop_orders.yaml) of a customer of its own."""
    at = (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n)).isoformat()
    return {
        "id": 7000000 + n,
        "name": f"#{n}",
        "created_at": at,
        "updated_at": at,
        "currency": "NOK",
        "total_price": "499.00",
        "current_total_price": "499.00",
        "financial_status": "paid",
        "customer": {
            "id": 900000 + n,
            "email": f"buyer{n}@example.no",
            "first_name": "Kari",
            "last_name": f"Nordmann{n}",
            "accepts_marketing": True,
            "accepts_marketing_updated_at": at,
        },
        "line_items": [{"id": n * 10, "sku": "GRL-00001", "title": "Gas grill", "quantity": 1, "price": "499.00"}],
    }


def _config(database_url: str, voyado_url: str) -> dict[str, Any]:
    return {
        "database": {"url": database_url},
        "timezone": "UTC",
        "connectors": {
            "shop": {
                "plugin": "files",
                "mapping": {"orders": str(ROOT / "mappings" / "webshop_orders.yaml")},
                "settings": {"streams": {"orders": {"paths": ["data/*.jsonl"], "format": "jsonl", "key": "id"}}},
                # Leader-only: runs once at start (it never ran), then hourly.
                "schedule": {"every": "1h"},
            },
            "voyado": {
                "plugin": "voyado",
                "mapping": str(ROOT / "mappings" / "voyado.yaml"),
                "settings": {"base_url": voyado_url, "api_key": emulator.DEFAULT_API_KEY, "store_external_id": "WEB"},
                "delivery": {
                    "rate_limit": 1000,
                    "concurrency": 2,
                    "backoff_initial": "1s",
                    "backoff_max": "1s",
                    "lease": "20s",
                },
            },
        },
        "daemon": {
            "audience": False,
            "housekeeping": False,
            "deliver": {"every": "1s"},
            "shutdown_timeout": "5s",
            "takeover_interval": f"{TAKEOVER_INTERVAL:g}s",
        },
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = predicate()
            if found:
                return found
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _json(value: Any) -> Any:
    """A JSON column: parsed already on PostgreSQL."""
    return json.loads(value) if isinstance(value, str | bytes) else value


@dataclass
class Process:
    name: str
    url: str
    log: Path
    popen: subprocess.Popen[bytes]

    def readyz(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/readyz", timeout=5)
        return {"code": answer.status_code, **answer.json()}

    def role(self) -> str | None:
        try:
            return self.readyz().get("role")
        except httpx.TransportError:
            return None

    def lines(self) -> list[dict[str, Any]]:
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found


@dataclass
class Cluster:
    processes: list[Process]
    engine: sa.Engine
    state: emulator.VoyadoState

    def outbox(self) -> Counter[tuple[str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT kind, status, count(*) FROM message GROUP BY kind, status"))
            return Counter({(kind, status): n for kind, status, n in rows})

    def sent(self, kind: str) -> list[Any]:
        with self.engine.connect() as conn:
            sql = "SELECT customer_id, payload FROM message WHERE kind = :kind AND status = 'sent'"
            return list(conn.execute(sa.text(sql), {"kind": kind}))


@pytest.fixture
def cluster(pg_database_url: str, tmp_path: Path) -> Iterator[Cluster]:
    (tmp_path / "data").mkdir()
    lines = "".join(json.dumps(_order(n)) + "\n" for n in range(1, ORDERS + 1))
    (tmp_path / "data" / "orders.jsonl").write_text(lines, encoding="utf-8")
    engine = make_engine(pg_database_url)
    upgrade(engine)
    app = emulator.app(rate_limit=None)
    # A little latency per request spreads the delivery over several seconds: time to kill a process mid-run.
    injector = FaultInjector(app, Faults(latency=0.03))
    processes: list[Process] = []
    env = {**os.environ, "COLUMNS": "200"}
    try:
        with serve(injector) as voyado_url:
            config = tmp_path / "hub.yaml"
            config.write_text(json.dumps(_config(pg_database_url, voyado_url), indent=1), encoding="utf-8")
            for name in ("a", "b", "c"):
                port = _free_port()
                log = tmp_path / f"{name}.log"
                with log.open("wb") as out:
                    popen = subprocess.Popen(
                        [sys.executable, "-m", "hub", "--log-json", "run", "-c", str(config), "--http-port", str(port)],
                        cwd=tmp_path,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        env=env,
                    )
                processes.append(Process(name, f"http://127.0.0.1:{port}", log, popen))
            yield Cluster(processes, engine, app.state.voyado)
    finally:
        for process in processes:
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait(timeout=5)
        engine.dispose()


def test_three_daemons_share_the_work_and_a_standby_takes_over_when_the_leader_dies(cluster: Cluster) -> None:
    started = time.monotonic()
    for process in cluster.processes:
        _wait_for(lambda p=process: p.readyz()["code"] == 200, 30, f"{process.name} to be ready")
    roles = {p.name: p.role() for p in cluster.processes}
    assert sorted(roles.values()) == ["leader", "standby", "standby"], roles
    (leader,) = [p for p in cluster.processes if roles[p.name] == "leader"]
    standbys = [p for p in cluster.processes if p is not leader]

    # The leader's sync loads the orders; every process's dispatcher sends. Kill the leader mid-delivery.
    def contacts() -> int:
        with cluster.state.lock:
            return len(cluster.state.contacts)

    _wait_for(lambda: contacts() >= ORDERS // 5, 30, "the delivery to be under way")
    in_flight_then = cluster.outbox()
    leader.popen.send_signal(signal.SIGKILL)
    leader.popen.wait(timeout=5)  # reaped: its host:pid is now dead to the others' stale-claim recovery
    killed_at = time.monotonic()
    assert contacts() < ORDERS, "the delivery finished before the kill: make it slower"

    new_leader = _wait_for(
        lambda: next((p for p in standbys if p.role() == "leader"), None), 10, "a standby to take over"
    )
    takeover = time.monotonic() - killed_at
    assert takeover < TAKEOVER_INTERVAL + 3, takeover
    (still_standby,) = [p for p in standbys if p is not new_leader]
    assert still_standby.role() == "standby"
    assert new_leader.readyz() == {"code": 200, "status": "ready", "role": "leader"}
    assert any(line.get("event") == "scheduler taken over" for line in new_leader.lines())

    # Everything goes out: nothing left pending or in flight, nothing dead.
    expected = {("contact_upsert", "sent"): ORDERS, ("order", "sent"): ORDERS}
    _wait_for(lambda: cluster.outbox() == expected, 40, f"every message sent (now {cluster.outbox()})")

    snapshot = cluster.state.snapshot()
    emails = Counter(c["attributes"].get("email") for c in snapshot["contacts"])
    assert len(emails) == ORDERS and max(emails.values()) == 1, [e for e, n in emails.items() if n > 1]
    assert len(snapshot["contacts"]) == len({r.customer_id for r in cluster.sent("contact_upsert")}) == ORDERS
    sent_receipts = [_json(r.payload)["uniqueReceiptId"] for r in cluster.sent("order")]
    assert sorted(r["uniqueReceiptId"] for r in snapshot["receipts"]) == sorted(sent_receipts)
    assert len(snapshot["receipts"]) == ORDERS

    # Each surviving process delivered part of it.
    senders = {
        p.name: sum(line.get("sent", 0) for line in p.lines() if line.get("event") == "job finished")
        for p in cluster.processes
    }
    assert all(senders[p.name] > 0 for p in standbys), senders
    recovered = [
        line for p in standbys for line in p.lines() if line.get("event") == "recovered stale in-flight messages"
    ]
    print(
        f"\nleader {leader.name} killed with {dict(in_flight_then)}; {new_leader.name} took over in {takeover:.2f} s;"
        f" sent per process (from job logs) {senders}; recoveries {len(recovered)};"
        f" receipts sent again and de-duplicated: {snapshot['receipt_duplicates']};"
        f" whole test {time.monotonic() - started:.1f} s"
    )

    # The survivors stop cleanly.
    for process in standbys:
        process.popen.send_signal(signal.SIGTERM)
    for process in standbys:
        assert process.popen.wait(timeout=15) == 0, process.log.read_text()[-3000:]
