"""Helpers for the Actito tests: destinations whose client the core builds, views, sends, and a real hub
(SQLite, outbox, dispatcher) with the plugin registered directly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

import hub_plugins.actito
import hub_plugins.standard
from hub.app import Hub
from hub.config._models import DeliveryConfig
from hub.connectors import ConnectorContext, Outgoing
from hub.delivery.changes import enqueue_many
from hub.delivery.dispatcher import DestinationSummary, deliver
from hub.delivery.http import make_client
from hub.delivery.outcomes import Outcome
from hub.models.delivery import Message
from hub.plugins import make_plugin_manager
from hub.schema import upgrade
from hub_plugins.actito import emulator, emulator_settings
from hub_plugins.actito.destination import ActitoDestination
from hub_plugins.actito.settings import ActitoSettings

REPO = Path(__file__).resolve().parents[3]
#: Quick retries and no waiting for the plugin's own 100-calls-a-minute default: the tests set emulator limits.
DELIVERY: dict[str, Any] = {
    "rate_limit": 1000,
    "concurrency": 4,
    "backoff_initial": 0.01,
    "backoff_max": 0.05,
    "read_timeout": 2.0,
    "connect_timeout": 2.0,
}
_MESSAGE: sa.Table = Message.__table__  # type: ignore[attr-defined]


def make_destination(
    base_url: str, tmp_path: Path, *, delivery: dict[str, Any] | None = None, **settings: Any
) -> ActitoDestination:
    """A destination with its HTTP client built by the core (token auth, limits, timeouts)."""
    values = {**emulator_settings(base_url), "poll_interval": 0.01, **settings}
    context = ConnectorContext(name="actito", project_dir=tmp_path, timezone="Europe/Brussels")
    destination = ActitoDestination(ActitoSettings(**values), context)
    destination.bind_http(make_client(destination, DeliveryConfig.model_validate({**DELIVERY, **(delivery or {})})))
    return destination


def keys(email: str | None, customer_id: int = 12, **extra: Any) -> dict[str, Any]:
    return {"customer_id": customer_id, "email": email, "phone": None, "member_no": None, "external_ids": {}, **extra}


def contact(email: str, customer_id: int = 12, **fields: Any) -> dict[str, Any]:
    """A contact_upsert view as mappings/actito.yaml makes it."""
    return {"emailAddress": email, **fields, "_hub": keys(email, customer_id)}


def people(count: int, prefix: str = "p") -> list[dict[str, Any]]:
    return [contact(f"{prefix}{n}@example.com", n + 1, firstName=f"N{n}") for n in range(count)]


def send_all(destination: ActitoDestination, kind: str, views: list[dict[str, Any]], **outgoing: Any) -> list[Outcome]:
    """One batch of ``views`` as the dispatcher hands it over (message ids 1, 2, ...)."""
    batch = [
        Outgoing(id=n, kind=kind, customer_id=n, payload=destination.prepare(kind, view), idempotency_key=f"k{n}")
        for n, view in enumerate(views, 1)
    ]
    for message in batch:
        for name, value in outgoing.items():
            setattr(message, name, value)
    outcomes = destination.send(kind, batch)
    assert len(outcomes) == len(batch)
    return outcomes


def send(destination: ActitoDestination, kind: str, view: dict[str, Any], **outgoing: Any) -> Outcome:
    (outcome,) = send_all(destination, kind, [view], **outgoing)
    return outcome


@contextmanager
def token_client(base_url: str) -> Iterator[httpx.Client]:
    """A plain client holding a fresh token, for emulator tests."""
    with httpx.Client(base_url=base_url, headers={"Accept": "application/json"}, timeout=10) as client:
        answer = client.get("/auth/token", headers={"Authorization": emulator.DEFAULT_API_KEY})
        client.headers["Authorization"] = f"Bearer {answer.json()['accessToken']}"
        yield client


# -- a real hub ------------------------------------------------------------------------------------------------------


@contextmanager
def actito_hub(tmp_path: Path, url: str, *, delivery: dict[str, Any] | None = None, **settings: Any) -> Iterator[Hub]:
    """A hub on a fresh SQLite file with one destination ``actito`` (mappings/actito.yaml) at ``url``."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    connector = {
        "plugin": "actito",
        "mapping": str(REPO / "mappings" / "actito.yaml"),
        "settings": {**emulator_settings(url), "poll_interval": 0.01, **settings},
        "delivery": {**DELIVERY, "max_attempts": 30, **(delivery or {})},
    }
    config = {
        "database": {"url": f"sqlite:///{project / 'hub.db'}"},
        "project_dir": str(project),
        "timezone": "Europe/Brussels",
        "connectors": {"actito": connector},
    }
    path = project / "hub.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    plugins = [hub_plugins.standard, hub_plugins.actito]
    hub = Hub.load(path, pm=make_plugin_manager(entrypoints=False, plugins=plugins))
    try:
        upgrade(hub.engine)
        yield hub
    finally:
        hub.close()


def enqueue(hub: Hub, kind: str, views: list[dict[str, Any]], tag: str = "v1") -> None:
    """Outbox rows as change detection writes them (payloads from the plugin's prepare)."""
    destination = hub.connector("actito")
    rows = [
        (kind, view["_hub"]["customer_id"], destination.prepare(kind, view), f"actito:{kind}:{n}:{tag}", None)
        for n, view in enumerate(views)
    ]
    with hub.engine.begin() as conn:
        enqueue_many(conn, "actito", rows, datetime.now(UTC))


def deliver_once(hub: Hub) -> DestinationSummary:
    summary = deliver(hub, ["actito"])["actito"]
    assert summary.error is None, summary.error
    return summary


def statuses(hub: Hub) -> dict[str, int]:
    with hub.engine.connect() as conn:
        query = sa.select(_MESSAGE.c.status, sa.func.count()).group_by(_MESSAGE.c.status)
        return {status: count for status, count in conn.execute(query)}


def drain(hub: Hub, passes: int = 40) -> dict[str, int]:
    """Deliver until nothing is pending, making rescheduled rows due at once; returns {status: rows}."""
    for _ in range(passes):
        deliver_once(hub)
        with hub.engine.begin() as conn:
            pending = conn.execute(
                sa.update(_MESSAGE).where(_MESSAGE.c.status == "pending").values(next_attempt_at=datetime.now(UTC))
            ).rowcount
        if not pending:
            break
    return statuses(hub)
