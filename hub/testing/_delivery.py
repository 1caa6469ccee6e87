"""The machinery behind :class:`hub.testing.destination.DestinationContract`: the emulator served with a recorder
and faults in front of it, one test's world (:class:`ContractEnv`), and a real hub for the tests that go through the
outbox and the dispatcher. Imported only with the contract, never when pytest loads ``hub.testing``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from hub.connectors import Destination, Outgoing
from hub.delivery.outcomes import Outcome
from hub.sandbox import Emulator, FaultInjector, Faults, serve

if TYPE_CHECKING:
    from hub.app import Hub

#: The outbound mapping of the contract's hub: change detection needs one, and finds no customers to map.
MAPPING = "fields:\n  email: customer.email\n"


# ------------------------------------------------------------------------------------------- the emulator side


@dataclass(frozen=True, slots=True)
class Seen:
    """One request the emulator app processed (faults answered before the app are not seen)."""

    method: str
    path: str
    size: int
    status: int
    body: str = ""  # the response body of an error answer (status >= 400), else empty


class Recorder:
    """ASGI middleware between the fault injector and the emulator: notes every request the app processes."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[Seen] = []
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator/"):
            await self.app(scope, receive, send)
            return
        size, status, body = 0, 0, bytearray()
        noted = False

        def note() -> None:
            nonlocal noted
            if not noted:
                noted = True
                seen = Seen(scope["method"], scope["path"], size, status, body.decode("utf-8", "replace"))
                with self._lock:
                    self.seen.append(seen)

        async def counting_receive() -> Any:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
            return message

        async def noting_send(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                if status >= 400 and len(body) < 8000:
                    body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    note()  # before the last chunk leaves: the client must never see an answer not yet noted
            await send(message)

        try:
            await self.app(scope, counting_receive, noting_send)
        finally:
            note()


@dataclass
class ContractEnv:
    """One test's world: the emulator ``app`` (its state), the ``faults`` in front of it, its ``url``, and a
    ``destination`` bound to a client built by the core. :meth:`send` sends one message as the dispatcher would."""

    app: Any
    faults: FaultInjector
    url: str
    destination: Destination
    recorder: Recorder
    refs: dict[int, str] = field(default_factory=dict)
    _ids: dict[str, int] = field(default_factory=dict)

    @property
    def seen(self) -> list[Seen]:
        """Every request the emulator processed so far, in order."""
        with self.recorder._lock:
            return list(self.recorder.seen)

    def prepare(self, kind: str, view: dict[str, Any]) -> dict[str, Any]:
        return self.destination.prepare(kind, view)

    def send(self, kind: str, view: dict[str, Any], *, uncertain: bool = False, attempts: int = 1) -> Outcome:
        """``prepare`` then ``send`` one message, carrying the remote id an earlier upsert of its customer
        returned, as the dispatcher does; ``uncertain`` marks a resend after an unknown outcome.

        The same view is the same outbox row: a resend has the message's id and idempotency key again.
        """
        payload = self.prepare(kind, view)
        customer_id = (view.get("_hub") or {}).get("customer_id")
        key = f"contract:{kind}:{zlib.crc32(json.dumps(view, sort_keys=True, default=str).encode()):08x}"
        number = self._ids.setdefault(key, len(self._ids) + 1)
        message = Outgoing(
            id=number,
            kind=kind,
            customer_id=customer_id,
            payload=payload,
            idempotency_key=key,
            attempts=attempts,
            remote_ref=self.refs.get(customer_id) if customer_id is not None else None,
            uncertain=uncertain,
        )
        outcomes = self.destination.send(kind, [message])
        assert len(outcomes) == 1, f"send returned {len(outcomes)} outcomes for one message"
        outcome = outcomes[0]
        if kind == "contact_upsert" and outcome.status == "sent" and outcome.ref and customer_id is not None:
            self.refs[customer_id] = outcome.ref
        return outcome

    def quiet(self) -> None:
        """No faults from now on."""
        self.faults.faults = Faults()


def closed_port_url() -> str:
    """A loopback URL nobody listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def customer_id(key: str) -> int:
    """A stable customer id for an e-mail (the same in every view of one test)."""
    return zlib.crc32(key.encode()) % 1_000_000_000 + 1


def is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())


@contextmanager
def served(emulator: Emulator) -> Iterator[tuple[Any, FaultInjector, Recorder, str]]:
    """A fresh app of ``emulator`` on loopback: ``(app, fault injector, recorder, base URL)``."""
    app = emulator.app()
    recorder = Recorder(app)
    injector = FaultInjector(recorder)
    with serve(injector) as url:
        yield app, injector, recorder, url


# ------------------------------------------------------------------------------- the outbox and the dispatcher


@contextmanager
def contract_hub(
    destination_type: type[Destination],
    settings: Mapping[str, Any],
    delivery: Mapping[str, Any],
    *,
    timezone: str,
    project: Path,
) -> Iterator[Hub]:
    """A hub on a fresh SQLite file in ``project`` whose one destination, named after the type, has ``settings``.

    The type is registered directly (no entry points), as a plugin's own tests do before it is installed.
    """
    from hub.app import Hub
    from hub.plugins import hookimpl, make_plugin_manager
    from hub.schema import upgrade

    class Registers:
        @hookimpl
        def hub_connector_types(self) -> list[type[Destination]]:
            return [destination_type]

    project.mkdir()
    (project / "contract-mapping.yaml").write_text(MAPPING, encoding="utf-8")
    name = destination_type.type
    connector = {
        "plugin": name,
        "mapping": "contract-mapping.yaml",
        "settings": dict(settings),
        "delivery": dict(delivery),
    }
    config = {
        "database": {"url": f"sqlite:///{project / 'hub.db'}"},
        "project_dir": str(project),
        "timezone": timezone,
        "connectors": {name: connector},
    }
    path = project / "hub.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    hub = Hub.load(path, pm=make_plugin_manager(entrypoints=False, plugins=[Registers()]))
    try:
        upgrade(hub.engine)
        yield hub
    finally:
        hub.close()


def enqueue(hub: Hub, name: str, messages: list[tuple[str, dict[str, Any], str]]) -> None:
    """Write ``(kind, view, key)`` messages to the outbox as change detection would (payloads from ``prepare``)."""
    from hub.delivery.changes import enqueue_many

    destination = hub.connector(name)
    assert isinstance(destination, Destination)
    rows = []
    for kind, view, key in messages:
        customer = (view.get("_hub") or {}).get("customer_id")
        rows.append((kind, customer, destination.prepare(kind, view), f"{name}:{kind}:{key}", None))
    with hub.engine.begin() as conn:
        enqueue_many(conn, name, rows, datetime.now(UTC))


def drain(hub: Hub, name: str, passes: int = 60) -> list[Any]:
    """``deliver()`` until nothing is pending; between passes every rescheduled row is made due at once (the clock
    jumps instead of the test sleeping). Returns the destination's outbox rows."""
    import sqlalchemy as sa

    from hub.delivery.dispatcher import deliver
    from hub.models.delivery import Message

    table = Message.__table__  # type: ignore[attr-defined]
    mine = table.c.destination == name
    for _ in range(passes):
        summary = deliver(hub, [name])[name]
        assert summary.error is None, summary.error
        assert summary.enqueued, "change detection failed in the contract's hub (see the log)"
        assert not summary.paused, f"the destination paused: {summary.paused_reason}"
        with hub.engine.begin() as conn:
            due = sa.update(table).where(mine, table.c.status == "pending").values(next_attempt_at=datetime.now(UTC))
            if not conn.execute(due).rowcount:
                break
        time.sleep(0.01)
    with hub.engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(mine).order_by(table.c.id)).all()
    still_open = [(r.kind, r.status, r.attempts, r.last_error) for r in rows if r.status in ("pending", "in_flight")]
    assert not still_open, f"still open after {passes} passes: {still_open}"
    return rows
