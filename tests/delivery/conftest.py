"""A Hub with destinations for the dispatcher's tests.

``scripted`` is a Destination whose ``send`` answers from a script keyed by idempotency key: this exercises what
the *core* does with each outcome (it is not a connector mock: no remote API behaviour is imitated).
``webhook`` is a Destination that POSTs each message to a real HTTP server (a tiny Starlette app served on
loopback with ``hub.sandbox.server.serve``), for the HTTP-level behaviour: rate limits, Retry-After, timeouts.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import sqlalchemy as sa

from hub.app import Hub
from hub.connectors import CheckResult, ClientOptions, ConnectorSettings, Destination, KindSpec, Outgoing
from hub.delivery.outcomes import Outcome
from hub.models.delivery import Message
from hub.plugins import hookimpl, make_plugin_manager
from hub.schema import upgrade

Answer = Outcome | Exception | Callable[[Outgoing], Outcome]


@dataclass
class Script:
    """What ``scripted`` answers, per idempotency key: a queue of answers (the last one repeats), default sent.

    An answer is an Outcome, an exception (raised from ``send``: the whole batch), or a callable of the
    message. ``hang`` (an Event) makes every send wait until it is set. ``batch_answer`` may answer for a
    whole batch (an API that refuses a batch for one bad row). ``calls`` records every send.
    """

    answers: dict[str, list[Answer]] = field(default_factory=dict)
    calls: list[tuple[str, list[str], list[bool]]] = field(default_factory=list)
    check_ok: bool = True
    hang: threading.Event | None = None
    batch_answer: Callable[[list[Outgoing]], list[Outcome] | None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on(self, key: str, *answers: Answer) -> None:
        self.answers[key] = list(answers)

    def sent_keys(self) -> list[str]:
        return [key for _, keys, _ in self.calls for key in keys]

    def answer(self, message: Outgoing) -> Answer:
        with self.lock:
            queue = self.answers.get(message.idempotency_key)
            if not queue:
                return Outcome.sent(f"r-{message.idempotency_key}")
            return queue.pop(0) if len(queue) > 1 else queue[0]


SCRIPTS: dict[str, Script] = defaultdict(Script)


class ScriptedSettings(ConnectorSettings):
    pass


class Scripted(Destination):
    type = "scripted"
    Settings = ScriptedSettings
    kinds: ClassVar[dict[str, KindSpec]] = {
        "contact_upsert": KindSpec(batch_size=4),
        "contact_delete": KindSpec(batch_size=1),
        "order": KindSpec(batch_size=1),
        "trigger": KindSpec(batch_size=1, guarantee="at_most_once"),
    }

    @property
    def script(self) -> Script:
        return SCRIPTS[self.name]

    def client_options(self) -> ClientOptions:
        return ClientOptions(base_url="http://127.0.0.1:9")

    def check(self) -> CheckResult:
        return CheckResult(self.script.check_ok, "credentials accepted" if self.script.check_ok else "401")

    def send(self, kind: str, batch: list[Outgoing]) -> list[Outcome]:
        script = self.script
        with script.lock:
            script.calls.append((kind, [m.idempotency_key for m in batch], [m.uncertain for m in batch]))
        if script.hang is not None:
            script.hang.wait(30)
        if script.batch_answer is not None and (whole := script.batch_answer(batch)) is not None:
            return whole
        outcomes = []
        for message in batch:
            answer = script.answer(message)
            if isinstance(answer, Exception):
                raise answer
            outcomes.append(answer(message) if callable(answer) else answer)
        return outcomes


class WebhookSettings(ConnectorSettings):
    base_url: str


class Webhook(Destination):
    """POSTs each message to ``/messages``; classifies the answer with the taxonomy's own helpers."""

    type = "webhook"
    Settings = WebhookSettings
    default_rate_limit: ClassVar[float | None] = None
    kinds: ClassVar[dict[str, KindSpec]] = {
        "contact_upsert": KindSpec(batch_size=1),
        "trigger": KindSpec(batch_size=1, guarantee="at_most_once"),
    }

    def client_options(self) -> ClientOptions:
        return ClientOptions(base_url=self.settings.base_url, headers={"x-api-key": "k"})  # type: ignore[attr-defined]

    def send(self, kind: str, batch: list[Outgoing]) -> list[Outcome]:
        outcomes = []
        for message in batch:
            try:
                response = self.http.post("/messages", json={"key": message.idempotency_key, **message.payload})
                outcomes.append(Outcome.from_response(response))
            except httpx.TransportError as exc:
                outcomes.append(Outcome.from_error(exc))
        return outcomes


