"""Delivery end to end: demo data -> SyncEngine -> deliver() -> VoyadoDestination -> loopback HTTP -> the Voyado
emulator wrapped in a FaultInjector. What the outbox says is checked against what the emulator holds.

The demo data set is generated and synced once per module; each test gets a copy of that database and its own
emulator. Retries scheduled in the future are reached by travelling in time (time-machine), never by sleeping.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import time_machine

from hub._yaml import load_located
from hub.app import Hub
from hub.delivery.changes import enqueue
from hub.delivery.dispatcher import DeliverySummary, deliver, guarantee_of
from hub.delivery.views import customer_views, hub_keys
from hub.engine.run import SyncEngine
from hub.sandbox.faults import FaultInjector, Faults
from hub.sandbox.server import serve
from hub.schema import upgrade
from hub_plugins.demo.generator import generate
from hub_plugins.voyado import emulator

ROOT = Path(__file__).resolve().parents[2]
CUSTOMERS = 60
TRIGGERS = 20
#: Quick retries; the emulator answers in milliseconds, so a short read timeout only catches injected faults.
BASE_DELIVERY: dict[str, Any] = {
    "rate_limit": 1000,
    "concurrency": 10,
    "backoff_initial": "1s",
    "backoff_max": "1s",
    "max_attempts": 40,
    "attempts_per_pass": 2,
    "read_timeout": 2,
}


# ------------------------------------------------------------------------------------------------- fixtures


def _write_project(base: Path, data: Path, url: str, delivery: dict[str, Any]) -> Path:
    """The demo's configuration with its ``voyado`` destination (if any) replaced by one at ``url``, with this
    ``delivery:`` block; the demo data at ``var/demo``."""
    base.mkdir()
    (base / "mappings").symlink_to(ROOT / "mappings")
    (base / "var").mkdir()
    (base / "var" / "demo").symlink_to(data)
    config = load_located(ROOT / "config" / "hub.yaml").data  # hub's reader: `on:` is a key, not true
    config["batch_size"] = 50
    settings = {"base_url": url, "api_key": emulator.DEFAULT_API_KEY, "store_external_id": "WEB"}
    voyado = {"plugin": "voyado", "mapping": "mappings/voyado.yaml", "settings": settings, "delivery": delivery}
    config["connectors"] = {**{k: v for k, v in config["connectors"].items() if k != "voyado"}, "voyado": voyado}
    (base / "hub.yaml").write_text(json.dumps(config, indent=1), encoding="utf-8")
    return base / "hub.yaml"


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo data and a database it was synced into (nothing delivered yet): (data dir, hub.db)."""
    base = tmp_path_factory.mktemp("voyado-e2e")
    data = base / "data"
    generate(data, customers=CUSTOMERS, seed=7)
    config = _write_project(base / "template", data, "http://127.0.0.1:9", BASE_DELIVERY)
    hub = Hub.load(config, project_dir=config.parent)
    upgrade(hub.engine)
    assert SyncEngine(hub).sync().ok
    hub.close()
    return data, config.parent / "var" / "hub.db"


