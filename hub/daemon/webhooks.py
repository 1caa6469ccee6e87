"""Webhook intake: ``POST /webhooks/{connector}`` turned into loaded rows, and the audience woken at once.

A request goes through, in order:

1. **Routing.** ``connector`` must be an enabled source that can take webhooks (a :class:`WebhookReceiver`:
   ``verify`` and ``records``, like the built-in ``webhook`` plugin); anything else is 404.
2. **Verification**, before the body is parsed: a missing or wrong signature is 401 and a warning in the log
   (connector, topic, client, body length and why, never the body or the signature).
3. **Parsing.** A body that is not JSON, or a topic with no stream, is 400; the raw body is kept as a reject at
   stage ``read``, as a broken line of an export is, so nothing sent is ever lost.
4. **Map, resolve, load**, in one transaction, through :func:`hub.engine.map.map_batch` and
   :func:`hub.engine.run.load_mapped`, the path every synced batch takes: a pushed order becomes exactly the rows
   the same order would become in a synced file. A record the mapping, the resolution or the load refuses is a
   reject; the answer is still 202 (the sender did its part; retrying would not help), with the reject ids.
5. **Answer** 202 once the transaction is committed, then wake the audience and delivery passes
   (:class:`Realtime`), so a post-purchase trigger reaches the ESP within seconds.

Webhook writes are serialised by a lock of their own (identity resolution of two concurrent requests for one new
customer must not create two) and grouped: requests that arrive during a write are committed together by the
next one (:meth:`WebhookIntake.ingest`), so fifty a second cost a few transactions, not fifty.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import sqlalchemy as sa
import structlog

from hub.connectors import Source
from hub.engine.deletions import DeletionKeys, deletion_keys
from hub.engine.map import map_batch
from hub.engine.rejects import RejectRow, fingerprint, save_rejects
from hub.engine.run import identity_rules, load_mapped
from hub.models import Reject

if TYPE_CHECKING:
    from hub.app import Hub
    from hub.daemon.jobs import Job

log = structlog.get_logger("hub.daemon.webhooks")
_reject: sa.Table = Reject.__table__  # type: ignore[attr-defined]

#: The stream a reject is filed under when the request's topic has no stream.
UNROUTED = "(unrouted)"
#: Headers worth keeping with a malformed body's reject: they say what the sender meant to send.
_KEPT_HEADERS = (
    "content-type",
    "x-shopify-topic",
    "x-shopify-shop-domain",
    "x-shopify-webhook-id",
    "x-shopify-event-id",
    "x-wc-webhook-topic",
    "x-wc-webhook-source",
    "x-wc-webhook-delivery-id",
    "x-wc-webhook-id",
)


@runtime_checkable
class WebhookReceiver(Protocol):
    """What a source offers to take webhooks. ``records`` raises ``ValueError`` for a body it cannot read; an
    exception with a ``stream`` attribute files the reject under that stream."""

    max_body_bytes: int

    def verify(self, raw_body: bytes, headers: Mapping[str, str]) -> bool: ...

    def topic(self, headers: Mapping[str, str]) -> str | None: ...

    def records(self, raw_body: bytes, headers: Mapping[str, str]) -> tuple[str, list[dict[str, Any]]]: ...


def handshake(receiver: WebhookReceiver, raw_body: bytes, headers: Mapping[str, str]) -> dict[str, Any] | None:
    """A receiver's answer to a sender's handshake (WooCommerce's activation ping, which is unsigned and wants a
    200), from its optional ``handshake(raw_body, headers)`` method; None: not a handshake."""
    method = getattr(receiver, "handshake", None)
    return method(raw_body, headers) if callable(method) else None


def acknowledge(receiver: WebhookReceiver, headers: Mapping[str, str]) -> None:
    """Tell a receiver that has an ``acknowledge(headers)`` method that the delivery is committed, so it may now
    count the delivery's id as seen (a receiver that de-duplicates must not remember a delivery whose write
    failed: the sender's retry of it would be dropped)."""
    method = getattr(receiver, "acknowledge", None)
    if callable(method):
        method(headers)


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    """The HTTP answer to one webhook, and whether it loaded anything (then the audience is woken)."""

    status: int
    body: dict[str, Any]
    loaded: bool = False


@dataclass(slots=True)
class _Pending:
    """One request's records waiting for the next group commit, and, once written, what became of them."""

    connector: str
    stream: str
    records: list[dict[str, Any]]
    done: bool = False
    result: Ingested | None = None
    error: BaseException | None = None