class DestinationsPlugin:
    @hookimpl
    def hub_connector_types(self) -> list[type[Destination]]:
        return [Scripted, Webhook]


_keys = itertools.count(1)


@dataclass
class DeliveryEnv:
    """A Hub on a fresh SQLite (or PostgreSQL) database, and helpers to fill and read its outbox."""

    hub: Hub

    def script(self, destination: str = "dest") -> Script:
        return SCRIPTS[destination]

    def enqueue(
        self,
        kind: str = "contact_upsert",
        *,
        destination: str = "dest",
        key: str | None = None,
        customer_id: int | None = None,
        payload: dict[str, Any] | None = None,
        now: datetime | None = None,
        **columns: Any,
    ) -> str:
        """Insert one pending row (as change detection would) and return its idempotency key."""
        key = key or f"{kind}:{next(_keys)}"
        now = now or datetime.now(UTC)
        row = {
            "destination": destination,
            "kind": kind,
            "customer_id": customer_id,
            "payload": payload or {"n": key},
            "idempotency_key": key,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
            **columns,
        }
        with self.hub.engine.begin() as conn:
            conn.execute(sa.insert(Message.__table__), [row])
        return key

    def row(self, key: str) -> Any:
        with self.hub.engine.connect() as conn:
            return conn.execute(sa.select(Message.__table__).where(Message.__table__.c.idempotency_key == key)).one()

    def status(self, key: str) -> str:
        return str(self.row(key).status)

    def statuses(self) -> dict[str, str]:
        with self.hub.engine.connect() as conn:
            rows = conn.execute(sa.select(Message.__table__.c.idempotency_key, Message.__table__.c.status))
            return dict(rows.all())  # type: ignore[arg-type]


def write_config(tmp_path: Path, url: str, connectors: dict[str, dict[str, Any]]) -> Path:
    config = {"database": {"url": url}, "project_dir": str(tmp_path), "connectors": connectors}
    path = tmp_path / "hub.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


FAST = {"backoff_initial": 0.001, "backoff_max": 0.01, "attempts_per_pass": 3, "max_attempts": 5}


@pytest.fixture
def make_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., DeliveryEnv]]:
    """Build a DeliveryEnv: ``connectors`` as in hub.yaml (default: one fast-retrying ``scripted`` named dest).

    Change detection is switched off: these tests fill the outbox themselves.
    """
    monkeypatch.setattr("hub.delivery.dispatcher._changes", lambda: None)
    made: list[Hub] = []

    def make(connectors: dict[str, dict[str, Any]] | None = None, *, url: str | None = None) -> DeliveryEnv:
        connectors = connectors or {"dest": {"plugin": "scripted", "delivery": FAST}}
        for name in connectors:
            SCRIPTS.pop(name, None)
        path = write_config(tmp_path, url or f"sqlite:///{tmp_path / 'hub.db'}", connectors)
        hub = Hub.load(path, pm=make_plugin_manager(entrypoints=False, plugins=[DestinationsPlugin()]))
        upgrade(hub.engine)
        made.append(hub)
        return DeliveryEnv(hub)

    yield make
    for hub in made:
        hub.close()


@pytest.fixture
def env(make_env: Callable[..., DeliveryEnv]) -> DeliveryEnv:
    return make_env()
