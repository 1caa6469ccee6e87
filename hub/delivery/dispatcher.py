"""The dispatcher: one delivery pass takes due outbox rows to their destinations and records each row's outcome.

A pass (:func:`deliver`) recovers stale in-flight rows, enqueues what changed since the last pass, then runs every
destination in its own thread, so a slow, rate-limited or paused destination never holds up another. Within a
destination, rows are claimed kind by kind (contacts first), split into batches of the kind's size and sent on
``concurrency`` threads; each batch's outcomes are written with one statement. What an outcome means for the row
is decided here alone (see :mod:`hub.delivery.outcomes`), so every plugin gets the same retries, dead letters
and pauses.
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from hub.connectors import Destination
from hub.delivery import outbox
from hub.delivery.outbox import KIND_ORDER, WAITS_FOR_CONTACT, Claimed, RowUpdate
from hub.delivery.outcomes import Guarantee, Outcome
from hub.errors import ConfigError

if TYPE_CHECKING:
    from hub.app import Hub
    from hub.config._models import DeliveryConfig

log = structlog.get_logger("hub.delivery")

#: ``progress(destination, done, total)``: called after each recorded batch; ``total`` is the due rows at start.
Progress = Callable[[str, int, int], None]
_MIN_DELAY = timedelta(milliseconds=1)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DestinationSummary:
    """What one pass did for one destination. ``planned`` is filled by a dry run instead of the counts."""

    destination: str
    sent: dict[str, int] = field(default_factory=dict)
    created: int = 0
    updated: int = 0
    retries: int = 0
    dead: int = 0
    invalid: int = 0
    skipped: int = 0
    released: int = 0
    paused: bool = False
    paused_reason: str | None = None
    resumed: bool = False
    requests: int = 0
    elapsed: float = 0.0
    enqueued: dict[str, int] = field(default_factory=dict)
    planned: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0


@dataclass
class DeliverySummary:
    """One pass over the destinations: per destination figures, and what crash recovery handed on."""

    destinations: dict[str, DestinationSummary] = field(default_factory=dict)
    recovered: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    dry_run: bool = False

    def __getitem__(self, destination: str) -> DestinationSummary:
        return self.destinations[destination]

    @property
    def ok(self) -> bool:
        """No destination failed or stayed paused (dead letters are the operator's business, not a failure)."""
        return not any(s.error or s.paused for s in self.destinations.values())


class _Again(Exception):
    """Some rows of a batch got a retryable (or at-least-once unknown) outcome: try them again."""

    def __init__(self, rows: list[Claimed], retry_after: float | None) -> None:
        super().__init__(f"{len(rows)} rows to retry")
        self.rows = rows
        self.retry_after = retry_after


def deliver(
    hub: Hub,
    destinations: list[str] | None = None,
    *,
    progress: Progress | None = None,
    dry_run: bool = False,
    kinds: Sequence[str] | None = None,
) -> DeliverySummary:
    """One delivery pass: recover stale in-flight rows, enqueue changes, dispatch due rows; destinations run
    concurrently. ``dry_run`` sends and writes nothing and fills each summary's ``planned`` counts instead.
    ``kinds`` limits what is sent (not what is enqueued): the daemon's real-time pass sends contacts and
    triggers, and leaves purchase history to the scheduled pass, so the next real-time pass starts sooner."""
    started = time.perf_counter()
    names = _destination_names(hub, destinations)
    summary = DeliverySummary(destinations={n: DestinationSummary(n) for n in names}, dry_run=dry_run)
    if dry_run:
        for name in names:
            summary[name].planned = plan(hub, name)
        summary.elapsed = time.perf_counter() - started
        return summary
    summary.recovered = recover_stale(hub, names)
    for name in names:
        summary[name].enqueued = _enqueue(hub, name)
    runs = [_DestinationRun(hub, name, summary[name], progress, kinds) for name in names]
    threads = [threading.Thread(target=run.run, name=f"deliver:{run.name}", daemon=True) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    summary.elapsed = time.perf_counter() - started
    return summary


def _destination_names(hub: Hub, destinations: Iterable[str] | None) -> list[str]:
    available = hub.destinations()
    if destinations is None:
        return available
    names = list(dict.fromkeys(destinations))
    for name in names:
        if name not in available:
            known = ", ".join(available) or "none"
            if name in hub.config.connectors and hub.config.connectors[name].enabled:
                raise ConfigError(f"connector {name!r} is not a destination (destinations: {known})")
            raise ConfigError(f"no enabled destination named {name!r} (destinations: {known})")
    return names


def guarantee_of(hub: Hub, destination: str, kind: str) -> Guarantee:
    """The kind's guarantee at this destination: configuration first, then the plugin's KindSpec."""
    config = hub.config.connectors[destination].delivery
    if kind in config.guarantee:
        return config.guarantee[kind]  # type: ignore[index]
    connector = hub.connector(destination)
    spec = getattr(connector, "kinds", {}).get(kind)
    return spec.guarantee if spec is not None else "at_least_once"


def batch_size_of(hub: Hub, destination: str, kind: str) -> int:
    """How many messages of ``kind`` one request carries: configuration first, then the plugin's KindSpec."""
    config = hub.config.connectors[destination].delivery
    if kind in config.batch_size:
        return config.batch_size[kind]  # type: ignore[index]
    spec = getattr(hub.connector(destination), "kinds", {}).get(kind)
    return spec.batch_size if spec is not None else 1


def recover_stale(hub: Hub, destinations: list[str] | None = None) -> dict[str, int]:
    """Hand on in-flight rows whose claim is void (lease expired, or their process on this host is gone)."""
    now = _now()
    with hub.engine.connect() as conn:
        stale = outbox.find_stale(conn, now, destinations)
    if not stale:
        return {"pending": 0, "dead": 0}
    return _recover(hub, stale, now)


def _recover(hub: Hub, stale: list[outbox.Stale], now: datetime) -> dict[str, int]:
    known = set(hub.config.connectors)

    def guarantee(destination: str, kind: str) -> Guarantee:
        # A row of a connector no longer configured keeps the safe choice: never send it twice.
        return guarantee_of(hub, destination, kind) if destination in known else "at_most_once"

    with hub.engine.begin() as conn:
        result = outbox.recover(conn, stale, guarantee, now)
    log.warning("recovered stale in-flight messages", pending=result["pending"], parked_dead=result["dead"])
    return result


def _changes() -> Any:
    """``hub.delivery.changes`` (change detection), or None where it is not installed."""
    try:
        from hub.delivery import changes
    except ImportError:
        return None
    return changes


def _enqueue(hub: Hub, name: str) -> dict[str, int]:
    changes = _changes()
    if changes is None:
        return {}
    try:
        return dict(changes.enqueue_changes(hub, name).counts)
    except Exception as exc:
        # Change detection failing must not stop what is already in the outbox from going out.
        log.exception("change detection failed; delivering what is already queued", destination=name, error=str(exc))
        return {}


def plan(hub: Hub, name: str) -> dict[str, int]:
    """What a pass would send to ``name``: pending rows plus what change detection would enqueue now.

    Keys: ``contact_create``, ``contact_update``, ``contact_delete``, ``order``, ``trigger``, ``invalid`` and any
    other kind with pending rows.
    """
    with hub.engine.connect() as conn:
        planned = outbox.pending_plan(conn, name)
    changes = _changes()
    if changes is None:
        return planned
    for key, n in changes.enqueue_changes(hub, name, dry_run=True).counts.items():
        planned[key] = planned.get(key, 0) + int(n)
    return planned


class _DestinationRun:
    """One destination's part of a pass, on its own thread with its own pool of ``concurrency`` senders."""

    def __init__(
        self,
        hub: Hub,
        name: str,
        summary: DestinationSummary,
        progress: Progress | None,
        kinds: Sequence[str] | None = None,
    ) -> None:
        self.hub = hub
        self.kinds = tuple(kind for kind in KIND_ORDER if kinds is None or kind in kinds)
        self.name = name
        self.summary = summary
        self.progress = progress
        self.config: DeliveryConfig = hub.config.connectors[name].delivery
        self.owner = outbox.claimant()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.done = 0
        self.total = 0
        self.destination: Destination | None = None
        # Final outcomes of at-least-once kinds are written in groups: one transaction per message would make
        # SQLite's single writer the bottleneck. A crash loses at most one group's bookkeeping, never a message:
        # those rows are still in flight, and recovery re-sends them as uncertain, which these kinds allow.
        self._buffer: list[tuple[list[RowUpdate], list[tuple[int, str | None]], datetime, str]] = []
        self._buffered = 0
        self._flushed_at = time.monotonic()
        self._flush_lock = threading.Lock()
        # Writes of contact outcomes so far: rows waiting for their contact may be claimable after one.
        self._contacts_recorded = 0

    # ------------------------------------------------------------------------------------------- the loop

    def run(self) -> None:
        started = time.perf_counter()
        try:
            connector = self.hub.connector(self.name)
            assert isinstance(connector, Destination)
            self.destination = connector
            if self._still_paused():
                return
            self._dispatch()
            self._flush()
        except Exception as exc:
            self.summary.error = f"{type(exc).__name__}: {exc}"
            log.exception("delivery failed", destination=self.name, error=self.summary.error)
            with contextlib.suppress(Exception):
                self._flush()  # outcomes already known are kept; the rest is handed back
            self._hand_back_own_claims()
        finally:
            self.summary.elapsed = time.perf_counter() - started

    def _still_paused(self) -> bool:
        """A paused destination is checked first; it resumes when ``check()`` passes, else stays paused."""
        with self.hub.engine.connect() as conn:
            paused = outbox.paused_destinations(conn).get(self.name)
        if paused is None:
            return False
        assert self.destination is not None
        try:
            result = self.destination.check()
            ok, message = result.ok, result.message
        except Exception as exc:
            ok, message = False, f"{type(exc).__name__}: {exc}"
        if not ok:
            self.summary.paused, self.summary.paused_reason = True, paused[0]
            log.error(
                "destination paused: credentials refused; its messages wait",
                destination=self.name,
                reason=paused[0],
                check=message,
                hint=f"fix the credentials, then `hub check {self.name}` and `hub deliver`",
            )
            return True
        with self.hub.engine.begin() as conn:
            outbox.resume(conn, self.name, _now(), actor="hub", detail=f"check passed: {message}")
        self.summary.resumed = True
        log.warning("destination resumed: check passed", destination=self.name, check=message)
        return False

    def _dispatch(self) -> None:
        due = _now()
        with self.hub.engine.connect() as conn:
            self.total = outbox.count_due(conn, self.name, due, self.kinds)
        self._report()
        if not self.total:
            return
        concurrency = self.config.concurrency
        empty: dict[str, int] = {}
        finished: queue.SimpleQueue[Future[None]] = queue.SimpleQueue()  # cheaper than wait() over a set
        outstanding = 0
        # More sender threads than HTTP slots: the transport caps requests in flight at `concurrency`, and a
        # batch sleeping before its in-pass retry must not hold a slot that a healthy batch could use.
        workers = concurrency * _WORKERS_PER_SLOT
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"send:{self.name}") as pool:
            try:
                while not self.stop.is_set():
                    while outstanding < workers * 2 and not self.stop.is_set():
                        rows = self._claim_next(due, empty)
                        if not rows and not outstanding and self._flush():
                            rows = self._claim_next(due, empty)  # rows waiting for a contact just recorded
                        if not rows:
                            break
                        for batch in self._batches(rows):
                            pool.submit(self._process, batch).add_done_callback(finished.put)
                            outstanding += 1
                    if not outstanding:
                        break
                    done = finished.get()
                    outstanding -= 1
                    done.result()
            except BaseException:
                self.stop.set()  # batches not started yet put their rows back untouched
                raise

    def _claim_next(self, due: datetime, empty: dict[str, int]) -> list[Claimed]:
        """The next chunk, of the first kind (in :data:`KIND_ORDER`) with due rows. A kind found empty stays empty
        for the pass (rows rescheduled in it are due later), except those waiting for their contact: they are
        looked for again once this run has recorded contact outcomes, not after every batch, since each look is a
        write transaction that webhooks would queue behind."""
        for kind in self.kinds:
            if kind in empty and (kind not in WAITS_FOR_CONTACT or empty[kind] == self._contacts_recorded):
                continue
            size = self._batch_size(kind)
            limit = max(size, min(self.config.claim_size, size * self.config.concurrency * 16))
            with self.hub.engine.begin() as conn:
                rows = outbox.claim(
                    conn,
                    self.name,
                    kind,
                    limit=limit,
                    owner=self.owner,
                    lease_until=_now() + self.config.lease,
                    due=due,
                )
            if rows:
                return rows
            empty[kind] = self._contacts_recorded
        return []

    def _batches(self, rows: list[Claimed]) -> Iterable[list[Claimed]]:
        size = self._batch_size(rows[0].kind)
        for start in range(0, len(rows), size):
            yield rows[start : start + size]

    def _batch_size(self, kind: str) -> int:
        return batch_size_of(self.hub, self.name, kind)

    # ------------------------------------------------------------------------------------------ one batch

    def _process(self, batch: list[Claimed]) -> None:
        """Send one batch, retrying its retryable rows in-pass; then reschedule or bury what is left."""
        kind = batch[0].kind
        assert self.destination is not None
        if kind not in self.destination.kinds:
            reason = f"{type(self.destination).type} does not handle {kind!r} messages"
            self._finish([(row, Outcome.invalid(reason)) for row in batch], kind)
            return
        retrying = Retrying(
            stop=stop_after_attempt(self.config.attempts_per_pass) | self._stop_for_long_waits,
            wait=self._wait,
            retry=retry_if_exception_type(_Again),
            sleep=self._sleep,
            reraise=True,
        )
        rows = batch
        try:
            for attempt in retrying:
                with attempt:
                    rows = self._round(kind, rows)
        except _Again as again:
            self._reschedule(again.rows, again.retry_after)

    def _round(self, kind: str, rows: list[Claimed]) -> list[Claimed]:
        """Send ``rows`` once (split as the destination asks), record every final outcome; raise :class:`_Again`
        with the rows to retry."""
        if self.stop.is_set():
            self._release(rows)
            return []
        results = self._send(kind, rows)
        retry, retry_after = [], None
        final: list[tuple[Claimed, Outcome]] = []
        exhausted: set[int] = set()
        for row, outcome in results:
            if outcome.status == "retryable" or (
                outcome.status == "unknown" and self._guarantee(kind) == "at_least_once"
            ):
                row.error_class = outcome.status
                row.last_status_code, row.last_error = outcome.code, outcome.body
                if row.attempts >= self._max_attempts(row):
                    final.append((row, outcome))
                    exhausted.add(row.id)
                    continue
                retry.append(row)
                if outcome.retry_after is not None:
                    retry_after = max(retry_after or 0.0, outcome.retry_after)
            else:
                final.append((row, outcome))
        self._finish(final, kind, exhausted)
        if retry:
            with self.lock:
                self.summary.retries += len(retry)
            if self.stop.is_set():
                self._release(retry)
                return []
            raise _Again(retry, retry_after)
        return []

    def _send(self, kind: str, rows: list[Claimed]) -> list[tuple[Claimed, Outcome]]:
        """One request for ``rows``; a batch refused as a whole is split in halves until the bad row is alone."""
        assert self.destination is not None
        if self._guarantee(kind) == "at_most_once" and any(row.dispatched_at is None for row in rows):
            now = _now()
            with self.hub.engine.begin() as conn:
                outbox.mark_dispatched(conn, [row.id for row in rows], now)
            for row in rows:
                row.dispatched_at = now
        for row in rows:
            row.attempts += 1
        try:
            outcomes = self.destination.send(kind, [row.outgoing() for row in rows])
            if len(outcomes) != len(rows):
                reason = f"{self.name}.send returned {len(outcomes)} outcomes for {len(rows)} messages"
                log.error("plugin broke the send contract", destination=self.name, kind=kind, error=reason)
                outcomes = [Outcome.unknown(reason)] * len(rows)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            log.exception("send raised; outcome unknown for the batch", destination=self.name, kind=kind)
            outcomes = [Outcome.unknown(reason)] * len(rows)
        with self.lock:
            self.summary.requests += 1
        results, refused = [], []
        for row, outcome in zip(rows, outcomes, strict=True):
            if outcome.status == "rejected" and outcome.batch and len(rows) > 1:
                row.attempts -= 1  # the row itself was not judged
                refused.append(row)
            else:
                results.append((row, outcome))
        if refused:
            half = len(refused) // 2
            results += self._send(kind, refused[:half]) if half else []
            results += self._send(kind, refused[half:])
        return results

    def _finish(self, results: list[tuple[Claimed, Outcome]], kind: str, exhausted: set[int] | None = None) -> None:
        """Record final outcomes of one round in one transaction, and what they mean for the summary.

        ``exhausted`` names rows whose (retryable) outcome came with their last attempt: they are dead.
        """
        if not results:
            return
        now = _now()
        updates: list[RowUpdate] = []
        refs: list[tuple[int, str | None]] = []
        auth: Outcome | None = None
        counts = {"sent": 0, "created": 0, "updated": 0, "dead": 0, "invalid": 0, "skipped": 0, "released": 0}
        for row, o in results:
            update = RowUpdate(
                id=row.id,
                status="dead",
                attempts=row.attempts,
                next_attempt_at=now,
                last_status_code=o.code,
                last_error=o.body,
                error_class=o.status,
                dispatched_at=row.dispatched_at,
            )
            if exhausted and row.id in exhausted:
                update.error_class = "exhausted"
                update.last_error = f"{row.attempts} attempts spent; last: {o.body}"
                counts["dead"] += 1
            elif o.status == "sent":
                update.status, update.sent_at, update.remote_ref = "sent", now, o.ref
                update.error_class = update.last_error = None
                counts["sent"] += 1
                if kind == "contact_upsert":
                    counts["updated" if row.remote_ref else "created"] += 1
                    if o.ref and row.customer_id is not None:
                        refs.append((row.customer_id, o.ref))
                elif kind == "contact_delete" and row.customer_id is not None:
                    refs.append((row.customer_id, None))
            elif o.status == "skipped":
                update.status = "skipped"
                counts["skipped"] += 1
            elif o.status == "auth":
                row.attempts -= 1  # refused credentials say nothing about the message
                update.status, update.attempts, update.dispatched_at = "pending", row.attempts, None
                counts["released"] += 1
                auth = o
            else:
                # invalid, rejected, unknown at most once: dead, kept with the reason.
                counts["invalid" if o.status == "invalid" else "dead"] += 1
                if o.status == "unknown":
                    update.last_error = f"outcome unknown ({o.body}); at-most-once: parked for review, not re-sent"
            updates.append(update)
        self._record(updates, refs, now, kind, group=auth is None and self._guarantee(kind) == "at_least_once")
        with self.lock:
            s = self.summary
            if counts["sent"]:
                s.sent[kind] = s.sent.get(kind, 0) + counts["sent"]
            s.created += counts["created"]
            s.updated += counts["updated"]
            s.dead += counts["dead"]
            s.invalid += counts["invalid"]
            s.skipped += counts["skipped"]
            s.released += counts["released"]
            self.done += len(results) - counts["released"]
        if auth is not None:
            self._pause(auth)
        self._report()

    def _record(
        self, updates: list[RowUpdate], refs: list[tuple[int, str | None]], now: datetime, kind: str, *, group: bool
    ) -> None:
        with self.lock:
            self._buffer.append((updates, refs, now, kind))
            self._buffered += len(updates)
            due = not group or self._buffered >= _GROUP_ROWS or time.monotonic() - self._flushed_at >= _GROUP_SECONDS
        if due:
            self._flush()

    def _flush(self) -> bool:
        """Write the grouped outcomes in one transaction; True if there were any."""
        with self._flush_lock:
            with self.lock:
                buffer, self._buffer, self._buffered = self._buffer, [], 0
                self._flushed_at = time.monotonic()
            if not buffer:
                return False
            updates = [u for group, _, _, _ in buffer for u in group]
            refs = [r for _, group, _, _ in buffer for r in group]
            with self.hub.engine.begin() as conn:
                outbox.record(conn, self.name, updates, remote_ids=refs, now=buffer[-1][2])
            if any(kind == "contact_upsert" for _, _, _, kind in buffer):
                with self.lock:
                    self._contacts_recorded += 1
            return True

    def _release(self, rows: list[Claimed]) -> None:
        """Put rows back to pending untouched (the destination stopped before sending them)."""
        if not rows:
            return
        now = _now()
        updates = [
            RowUpdate(
                id=row.id,
                status="pending",
                attempts=row.attempts,
                next_attempt_at=now,
                last_status_code=row.last_status_code,
                last_error=row.last_error,
                error_class=row.error_class,
                dispatched_at=None,
            )
            for row in rows
        ]
        with self.hub.engine.begin() as conn:
            outbox.record(conn, self.name, updates, now=now)
        with self.lock:
            self.summary.released += len(rows)

    def _reschedule(self, rows: list[Claimed], retry_after: float | None) -> None:
        """Rows still failing after this pass's attempts: pending again after a backoff (never sooner than
        Retry-After), or dead once their attempts are spent."""
        now = _now()
        updates = []
        dead = 0
        for row in rows:
            update = RowUpdate(
                id=row.id,
                status="pending",
                attempts=row.attempts,
                next_attempt_at=now + self._backoff(row.attempts, retry_after),
                last_status_code=row.last_status_code,
                last_error=row.last_error,
                error_class=row.error_class,
                dispatched_at=None,
            )
            if row.attempts >= self._max_attempts(row):
                update.status, update.error_class, dead = "dead", "exhausted", dead + 1
                update.last_error = f"{row.attempts} attempts spent; last: {row.last_error}"
                update.dispatched_at = row.dispatched_at
            updates.append(update)
        with self.hub.engine.begin() as conn:
            outbox.record(conn, self.name, updates, now=now)
        with self.lock:
            if rows and rows[0].kind == "contact_upsert":
                self._contacts_recorded += 1  # those now dead no longer hold back their customer's rows
            self.summary.dead += dead
            self.done += dead
        self._report()

    def _pause(self, outcome: Outcome) -> None:
        with self.lock:
            if self.stop.is_set():
                return
            self.stop.set()
        reason = f"credentials refused ({outcome.code}): {outcome.body or ''}".strip()
        with self.hub.engine.begin() as conn:
            outbox.pause(conn, self.name, reason, _now())
        self.summary.paused, self.summary.paused_reason = True, reason
        log.error(
            "DESTINATION PAUSED: credentials refused; its messages stay pending",
            destination=self.name,
            status_code=outcome.code,
            body=outcome.body,
            hint=f"fix the credentials, then `hub check {self.name}`; the next `hub deliver` resumes it",
        )

    def _hand_back_own_claims(self) -> None:
        """After an unexpected error, this run's in-flight rows are handed on as after a crash."""
        try:
            now = _now()
            with self.hub.engine.connect() as conn:
                own = outbox.find_stale(conn, now, [self.name], owner=self.owner)
            if own:
                _recover(self.hub, own, now)
        except Exception:
            log.exception("could not hand back claimed messages; they recover when their lease ends")

    # ------------------------------------------------------------------------------------------- policies

    def _guarantee(self, kind: str) -> Guarantee:
        return guarantee_of(self.hub, self.name, kind)

    def _max_attempts(self, row: Claimed) -> int:
        return row.max_attempts or self.config.max_attempts

    def _wait(self, state: RetryCallState) -> float:
        """Full jitter exponential backoff, never sooner than the destination's Retry-After."""
        base = wait_random_exponential(
            multiplier=self.config.backoff_initial.total_seconds(), max=self.config.backoff_max.total_seconds()
        )(state)
        return max(base, _retry_after(state) or 0.0)

    def _stop_for_long_waits(self, state: RetryCallState) -> bool:
        """A Retry-After longer than the longest backoff is not waited for in-pass: the rows are rescheduled."""
        retry_after = _retry_after(state)
        return retry_after is not None and retry_after > self.config.backoff_max.total_seconds()

    def _sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)  # a pause ends the wait at once

    def _backoff(self, attempts: int, retry_after: float | None) -> timedelta:
        initial = self.config.backoff_initial.total_seconds()
        cap = min(self.config.backoff_max.total_seconds(), initial * 2 ** max(attempts - 1, 0))
        return max(timedelta(seconds=max(random.uniform(0, cap), retry_after or 0.0)), _MIN_DELAY)

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.name, self.done, self.total)


