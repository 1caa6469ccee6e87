"""Shop and store purchases end to end: demo data -> sync -> outbox -> dispatcher -> RaptorConnector -> loopback
HTTP -> the Raptor emulator behind a FaultInjector. What Raptor received is checked line by line against the
order lines in the database: each exactly once when no answer is lost, at most once (and accounted for in the
parked order's reason) when answers are lost.

The demo data is generated and synced once per module; each test gets a copy of that database.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from hub._yaml import load_located
from hub.app import Hub
from hub.delivery.dispatcher import deliver
from hub.engine.run import SyncEngine
from hub.plugins import make_plugin_manager
from hub.sandbox.faults import FaultInjector, Faults
from hub.sandbox.server import serve
from hub.schema import upgrade
from hub_plugins import raptor as raptor_plugin
from hub_plugins.demo.generator import generate
from hub_plugins.raptor import emulator

ROOT = Path(__file__).resolve().parents[3]
CUSTOMERS = 30
DELIVERY: dict[str, Any] = {
    "rate_limit": 1000,
    "concurrency": 8,
    "backoff_initial": 0.01,
    "backoff_max": 0.05,
    "max_attempts": 40,
    "attempts_per_pass": 2,
    # Long enough that a busy machine never times a request out on its own: only injected faults lose answers.
    "read_timeout": 3.0,
}
#: Every line Raptor should count: live (surviving) customers with an e-mail or a member number, not returns.
EXPECTED = """
SELECT o.external_id, l.sku, o.channel FROM orders o
JOIN order_line l ON l.order_id = o.id
JOIN customer c0 ON c0.id = o.customer_id
JOIN customer c ON c.id = COALESCE(c0.merged_into, c0.id)
WHERE NOT o.is_return AND l.sku IS NOT NULL AND l.quantity > 0 AND (c.email IS NOT NULL OR c.member_no IS NOT NULL)
"""


def _write_project(base: Path, data: Path, url: str, **delivery: Any) -> Path:
    """The demo's sources, and a ``raptor`` destination at ``url`` in place of the demo's ESP and programmes."""
    base.mkdir()
    (base / "mappings").symlink_to(ROOT / "mappings")
    (base / "var").mkdir()
    (base / "var" / "demo").symlink_to(data)
    config = load_located(ROOT / "config" / "hub.yaml").data
    for block in ("segments", "triggers", "contact_pressure", "daemon"):
        config.pop(block, None)
    config["batch_size"] = 100
    sources = {k: v for k, v in config["connectors"].items() if v["plugin"] == "files"}
    # 30% faults: 16 attempts make a line running out of them (0.3**16) as good as impossible in a test run.
    settings = {**emulator_settings(url), "line_backoff_max": 0.05, "line_attempts": 16}
    config["connectors"] = {
        **sources,
        "raptor": {"plugin": "raptor", "settings": settings, "delivery": {**DELIVERY, **delivery}},
    }
    (base / "hub.yaml").write_text(json.dumps(config, indent=1), encoding="utf-8")
    return base / "hub.yaml"


def emulator_settings(url: str) -> dict[str, Any]:
    (described,) = raptor_plugin.hub_emulators()
    return described.settings(url)


def _load(config: Path) -> Hub:
    """A hub with the raptor plugin registered whether or not its entry point is installed."""
    pm = make_plugin_manager()
    if not pm.is_registered(raptor_plugin):
        pm.register(raptor_plugin, name="raptor")
    return Hub.load(config, pm=pm, project_dir=config.parent)


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("raptor-e2e")
    data = base / "data"
    generate(data, customers=CUSTOMERS, seed=7)
    config = _write_project(base / "template", data, "http://127.0.0.1:9")
    hub = _load(config)
    upgrade(hub.engine)
    assert SyncEngine(hub).sync().ok
    hub.close()
    return data, config.parent / "var" / "hub.db"


@dataclass
class World:
    hub: Hub
    app: Starlette
    faults: FaultInjector

    def expected(self) -> Counter[tuple[str, str]]:
        with self.hub.engine.connect() as conn:
            rows = conn.execute(sa.text(EXPECTED)).all()
        return Counter((external_id, sku) for external_id, sku, _ in rows)

    def channels(self) -> set[str]:
        with self.hub.engine.connect() as conn:
            return {channel for *_, channel in conn.execute(sa.text(EXPECTED))}

    def received(self) -> Counter[tuple[str, str]]:
        return Counter({key: n for key, n in self.app.state.raptor.buy_counts().items()})

    def rows(self) -> list[Any]:
        with self.hub.engine.connect() as conn:
            sql = "SELECT id, status, error_class, payload, last_error FROM message WHERE destination = 'raptor'"
            return list(conn.execute(sa.text(sql)))

    def drain(self, passes: int = 60) -> None:
        """``deliver()`` until nothing is pending; rescheduled rows are made due at once between passes."""
        for _ in range(passes):
            summary = deliver(self.hub, ["raptor"])["raptor"]
            assert summary.error is None and not summary.paused, summary
            with self.hub.engine.begin() as conn:
                pending = conn.execute(
                    sa.text("UPDATE message SET next_attempt_at = :now WHERE status = 'pending'"),
                    {"now": datetime.now(UTC)},
                ).rowcount
            if not pending:
                return
        raise AssertionError(f"still pending after {passes} passes")


@pytest.fixture
def make_world(synced: tuple[Path, Path], tmp_path: Path) -> Iterator[Callable[..., World]]:
    data, template = synced
    opened: list[tuple[Hub, Any]] = []

    def make(faults: Faults, **delivery: Any) -> World:
        app = emulator.app()
        injector = FaultInjector(app, faults)
        server = serve(injector)
        url = server.__enter__()
        config = _write_project(tmp_path / f"project{len(opened)}", data, url, **delivery)
        with sqlite3.connect(template) as source, sqlite3.connect(config.parent / "var" / "hub.db") as target:
            source.backup(target)
        hub = _load(config)
        opened.append((hub, server))
        return World(hub, app, injector)

    yield make
    for hub, server in opened:
        hub.close()
        server.__exit__(None, None, None)


def test_30_percent_faults_before_processing_every_shop_and_store_line_arrives_exactly_once(
    make_world: Callable[..., World],
) -> None:
    world = make_world(Faults(error_rate=0.25, rate_429=0.05, retry_after=0, seed=5))

    world.drain()

    assert {"web", "pos"} <= world.channels(), "the demo data should hold shop orders and store receipts"
    assert world.faults.stats["error"] and world.faults.stats["rate_429"]
    unsent = [(r.status, r.error_class, r.last_error) for r in world.rows() if r.status not in ("sent", "skipped")]
    assert {(status, error) for status, error, _ in unsent} <= {("dead", "invalid")}, unsent
    assert world.received() == world.expected()


def test_30_percent_faults_with_lost_answers_no_line_twice_and_every_gap_is_named(
    make_world: Callable[..., World],
) -> None:
    """5xx, 429, timeouts (never processed) and answers lost after processing: a line reaches Raptor at most
    once; a sent order's lines all arrived; a parked order's reason says which of its lines Raptor may lack."""
    faults = Faults(error_rate=0.12, rate_429=0.06, retry_after=0, timeout_rate=0.04, hang_seconds=2, drop_rate=0.08)
    world = make_world(faults.model_copy(update={"seed": 11}), read_timeout=0.5)

    world.drain()

    stats = world.faults.stats
    assert stats["drop"] and stats["timeout"], stats
    received, expected = world.received(), world.expected()
    assert not received - expected, "a line reached Raptor twice, or one that is not a buy"
    parked = 0
    for row in world.rows():
        payload = json.loads(row.payload)
        lines = [(payload["order_id"], line["params"]["p2"]) for line in payload.get("lines", [])]
        if row.status == "sent":
            assert all(received[line] >= 1 for line in lines), row.id
        elif (row.status, row.error_class) == ("dead", "unknown"):
            parked += 1
            confirmed = re.search(r"confirmed \(([^)]*)\)", row.last_error).group(1)
            numbers = {int(n) for n in confirmed.split(", ") if n.isdigit()}
            for line, sent in zip(payload["lines"], lines, strict=True):
                if line["line_no"] in numbers:
                    assert received[sent] >= 1
                else:
                    assert f"line {line['line_no']} " in row.last_error, row.last_error
        else:
            assert (row.status, row.error_class) in (("skipped", "skipped"), ("dead", "invalid")), row
    assert parked, "no order lost an answer: the seed proves nothing"
    missing = expected - received
    assert sum(missing.values()) <= stats["timeout"] + stats["drop"], "more lines missing than answers lost"