@dataclass(slots=True)
class Ingested:
    """What one request's records became: counts and the ids of their rejects.

    ``deleted`` and ``deletions_ignored`` count tombstones as the load applied them; requests loaded together
    (group commit) share one load, so the group's counts are given to its first request that carried tombstones.
    Per connector and stream, which is how metrics count them, the totals are exact.
    """

    stream: str
    read: int = 0
    loaded: int = 0
    rejected: int = 0
    deleted: int = 0
    deletions_ignored: int = 0
    reject_ids: list[int] = field(default_factory=list)


class WebhookIntake:
    """The work behind ``POST /webhooks/{connector}``; :meth:`handle` runs on a worker thread, never the loop."""

    def __init__(
        self,
        hub: Hub,
        *,
        observe: Callable[[str, int, Ingested | None], None] | None = None,
    ) -> None:
        self.hub = hub
        self.rules = identity_rules(hub)
        self.observe = observe
        self._write = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._deletions: dict[tuple[str, str], DeletionKeys] = {}

    def receiver(self, name: str) -> WebhookReceiver | None:
        """The connector ``name`` if it is an enabled source that takes webhooks, else None (answer 404)."""
        if name not in self.hub.sources():
            return None
        connector = self.hub.connector(name)
        if isinstance(connector, Source) and isinstance(connector, WebhookReceiver):
            return connector
        return None

    def handle(
        self, name: str, receiver: WebhookReceiver, raw_body: bytes, headers: Mapping[str, str], client: str | None
    ) -> WebhookAnswer:
        started = time.perf_counter()
        topic = _safe_topic(receiver, headers)
        bound = log.bind(connector=name, topic=topic, client=client, bytes=len(raw_body))
        greeting = handshake(receiver, raw_body, headers)
        if greeting is not None:
            bound.info("webhook handshake answered")
            return self._answer(name, 200, greeting, None)
        if not receiver.verify(raw_body, headers):
            bound.warning("webhook refused: missing or invalid signature")
            return self._answer(name, 401, {"error": "invalid or missing signature"}, None)
        try:
            stream, records = receiver.records(raw_body, headers)
        except ValueError as exc:
            stream = getattr(exc, "stream", None) or UNROUTED
            ids = self._save_unreadable(name, stream, topic, raw_body, headers, str(exc))
            bound.warning("webhook body rejected", stream=stream, error=str(exc), reject_ids=ids)
            result = Ingested(stream=stream, read=1, rejected=1, reject_ids=ids)
            return self._answer(name, 400, {"error": str(exc), "rejects": ids}, result)
        result = self.ingest(name, stream, records)
        acknowledge(receiver, headers)
        seconds = round(time.perf_counter() - started, 4)
        if result.rejected:
            bound.warning(
                "webhook record rejected", stream=stream, rejected=result.rejected, reject_ids=result.reject_ids
            )
        bound.info("webhook loaded", stream=stream, loaded=result.loaded, rejected=result.rejected, seconds=seconds)
        body: dict[str, Any] = {
            "status": "accepted" if not result.rejected else "rejected" if not result.loaded else "partly rejected",
            "stream": stream,
            "records": result.read,
            "loaded": result.loaded,
        }
        if result.rejected:
            body["rejects"] = result.reject_ids
        return self._answer(name, 202, body, result, loaded=result.loaded > 0)

    def ingest(self, connector: str, stream: str, records: Sequence[dict[str, Any]]) -> Ingested:
        """Map, resolve and load ``records`` of ``connector``'s ``stream`` as a sync's batch is loaded.

        Group commit: requests that arrive while a write is under way wait for it, and the next writer loads all
        of them in one transaction (SQLite commits a few times a second, not once per webhook). Each request's
        own records, rejects and answer stay its own; if the group's transaction fails, each request of it is
        loaded alone, so one bad request cannot fail the others.
        """
        job = _Pending(connector, stream, list(records))
        with self._queue_lock:
            self._queue.append(job)
        with self._write:
            if not job.done:
                with self._queue_lock:
                    jobs, self._queue = self._queue, []
                self._load_group(jobs)
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _load_group(self, jobs: list[_Pending]) -> None:
        try:
            self._load(jobs)
        except Exception as exc:
            if len(jobs) == 1:
                jobs[0].error, jobs[0].done = exc, True
                return
            log.warning("a grouped webhook write failed; loading its requests one by one", requests=len(jobs))
            for job in jobs:
                self._load_group([job])

    def _load(self, jobs: list[_Pending]) -> None:
        groups: dict[tuple[str, str], list[_Pending]] = {}
        for job in jobs:
            groups.setdefault((job.connector, job.stream), []).append(job)
        now = datetime.now(UTC)
        results = {id(job): Ingested(stream=job.stream, read=len(job.records)) for job in jobs}
        with self.hub.engine.begin() as conn:
            for (connector, stream), members in groups.items():
                owner = {id(record): job for job in members for record in job.records}
                records = [record for job in members for record in job.records]
                if (connector, stream) not in self._deletions:
                    self._deletions[connector, stream] = deletion_keys(self.hub, connector, stream)
                mapped = map_batch(self.hub.mapping(connector, stream), records, self._deletions[connector, stream])
                outcome = load_mapped(
                    conn, mapped, connector=connector, stream=stream, rules=self.rules, now=now, run_id=None
                )
                counted = False
                for job in members:
                    payloads = [r.payload for r in outcome.rejects if owner.get(id(r.payload)) is job]
                    result = results[id(job)]
                    result.rejected = len(payloads)
                    tombstones = sum(1 for t in mapped.tombstones if owner.get(id(t.raw)) is job)
                    result.loaded = result.read - result.rejected - tombstones
                    if tombstones and not counted:
                        result.deleted, result.deletions_ignored = outcome.deleted, outcome.deletions_ignored
                        counted = True
                    if payloads:
                        result.reject_ids = _reject_ids(conn, connector, stream, payloads)
        for job in jobs:
            job.result = results[id(job)]
            job.done = True

    def _save_unreadable(
        self, connector: str, stream: str, topic: str | None, raw_body: bytes, headers: Mapping[str, str], error: str
    ) -> list[int]:
        payload = {
            "_error": error,
            "_raw": raw_body.decode("utf-8", errors="replace"),
            "_topic": topic,
            "_headers": {name: value for name, value in _lowered(headers).items() if name in _KEPT_HEADERS},
        }
        with self._write, self.hub.engine.begin() as conn:
            now = datetime.now(UTC)
            row = RejectRow(stage="read", errors=[error], payload=payload)
            save_rejects(conn, [row], run_id=None, connector=connector, stream=stream, now=now)
            return _reject_ids(conn, connector, stream, [payload])

    def _answer(
        self,
        name: str,
        status: int,
        body: dict[str, Any],
        result: Ingested | None,
        *,
        loaded: bool = False,
    ) -> WebhookAnswer:
        if self.observe is not None:
            try:
                self.observe(name, status, result)
            except Exception:  # metrics must never turn an accepted webhook into an error
                log.exception("recording the webhook's metrics failed")
        return WebhookAnswer(status=status, body=body, loaded=loaded)


