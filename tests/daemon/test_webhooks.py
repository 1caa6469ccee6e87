"""``POST /webhooks/{connector}`` as a shop calls it: a real ``hub run`` on loopback, real SQLite, and the Voyado
emulator on loopback as the ESP. A signed order must come out as a custom trigger at the emulator within seconds
(the daemon's scheduled audience and delivery passes are an hour apart, so only the real-time path can do it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.sandbox.server import serve
from hub_plugins.voyado import emulator

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SECRET = "shpss_0123456789abcdef"
TRIGGER_ID = "post-purchase"


def _config(voyado_url: str) -> dict[str, Any]:
    return {
        "database": {"url": "sqlite:///var/hub.db"},
        "timezone": "UTC",
        "connectors": {
            "shop": {
                "plugin": "webhook",
                "mapping": {"orders": str(ROOT / "mappings" / "webshop_orders.yaml")},
                "settings": {"secret": "${SHOP_WEBHOOK_SECRET}", "topics": {"orders/create": "orders"}},
            },
            "voyado": {
                "plugin": "voyado",
                "mapping": str(ROOT / "mappings" / "voyado.yaml"),
                "settings": {"base_url": voyado_url, "api_key": emulator.DEFAULT_API_KEY, "store_external_id": "WEB"},
                "delivery": {"rate_limit": 1000, "backoff_initial": "1s", "backoff_max": "1s"},
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
        # An hour apart: a trigger that arrives within seconds came through the real-time path.
        "daemon": {"audience": {"every": "1h"}, "deliver": {"every": "1h"}, "shutdown_timeout": "5s"},
    }


def _order(order_id: int, email: str) -> dict[str, Any]:
    """A Shopify ``orders/create`` body, the shape of the demo's web shop exports (mappings/webshop_orders.yaml)."""
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    return {
        "id": order_id,
        "name": f"#{order_id}",
        "created_at": now,
        "updated_at": now,
        "currency": "NOK",
        "total_price": "2190.00",
        "current_total_price": "2190.00",
        "total_discounts": "0.00",
        "financial_status": "paid",
        "customer": {
            "id": order_id + 1000,
            "email": email,
            "phone": None,
            "first_name": "Kari",
            "last_name": "Nordmann",
            "accepts_marketing": True,
            "accepts_marketing_updated_at": now,
        },
        "line_items": [
            {"id": order_id * 10, "sku": "GRL-00001", "title": "Gas grill", "quantity": 1, "price": "2190.00"},
        ],
    }


def _sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(predicate: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = predicate()
            if found:
                return found
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s")


@dataclass
class Running:
    url: str
    voyado: str
    db: Path
    process: subprocess.Popen[str]

    def post(self, body: bytes, headers: dict[str, str], connector: str = "shop") -> httpx.Response:
        return httpx.post(f"{self.url}/webhooks/{connector}", content=body, headers=headers, timeout=10)

    def order(self, body: bytes, signature: str | None = None) -> httpx.Response:
        headers = {"Content-Type": "application/json", "X-Shopify-Topic": "orders/create"}
        if signature is not None:
            headers["X-Shopify-Hmac-Sha256"] = signature
        return self.post(body, headers)

    def emulator(self) -> dict[str, Any]:
        return httpx.get(f"{self.voyado}/_emulator/state", timeout=5).json()

    def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.db) as conn:
            return list(conn.execute(sql, args))

    def counts(self) -> tuple[int, ...]:
        tables = ("customer", "orders", "reject", "message")
        return tuple(self.query(f"SELECT count(*) FROM {table}")[0][0] for table in tables)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    base = tmp_path_factory.mktemp("webhooks")
    (base / "var").mkdir()
    env = {**os.environ, "COLUMNS": "200", "SHOP_WEBHOOK_SECRET": SECRET}
    with serve(emulator.app(rate_limit=None)) as voyado:
        config = base / "hub.yaml"
        config.write_text(json.dumps(_config(voyado), indent=1), encoding="utf-8")
        upgrade = [sys.executable, "-m", "hub", "db", "upgrade", "-c", str(config)]
        subprocess.run(upgrade, cwd=base, env=env, check=True, capture_output=True, timeout=60)
        port = _free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "hub", "--log-json", "run", "-c", str(config), "--http-port", str(port)],
            cwd=base,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        running = Running(f"http://127.0.0.1:{port}", voyado, base / "var" / "hub.db", process)
        try:
            _wait_for(lambda: httpx.get(f"{running.url}/readyz").status_code == 200, timeout=20)
            # The audience pass that runs at start (it never ran) is done, so the tests start from quiet.
            _wait_for(lambda: 'hub_job_runs_total{job="audience"' in httpx.get(f"{running.url}/metrics").text, 20)
            yield running
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                _, stderr = process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGUSR1)  # every thread's stack into stderr: where it hangs
                time.sleep(1)
                process.kill()
                _, stderr = process.communicate(timeout=5)
            running.stderr = stderr  # type: ignore[attr-defined]
            assert process.returncode == 0, stderr[-12000:]
            assert "webhook refused: missing or invalid signature" in stderr  # a warning for each 401
            assert "kari@example.no" not in stderr and "intruder@" not in stderr  # never the body in the log