@dataclass
class E2E:
    """One test's world: the hub, the emulator's tenant, and the fault injector in front of it."""

    hub: Hub
    state: emulator.VoyadoState
    faults: FaultInjector
    url: str

    # -- the outbox

    def rows(self, kind: str | None = None) -> list[Any]:
        query = "SELECT id, kind, status, error_class, customer_id, payload, attempts, last_status_code, last_error"
        query += " FROM message" + (" WHERE kind = :kind" if kind else "") + " ORDER BY id"
        with self.hub.engine.connect() as conn:
            return list(conn.execute(sa.text(query), {"kind": kind}))

    def statuses(self, kind: str) -> Counter[tuple[str, str | None]]:
        return Counter((r.status, r.error_class) for r in self.rows(kind))

    def scalar(self, sql: str) -> Any:
        with self.hub.engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()

    def open_rows(self) -> int:
        return int(self.scalar("SELECT count(*) FROM message WHERE status IN ('pending', 'in_flight')"))

    def no_email(self) -> set[int]:
        """Live customers without an e-mail, the connector's match key."""
        with self.hub.engine.connect() as conn:
            sql = "SELECT id FROM customer WHERE merged_into IS NULL AND email IS NULL"
            return set(conn.execute(sa.text(sql)).scalars())

    # -- delivering

    def drain(self, passes: int = 40) -> list[DeliverySummary]:
        """``deliver()`` until nothing is pending, jumping the clock between passes until every pending row is due."""
        summaries: list[DeliverySummary] = []
        shift = timedelta(0)
        for _ in range(passes):
            with time_machine.travel(datetime.now(UTC) + shift, tick=True):
                summaries.append(deliver(self.hub))
            if not self.open_rows():
                return summaries
            due = self.scalar("SELECT max(next_attempt_at) FROM message WHERE status = 'pending'")
            if due is not None:
                due = due if isinstance(due, datetime) else datetime.fromisoformat(str(due))
                due = due if due.tzinfo else due.replace(tzinfo=UTC)
                shift = max(shift, due - datetime.now(UTC) + timedelta(milliseconds=50))
        stuck = [(r.id, r.kind, r.attempts, r.error_class) for r in self.rows() if r.status in ("pending", "in_flight")]
        raise AssertionError(f"still open after {passes} passes: {stuck}")

    def enqueue_triggers(self, count: int = TRIGGERS) -> list[int]:
        """Custom triggers for the first customers with an e-mail, each with a ``ref`` to count it by."""
        destination = self.hub.connector("voyado")
        now = datetime.now(UTC)
        with self.hub.engine.begin() as conn:
            sql = "SELECT id FROM customer WHERE merged_into IS NULL AND email IS NOT NULL ORDER BY id LIMIT :n"
            ids = list(conn.execute(sa.text(sql), {"n": count}).scalars())
            views = customer_views(conn, ids)
            for customer_id in ids:
                keys = hub_keys(views[customer_id])
                payload = destination.prepare(
                    "trigger", {"trigger_id": "welcome", "data": {"ref": f"t{customer_id}"}, "_hub": keys}
                )
                enqueue(conn, "voyado", "trigger", customer_id, payload, f"voyado:trigger:welcome:{customer_id}", now)
        return ids

    # -- the emulator

    def received_triggers(self) -> Counter[str]:
        with self.state.lock:
            return Counter(call["data"]["ref"] for call in self.state.triggers)

    def requests(self) -> int:
        with self.state.lock:
            return self.state.requests


@pytest.fixture
def make_e2e(synced: tuple[Path, Path], tmp_path: Path) -> Iterator[Callable[..., E2E]]:
    """Build an E2E: an emulator behind ``faults``, and a project on a copy of the synced database."""
    data, template = synced
    made: list[tuple[Hub, Any]] = []

    def make(faults: Faults | None = None, *, api_keys: tuple[str, ...] | None = None, **delivery: Any) -> E2E:
        app = emulator.app(rate_limit=None, api_keys=api_keys or (emulator.DEFAULT_API_KEY,))
        injector = FaultInjector(app, faults)
        server = serve(injector)
        url = server.__enter__()
        config = _write_project(tmp_path / f"project{len(made)}", data, url, {**BASE_DELIVERY, **delivery})
        with sqlite3.connect(template) as source, sqlite3.connect(config.parent / "var" / "hub.db") as target:
            source.backup(target)
        hub = Hub.load(config, project_dir=config.parent)
        made.append((hub, server))
        return E2E(hub, app.state.voyado, injector, url)

    yield make
    for hub, server in made:
        hub.close()
        server.__exit__(None, None, None)