class Realtime:
    """Runs the audience and delivery passes as soon as a webhook loaded something, coalescing bursts.

    :meth:`wake` only sets a flag. One thread waits for it, clears it and runs ``jobs`` in order (audience, then
    deliver); webhooks that arrive during a pass set the flag again, so they are covered by one more pass right
    after it: fifty webhooks a second make back-to-back passes, never fifty queued ones. The passes run one after
    the other on purpose: on SQLite, an audience pass running beside a delivery pass makes both wait for the one
    writer, and measured slower. Each run goes through ``run`` (the daemon's guard, which shares a lock per job
    with the scheduled runs, so a job never runs twice at once).
    """

    def __init__(self, jobs: list[Job], run: Callable[[Job], object], stopping: threading.Event) -> None:
        self.jobs = jobs
        self.run = run
        self.stopping = stopping
        self._wanted = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0

    def wake(self) -> None:
        self._wanted.set()

    def start(self) -> None:
        if self.jobs and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="hub-realtime", daemon=True)
            self._thread.start()

    def join(self, timeout: float) -> None:
        self._wanted.set()  # let the loop see the stop
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self.stopping.is_set():
            if not self._wanted.wait(timeout=0.5) or self.stopping.is_set():
                continue
            self._wanted.clear()
            for job in self.jobs:
                if self.stopping.is_set():
                    break
                try:
                    self.run(job)
                except Exception:  # run_job never raises; this keeps the thread alive if the guard ever does
                    log.exception("real-time pass failed", job=job.id)
            self.passes += 1


def _reject_ids(conn: sa.Connection, connector: str, stream: str, payloads: list[Any]) -> list[int]:
    """The ids of the reject rows just saved (``save_rejects`` files them by fingerprint)."""
    prints = sorted({fingerprint(payload) for payload in payloads})
    query = sa.select(_reject.c.id).where(
        _reject.c.connector == connector, _reject.c.stream == stream, _reject.c.fingerprint.in_(prints)
    )
    return sorted(int(i) for i in conn.execute(query).scalars())


def _lowered(headers: Mapping[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def _safe_topic(receiver: WebhookReceiver, headers: Mapping[str, str]) -> str | None:
    try:
        topic = receiver.topic(headers)
    except Exception:
        return None
    return topic[:200] if topic else topic