def test_a_signed_order_becomes_a_trigger_at_the_esp_within_seconds(daemon: Running) -> None:
    body = json.dumps(_order(5500000000001, "kari@example.no")).encode()
    started = time.monotonic()
    answer = daemon.order(body, _sign(body))
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "accepted", "stream": "orders", "records": 1, "loaded": 1}
    # Committed before the answer: the order, its line, its customer and consent are in the database now.
    rows = daemon.query("SELECT o.source, o.total, c.email FROM orders o JOIN customer c ON c.id = o.customer_id")
    assert rows == [("shop", 2190, "kari@example.no")]

    def triggered() -> list[dict[str, Any]]:
        return [t for t in daemon.emulator()["triggers"] if t["triggerId"] == TRIGGER_ID]

    calls = _wait_for(triggered, timeout=10)
    latency = time.monotonic() - started
    assert len(calls) == 1
    contacts = {c["id"]: c for c in daemon.emulator()["contacts"]}
    assert contacts[calls[0]["contactId"]]["attributes"]["email"] == "kari@example.no"
    assert latency < 10
    print(f"webhook -> trigger at the emulator: {latency:.2f} s")

    # The same webhook again (Shopify retries on a slow answer): loaded again harmlessly, never a second mail.
    assert daemon.order(body, _sign(body)).status_code == 202
    time.sleep(1.5)
    assert len(triggered()) == 1
    assert daemon.query("SELECT count(*) FROM orders") == [(1,)]


@pytest.mark.parametrize(
    "signature",
    [None, "", _sign(b"another body"), _sign(b"{}", "the wrong secret"), "%%% not base64 %%%"],
    ids=["missing", "empty", "other-body", "wrong-secret", "garbled"],
)
def test_an_unsigned_or_wrongly_signed_webhook_gets_401_and_changes_nothing(
    daemon: Running, signature: str | None
) -> None:
    body = json.dumps(_order(5500000000002, "intruder@example.no")).encode()
    if signature == _sign(b"{}", "the wrong secret"):
        signature = _sign(body, "the wrong secret")
    before = daemon.counts()
    answer = daemon.order(body, signature)
    assert answer.status_code == 401
    assert answer.json() == {"error": "invalid or missing signature"}
    assert daemon.counts() == before
    assert 'hub_webhook_requests_total{connector="shop",status="401"}' in httpx.get(f"{daemon.url}/metrics").text


def test_a_malformed_body_gets_400_and_is_kept_as_a_reject(daemon: Running) -> None:
    body = b'{"id": 5500000000003, "customer": {"email": "half@exam'
    answer = daemon.order(body, _sign(body))
    assert answer.status_code == 400
    assert "body is not JSON" in answer.json()["error"]
    (reject_id,) = answer.json()["rejects"]
    rows = daemon.query("SELECT connector, stream, stage, errors, payload FROM reject WHERE id = ?", reject_id)
    assert len(rows) == 1
    connector, stream, stage, errors, payload = rows[0]
    assert (connector, stream, stage) == ("shop", "orders", "read")
    assert "body is not JSON" in json.loads(errors)[0]
    kept = json.loads(payload)
    assert kept["_raw"] == body.decode()
    assert kept["_topic"] == "orders/create"


def test_a_signed_record_the_mapping_refuses_is_a_reject_answered_202(daemon: Running) -> None:
    record = _order(5500000000004, "nobody@example.no")
    del record["id"]  # the order's external id is required by the mapping
    body = json.dumps(record).encode()
    answer = daemon.order(body, _sign(body))
    assert answer.status_code == 202, answer.text
    result = answer.json()
    assert result["status"] == "rejected" and result["loaded"] == 0
    stages = daemon.query("SELECT stage, connector FROM reject WHERE id = ?", result["rejects"][0])
    assert stages == [("map", "shop")]
    assert daemon.query("SELECT count(*) FROM customer WHERE email = 'nobody@example.no'") == [(0,)]


def test_an_unknown_topic_is_400_and_kept(daemon: Running) -> None:
    body = b'{"id": 1}'
    headers = {"X-Shopify-Topic": "products/delete", "X-Shopify-Hmac-Sha256": _sign(body)}
    answer = daemon.post(body, headers)
    assert answer.status_code == 400
    assert "not configured" in answer.json()["error"]
    assert daemon.query("SELECT stream, stage FROM reject WHERE id = ?", answer.json()["rejects"][0]) == [
        ("(unrouted)", "read")
    ]


def test_only_webhook_sources_take_webhooks(daemon: Running) -> None:
    body = b"{}"
    headers = {"X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": _sign(body)}
    assert daemon.post(body, headers, connector="nope").status_code == 404
    assert daemon.post(body, headers, connector="voyado").status_code == 404  # a destination
    assert httpx.get(f"{daemon.url}/webhooks/shop").status_code == 405


def test_concurrent_webhooks_are_committed_together_and_each_answer_is_its_own(daemon: Running) -> None:
    from concurrent.futures import ThreadPoolExecutor

    bodies = []
    for n in range(24):
        record = _order(5500000000100 + n, f"crowd{n}@example.no")
        if n % 6 == 5:
            del record["id"]  # the mapping refuses these four; the other twenty load
        bodies.append(json.dumps(record).encode())
    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(lambda body: daemon.order(body, _sign(body)), bodies))
    assert all(answer.status_code == 202 for answer in answers), [a.text for a in answers]
    results = [answer.json() for answer in answers]
    refused = [n for n, result in enumerate(results) if result["status"] == "rejected"]
    assert refused == [5, 11, 17, 23]
    assert all(results[n] == {"status": "accepted", "stream": "orders", "records": 1, "loaded": 1}
               for n in range(24) if n not in refused)  # fmt: skip
    reject_ids = [result["rejects"][0] for result in results if result["status"] == "rejected"]
    assert len(set(reject_ids)) == 4  # each refused request got its own reject, not a neighbour's
    loaded = daemon.query("SELECT count(*) FROM customer WHERE email LIKE 'crowd%@example.no'")
    assert loaded == [(20,)]