def _assert_emulator_holds_each_once(e2e: E2E) -> None:
    """No two contacts with one e-mail; receipts are exactly the orders sent, each once."""
    snapshot = e2e.state.snapshot()
    emails = Counter(c["attributes"].get("email") for c in snapshot["contacts"])
    assert max(emails.values()) == 1, [email for email, n in emails.items() if n > 1]
    sent_upserts = {r.customer_id for r in e2e.rows("contact_upsert") if r.status == "sent"}
    assert len(snapshot["contacts"]) == len(sent_upserts)
    sent_orders = [json.loads(r.payload) for r in e2e.rows("order") if r.status == "sent"]
    sent_receipt_ids = Counter(p["uniqueReceiptId"] for p in sent_orders)
    assert sorted(r["uniqueReceiptId"] for r in snapshot["receipts"]) == sorted(sent_receipt_ids)
    assert len(snapshot["receipts"]) == len(sent_orders)


def _assert_everything_sent_but_data_invalid(e2e: E2E) -> None:
    """Every contact and order is sent, except those dead as invalid because the customer has no e-mail."""
    no_email = e2e.no_email()
    assert no_email, "the demo data should have customers without an e-mail"
    upserts = e2e.rows("contact_upsert")
    invalid = {r.customer_id for r in upserts if (r.status, r.error_class) == ("dead", "invalid")}
    assert invalid == no_email
    assert {r.status for r in upserts if r.customer_id not in no_email} == {"sent"}
    orders = e2e.rows("order")
    unsent = [(r.id, r.status, r.error_class, r.last_error) for r in orders if r.customer_id not in no_email]
    assert [row for row in unsent if row[1] != "sent"] == []
    assert {(r.status, r.error_class) for r in orders if r.customer_id in no_email} <= {("dead", "invalid")}


# ---------------------------------------------------------------------------------------------------- tests


def test_30_percent_faults_before_processing_everything_sent_once(make_e2e: Callable[..., E2E]) -> None:
    """5xx, 429 and timeouts that never reach Engage's logic: retries deliver everything, and since nothing
    was processed twice, even at-least-once triggers arrive exactly once."""
    # 5xx, 429 with Retry-After: 1, and requests held past the client's read timeout without being processed.
    faults = Faults(error_rate=0.2, rate_429=0.02, timeout_rate=0.08, hang_seconds=1.5, seed=3)
    e2e = make_e2e(faults, read_timeout=0.75, guarantee={"trigger": "at_least_once"})
    e2e.enqueue_triggers()

    summaries = e2e.drain()

    stats = e2e.faults.stats
    assert stats["error"] and stats["rate_429"] and stats["timeout"], stats
    assert sum(s["voyado"].retries for s in summaries) > 0
    _assert_everything_sent_but_data_invalid(e2e)
    _assert_emulator_holds_each_once(e2e)
    assert e2e.statuses("trigger") == {("sent", None): TRIGGERS}
    received = e2e.received_triggers()
    assert len(received) == TRIGGERS and set(received.values()) == {1}


#: Lost answers: Engage processes the request, then the connection is cut (at once, or after the client's read
#: timeout). Only requests that change something are hit; a lost lookup proves nothing.
LOST = {
    "cut": ({"drop_rate": 0.4, "methods": ["POST"], "seed": 11}, {"concurrency": 1}),
    "read_timeout": ({"drop_rate": 0.4, "drop_delay": 0.6, "methods": ["POST"], "seed": 11}, {"read_timeout": 0.2}),
}


@pytest.mark.parametrize("loss", LOST)
def test_lost_answers_at_most_once_triggers_never_arrive_twice(make_e2e: Callable[..., E2E], loss: str) -> None:
    """The default for triggers: a lost answer parks the trigger (dead, unknown) instead of sending it again."""
    faults, delivery = LOST[loss]
    e2e = make_e2e(Faults(**faults), attempts_per_pass=1, **delivery)
    assert guarantee_of(e2e.hub, "voyado", "trigger") == "at_most_once"
    e2e.enqueue_triggers()

    e2e.drain()

    received = e2e.received_triggers()
    assert max(received.values()) == 1, "a trigger reached Voyado twice"
    outcomes: Counter[tuple[str, str | None]] = Counter()
    for row in e2e.rows("trigger"):
        ref = f"t{row.customer_id}"
        outcomes[row.status, row.error_class] += 1
        if row.status == "sent":
            assert received[ref] == 1
        else:
            assert (row.status, row.error_class) == ("dead", "unknown")
            assert received[ref] <= 1
            assert "at-most-once: parked for review" in row.last_error
    assert outcomes[("dead", "unknown")] > 0, "no trigger lost its answer: the seed proves nothing"
    assert outcomes[("sent", None)] > 0
    _assert_everything_sent_but_data_invalid(e2e)
    _assert_emulator_holds_each_once(e2e)