#: Sender threads per HTTP slot (see ``_dispatch``).
_WORKERS_PER_SLOT = 4
#: Grouped outcome writes: at most this many rows, or this many seconds, per transaction.
_GROUP_ROWS = 200
_GROUP_SECONDS = 0.25


def _retry_after(state: RetryCallState) -> float | None:
    error: Any = state.outcome.exception() if state.outcome is not None else None
    return error.retry_after if isinstance(error, _Again) else None


# ----------------------------------------------------------------------------------------------- replay


@dataclass
class ReplayResult:
    """What ``replay_dead_letters`` did: ids re-queued, ids refused with why, and who asked."""

    actor: str
    replayed: list[int] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)


def replay_dead_letters(
    hub: Hub,
    message_ids: list[int] | None = None,
    *,
    destination: str | None = None,
    actor: str | None = None,
) -> ReplayResult:
    """Re-queue dead letters (``message_ids``, or all of them, of ``destination`` if given).

    Each payload is rebuilt from today's data with ``rebuild_payload`` where it can be (the data may have been
    fixed since); a row still invalid is refused with the reason. Re-queued rows get a fresh budget of their
    destination's ``max_attempts``, are due now, and get an ``outbox_audit`` row naming ``actor`` (default: the
    OS user).
    """
    import getpass

    from hub.delivery.outcomes import InvalidMessage

    result = ReplayResult(actor=actor or getpass.getuser())
    with hub.engine.connect() as conn:
        if message_ids is None:
            message_ids = [r["id"] for r in outbox.dead_letters(conn, destination=destination)]
        messages = {i: outbox.get_message(conn, i) for i in message_ids}
    changes = _changes()
    rebuild_payload = changes.rebuild_payload if changes is not None else None
    by_destination: dict[str, list[outbox.Replay]] = {}
    rebuilt: dict[int, tuple[int, dict[str, Any]]] = {}
    for message_id, message in messages.items():
        if message is None:
            result.refused.append((message_id, "no such message"))
            continue
        if message.status != "dead":
            result.refused.append((message_id, f"it is {message.status}, not dead"))
            continue
        payload, detail = None, f"was {message.error_class or 'dead'}: {(message.last_error or '')[:200]}"
        if rebuild_payload is not None and message.destination in hub.config.connectors:
            try:
                payload = rebuild_payload(hub, message.destination, message)
            except InvalidMessage as exc:
                result.refused.append((message_id, f"still invalid: {exc}"))
                continue
        detail += "; payload rebuilt" if payload is not None else "; payload kept"
        if payload is not None and message.kind == "contact_upsert" and message.customer_id is not None:
            rebuilt[message_id] = (message.customer_id, payload)
        by_destination.setdefault(message.destination, []).append(outbox.Replay(message_id, payload, detail))
    now = _now()
    with hub.engine.begin() as conn:
        for name, replays in by_destination.items():
            connector = hub.config.connectors.get(name)
            budget = connector.delivery.max_attempts if connector is not None else 10
            replayed = outbox.replay(conn, replays, budget=budget, actor=result.actor, now=now)
            result.replayed += replayed
            if changes is not None:  # the replayed contact is today's data: change detection must not re-send it
                changes.remember_replayed(conn, name, [rebuilt[i] for i in replayed if i in rebuilt])
    if result.replayed:
        log.info("dead letters replayed", ids=result.replayed, actor=result.actor, count=len(result.replayed))
    return result