@pytest.mark.parametrize("loss", LOST)
def test_lost_answers_at_least_once_triggers_all_arrive_some_twice(make_e2e: Callable[..., E2E], loss: str) -> None:
    """Triggers switched to at least once: all arrive, some twice (the documented price); contacts and receipts
    still arrive once, whatever the guarantee, because the plugin looks up before creating and receipts dedupe."""
    faults, delivery = LOST[loss]
    e2e = make_e2e(Faults(**faults), attempts_per_pass=1, guarantee={"trigger": "at_least_once"}, **delivery)
    e2e.enqueue_triggers()

    e2e.drain()

    assert e2e.faults.stats["drop"] > 0
    assert e2e.statuses("trigger") == {("sent", None): TRIGGERS}
    received = e2e.received_triggers()
    assert len(received) == TRIGGERS
    assert max(received.values()) >= 2, "no trigger arrived twice: the documented trade-off did not show"
    # Contacts (lookup before a retried create) and receipts (uniqueReceiptId) are not duplicated by the same loss.
    assert e2e.state.receipt_duplicates > 0, "no receipt was re-sent after a lost answer: the seed proves nothing"
    _assert_everything_sent_but_data_invalid(e2e)
    _assert_emulator_holds_each_once(e2e)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[[E2E, str], Any]:
    """``hub <args>`` through typer's runner, on an E2E's hub."""
    from typer.testing import CliRunner

    from hub import cli as hub_cli

    monkeypatch.setenv("COLUMNS", "200")

    def run(e2e: E2E, *args: str) -> Any:
        monkeypatch.setattr(hub_cli, "_load", lambda config: e2e.hub)
        result = CliRunner().invoke(hub_cli.make_cli(), list(args))
        assert result.exit_code == 0, result.output
        return result

    return run


def test_a_contact_engage_refuses_is_a_dead_letter_with_its_body_and_replays_after_the_fix(
    make_e2e: Callable[..., E2E], cli: Callable[..., Any]
) -> None:
    """Engage's 400 is kept with its body, shown by `hub deadletters`, and `replay` after the fix sends that row."""
    e2e = make_e2e()
    with e2e.hub.engine.begin() as conn:
        customer_id, phone = conn.execute(
            sa.text(
                "SELECT c.id, c.phone FROM customer c WHERE c.merged_into IS NULL AND c.email IS NOT NULL"
                " AND c.phone IS NOT NULL AND EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)"
                " ORDER BY c.id LIMIT 1"
            )
        ).one()
        # A source sent a number the outbound mapping passes on as it is, and Engage does not take.
        conn.execute(sa.text("UPDATE customer SET phone = '+47 12' WHERE id = :id"), {"id": customer_id})

    deliver(e2e.hub)

    (dead,) = [r for r in e2e.rows("contact_upsert") if r.customer_id == customer_id]
    assert (dead.status, dead.error_class, dead.last_status_code) == ("dead", "rejected", 400)
    assert json.loads(dead.last_error)["errorCode"] == "InvalidPhoneNumber"
    listed = cli(e2e, "deadletters", "list", "--destination", "voyado", "--kind", "contact_upsert").stdout
    line = next(line for line in listed.splitlines() if line.split()[:1] == [str(dead.id)])
    assert "rejected" in line and "400" in line and "InvalidPhoneNumber" in line
    shown = cli(e2e, "deadletters", "show", str(dead.id)).stdout
    assert "error (rejected 400)" in shown and "'+47 12' is not a valid phone number" in shown
    assert not any(c["attributes"].get("mobilePhone") == "+4712" for c in e2e.state.snapshot()["contacts"])

    with e2e.hub.engine.begin() as conn:  # the source fixed it and a re-sync loaded it
        conn.execute(
            sa.text("UPDATE customer SET phone = :phone, updated_at = :now WHERE id = :id"),
            {"phone": phone, "now": datetime.now(UTC), "id": customer_id},
        )
    replayed = cli(e2e, "deadletters", "replay", str(dead.id), "--actor", "kari").stdout
    assert f"replayed 1 by kari: {dead.id}" in replayed
    e2e.drain()

    # The replayed row itself is sent: change detection did not enqueue the fixed data again and skip the replay.
    rows = [(r.id, r.status, r.error_class) for r in e2e.rows("contact_upsert") if r.customer_id == customer_id]
    assert rows == [(dead.id, "sent", None)]
    assert "replay by kari" in cli(e2e, "deadletters", "show", str(dead.id)).stdout
    with e2e.hub.engine.connect() as conn:
        audit = conn.execute(sa.text("SELECT action, actor FROM outbox_audit WHERE message_id = :id"), {"id": dead.id})
        assert audit.all() == [("replay", "kari")]
    assert phone in {c["attributes"].get("mobilePhone") for c in e2e.state.snapshot()["contacts"]}
    _assert_everything_sent_but_data_invalid(e2e)
    _assert_emulator_holds_each_once(e2e)


def test_a_refused_api_key_pauses_voyado_and_the_next_pass_after_the_fix_sends_everything(
    make_e2e: Callable[..., E2E],
) -> None:
    """A 401 pauses the destination without spending attempts; once the key works, the next pass resumes."""
    import httpx

    e2e = make_e2e(api_keys=("a-rotated-key",))
    e2e.enqueue_triggers(5)

    first, again = deliver(e2e.hub), deliver(e2e.hub)

    assert not first.ok and first["voyado"].paused
    assert "credentials refused (401)" in (first["voyado"].paused_reason or "")
    assert not again.ok and again["voyado"].paused and again["voyado"].requests == 0
    rows = [r for r in e2e.rows() if r.error_class != "invalid"]
    assert {(r.status, r.attempts) for r in rows} == {("pending", 0)}, "a refused key must not spend attempts"
    assert e2e.state.snapshot()["contacts"] == []

    answer = httpx.post(f"{e2e.url}/_emulator/config", json={"api_keys": [emulator.DEFAULT_API_KEY]})
    assert answer.status_code == 200
    summaries = e2e.drain()

    assert summaries[0]["voyado"].resumed and not summaries[0]["voyado"].paused
    with e2e.hub.engine.connect() as conn:
        paused = conn.execute(sa.text("SELECT paused FROM destination_state WHERE destination = 'voyado'")).scalar()
        actions = conn.execute(sa.text("SELECT action, actor FROM outbox_audit")).all()
    assert not paused and [tuple(a) for a in actions] == [("resume", "hub")]
    assert e2e.statuses("trigger") == {("sent", None): 5}
    _assert_everything_sent_but_data_invalid(e2e)
    _assert_emulator_holds_each_once(e2e)


def test_an_unchanged_resync_then_deliver_sends_nothing(make_e2e: Callable[..., E2E]) -> None:
    """Every file read and loaded again, nothing changed: no message enqueued, no request made."""
    e2e = make_e2e()
    e2e.drain()
    requests, messages = e2e.requests(), len(e2e.rows())

    with e2e.hub.engine.begin() as conn:  # read every file again, as a full re-sync would
        conn.execute(sa.text("DELETE FROM sync_state"))
    resync = SyncEngine(e2e.hub).sync()
    assert resync.ok and resync.records_read > 0
    summary = deliver(e2e.hub)["voyado"]

    assert summary.enqueued == dict.fromkeys(summary.enqueued, 0)
    assert (summary.total_sent, summary.requests) == (0, 0)
    assert (e2e.requests(), len(e2e.rows())) == (requests, messages)
