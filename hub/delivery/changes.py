"""Change detection: deciding what goes into the outbox for a destination, and the one way to write an outbox row.

For a destination, :func:`enqueue_changes` makes one pass in three parts, each streamed in batches of
``batch_size`` (one transaction per batch: the messages, their ``outbound_state`` rows and the watermarks commit
together, so a crash re-decides at most one batch and never loses or doubles a message):

1. **Merged away**: a customer folded into another that the destination had (an ``outbound_state`` row with a
   remote id or a hash) gets a ``contact_delete`` (if the destination takes that kind); its pending upserts are
   skipped and its ``outbound_state`` row goes.
2. **Contacts**: the live customers touched since the destination's watermark (``customers_scanned_at``, taken at
   scan start), or every live customer on the first run, looking back as :mod:`hub.watermarks` says: a few
   seconds on every scan, and :data:`SCAN_OVERLAP` before the last sweep (``customers_swept_at``) at most once a
   minute, for long sync transactions still open at a scan's start (their times are older than its watermark).
   Each one's payload is built (outbound mapping -> ``Destination.prepare``) and hashed; only a hash that differs
   from ``outbound_state.payload_hash`` enqueues a ``contact_upsert``, keyed
   ``<destination>:contact_upsert:<customer>:v<version>``, and older pending upserts of that customer are skipped
   as superseded. A payload the mapping or the plugin refuses (:class:`InvalidMessage`) is stored ``dead`` with
   ``error_class = invalid`` and the reason, never sent; its hash is remembered (marked) so an unchanged invalid
   customer is not stored again on every pass.
3. **Orders** with an id above ``last_order_id`` that have a customer become ``order`` messages keyed
   ``<destination>:order:<source>:<external_id>``; anonymous orders are counted, not enqueued.

A re-sync of unchanged data builds the same payloads, so it enqueues nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.connectors import Destination
from hub.db import bulk_upsert, is_postgres, one_of
from hub.delivery.outbound import OutboundMapping, outbound_mapping
from hub.delivery.outcomes import InvalidMessage
from hub.delivery.views import (
    contact_delete_view,
    customer_views,
    hub_keys,
    order_views,
    survivors,
)
from hub.errors import ConfigError
from hub.models import Consent, Customer, CustomerMerge, DestinationState, Identity, Message, Order, OutboundState
from hub.watermarks import look_back

if TYPE_CHECKING:
    from hub.app import Hub

__all__ = [
    "COUNT_KEYS",
    "SCAN_OVERLAP",
    "EnqueueSummary",
    "build_contact_payload",
    "enqueue",
    "enqueue_changes",
    "enqueue_many",
    "payload_hash",
    "rebuild_payload",
    "remember_replayed",
]

#: How far before the last sweep's start a sweep looks again: a load transaction that was open when the scan
#: started wrote ``updated_at`` values older than the watermark, and becomes visible only after it.
SCAN_OVERLAP = timedelta(minutes=5)
#: The keys of :attr:`EnqueueSummary.counts`.
COUNT_KEYS: tuple[str, ...] = ("contact_create", "contact_update", "contact_delete", "order", "invalid")
#: Marks the hash of a payload that was invalid: the destination never had it.
INVALID_MARK = "!"

_customer: sa.Table = Customer.__table__  # type: ignore[attr-defined]
_identity: sa.Table = Identity.__table__  # type: ignore[attr-defined]
_consent: sa.Table = Consent.__table__  # type: ignore[attr-defined]
_merge: sa.Table = CustomerMerge.__table__  # type: ignore[attr-defined]
_order: sa.Table = Order.__table__  # type: ignore[attr-defined]
_message: sa.Table = Message.__table__  # type: ignore[attr-defined]
_state: sa.Table = OutboundState.__table__  # type: ignore[attr-defined]
_dest_state: sa.Table = DestinationState.__table__  # type: ignore[attr-defined]

_MESSAGE_COLUMNS = (
    "destination",
    "kind",
    "customer_id",
    "payload",
    "idempotency_key",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
    "error_class",
    "remote_ref",
    "created_at",
)
_SUPERSEDED = "superseded by a newer contact_upsert"


@dataclass(slots=True)
class EnqueueSummary:
    """What one :func:`enqueue_changes` pass decided (or, with ``dry_run``, would decide) for a destination.

    ``counts`` has the keys in :data:`COUNT_KEYS`: upserts of contacts the destination never had
    (``contact_create``) or had (``contact_update``), deletes, orders, and ``invalid`` payloads stored as dead
    letters. ``scanned`` customers had their payload built; ``unchanged`` of them matched the last hash.
    ``swept``: the contact scan looked back :data:`SCAN_OVERLAP` (a first scan or a sweep), not just
    :data:`~hub.watermarks.QUICK_OVERLAP`.
    """

    destination: str
    dry_run: bool = False
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    scanned: int = 0
    unchanged: int = 0
    superseded: int = 0
    anonymous_orders: int = 0
    batches: int = 0
    swept: bool = False
    seconds: float = 0.0

    @property
    def enqueued(self) -> int:
        """Messages that will be sent (invalid ones are dead letters, not counted here)."""
        return sum(n for kind, n in self.counts.items() if kind != "invalid")


@dataclass(slots=True)
class _Out:
    """One decided outbox row, before it is written."""

    kind: str
    customer_id: int | None
    payload: dict[str, Any]
    key: str
    error: str | None = None  # an invalid payload: stored dead with this reason
    remote_ref: str | None = None

    def row(self, destination: str, now: datetime) -> tuple[Any, ...]:
        status, error_class = ("dead", "invalid") if self.error is not None else ("pending", None)
        return (
            destination,
            self.kind,
            self.customer_id,
            self.payload,
            self.key,
            status,
            0,
            now,
            self.error,
            error_class,
            self.remote_ref,
            now,
        )


def payload_hash(payload: Any) -> str:
    """SHA-256 of the payload as JSON with sorted keys: equal payloads hash equal whatever their key order."""
    try:
        text = orjson.dumps(payload, default=_json_default, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:  # what orjson refuses (an integer beyond 64 bits): the standard library's canonical form
        text = json.dumps(payload, sort_keys=True, default=_json_default, separators=(",", ":")).encode()
    return hashlib.sha256(text).hexdigest()


def _json_default(value: Any) -> Any:
    return str(value)  # Decimal, date and other scalars a plugin may leave in a payload


def enqueue(
    conn: sa.Connection,
    destination: str,
    kind: str,
    customer_id: int | None,
    payload: dict[str, Any],
    idempotency_key: str,
    now: datetime,
    *,
    remote_ref: str | None = None,
    error: str | None = None,
) -> bool:
    """Write one pending outbox row in the caller's transaction; False when its idempotency key already exists.

    The one way any part of hub adds to the outbox: the row commits (or not) with whatever decided it. With
    ``error`` (the destination's ``prepare`` refused the payload) the row is stored ``dead`` with ``error_class
    = invalid`` and that reason, never sent, and shows up in ``hub deadletters``.
    """
    row = _Out(kind, customer_id, payload, idempotency_key, error, remote_ref).row(destination, now)
    values = dict(zip(_MESSAGE_COLUMNS, row, strict=True))
    insert = postgresql.insert(_message) if is_postgres(conn) else sqlite.insert(_message)
    result = conn.execute(insert.values(**values).on_conflict_do_nothing(index_elements=["idempotency_key"]))
    return bool(result.rowcount == 1)


def enqueue_many(
    conn: sa.Connection,
    destination: str,
    messages: Sequence[tuple[str, int | None, dict[str, Any], str, str | None]],
    now: datetime,
) -> int:
    """:func:`enqueue` for a batch in one statement: ``(kind, customer_id, payload, idempotency_key, error)`` each.

    Keys that already exist are left alone. Returns the rows written as the database reports them.
    """
    out = [_Out(kind, customer_id, payload, key, error) for kind, customer_id, payload, key, error in messages]
    return _write_messages(conn, destination, out, now)


def remember_replayed(conn: sa.Connection, destination: str, payloads: Sequence[tuple[int, dict[str, Any]]]) -> None:
    """Record replayed ``contact_upsert`` payloads (rebuilt from today's data) as the ones last enqueued.

    Else the next pass would see today's data differ from the refused payload's hash, enqueue the same contact
    again and skip the replayed row as superseded: the operator's replay would never be the one that is sent.
    """
    if not payloads:
        return
    conn.execute(
        _state.update()
        .where(_state.c.destination == destination, _state.c.customer_id == sa.bindparam("_customer"))
        .values(payload_hash=sa.bindparam("_hash")),
        [{"_customer": customer_id, "_hash": payload_hash(payload)} for customer_id, payload in payloads],
    )


def _write_messages(conn: sa.Connection, destination: str, out: Sequence[_Out], now: datetime) -> int:
    if not out:
        return 0
    rows = [o.row(destination, now) for o in out]
    return bulk_upsert(conn, _message, rows, _MESSAGE_COLUMNS, conflict=("idempotency_key",), update=())


def build_contact_payload(destination: Destination, mapping: OutboundMapping, view: dict[str, Any]) -> dict[str, Any]:
    """The ``contact_upsert`` payload of a customer view: mapping output plus ``_hub``, through ``prepare``.

    Raises InvalidMessage (the mapping's OutboundError included) when it cannot be sent.
    """
    return destination.prepare("contact_upsert", {**mapping(view), "_hub": hub_keys(view)})


def _destination(hub: Hub, name: str) -> Destination:
    connector = hub.connector(name)
    if not isinstance(connector, Destination):
        raise ConfigError(f"connector {name!r} ({type(connector).type}) is not a destination: it receives nothing")
    return connector


class _Pass:
    """One enqueue pass over a destination: the three parts share the destination, the clock and the summary."""

    def __init__(self, hub: Hub, name: str, *, dry_run: bool, now: datetime) -> None:
        self.hub = hub
        self.name = name
        self.destination = _destination(hub, name)
        self.kinds = self.destination.kinds
        self.mapping = outbound_mapping(hub, name) if "contact_upsert" in self.kinds else None
        self.dry_run = dry_run
        self.now = now
        self.batch_size = hub.config.batch_size
        self.summary = EnqueueSummary(destination=name, dry_run=dry_run)

    def transaction(self) -> Any:
        engine = self.hub.engine
        return engine.connect() if self.dry_run else engine.begin()

    # -------------------------------------------------------------------------------------- merged away

    def merged_away(self) -> None:
        after = 0
        while True:
            with self.transaction() as conn:
                rows = conn.execute(
                    sa.select(_state.c.customer_id, _state.c.remote_id, _state.c.payload_hash, _customer.c.merged_into)
                    .join(_customer, _customer.c.id == _state.c.customer_id)
                    .where(
                        _state.c.destination == self.name,
                        sa.or_(_customer.c.merged_into.is_not(None), _customer.c.erased_at.is_not(None)),
                        _state.c.customer_id > after,
                    )
                    .order_by(_state.c.customer_id)
                    .limit(self.batch_size)
                ).all()
                if not rows:
                    return
                after = rows[-1][0]
                self.summary.batches += 1
                to_delete, adopted = self._adoptions(conn, rows)
                out = self._deletes(conn, to_delete) if "contact_delete" in self.kinds else []
                if self.dry_run:
                    continue
                if adopted:
                    bulk_upsert(
                        conn,
                        _state,
                        [(self.name, survivor, remote_id, 0, self.now) for survivor, remote_id in adopted.items()],
                        ("destination", "customer_id", "remote_id", "version", "updated_at"),
                        conflict=("destination", "customer_id"),
                        update=("remote_id", "updated_at"),
                    )
                ids = [row[0] for row in rows]
                self.summary.superseded += self._supersede(conn, ids, f"customer merged into another: {_SUPERSEDED}")
                _write_messages(conn, self.name, out, self.now)
                conn.execute(
                    _state.delete().where(_state.c.destination == self.name, one_of(conn, _state.c.customer_id, ids))
                )

    def _adoptions(self, conn: sa.Connection, rows: Sequence[Any]) -> tuple[list[Any], dict[int, str]]:
        """Keep the destination's contact of a merged-away customer when it can be the survivor's.

        A survivor the destination has no contact for adopts the merged customer's (its next upsert updates that
        contact, which keeps its history at the destination: purchases, messages); a merged customer whose contact
        is already the survivor's needs no delete. Only a second, different contact is deleted. Returns the rows
        still to delete and ``{survivor: remote id}`` to record.
        """
        with_remote = [row for row in rows if row[1] and row[3] is not None]  # an erased customer has no survivor
        if not with_remote:
            return list(rows), {}
        survivor_of = survivors(conn, [row[3] for row in with_remote])
        known = dict(
            conn.execute(
                sa.select(_state.c.customer_id, _state.c.remote_id).where(
                    _state.c.destination == self.name,
                    one_of(conn, _state.c.customer_id, sorted(set(survivor_of.values()))),
                )
            ).all()
        )
        adopted: dict[int, str] = {}
        keep: list[Any] = []
        for row in rows:
            _, remote_id, _, merged_into = row
            survivor = survivor_of.get(merged_into, merged_into) if remote_id and merged_into is not None else None
            current = adopted.get(survivor) or known.get(survivor) if survivor is not None else None
            if survivor is not None and current is None:
                adopted[survivor] = remote_id
            elif survivor is not None and current == remote_id:
                continue
            else:
                keep.append(row)
        return keep, adopted

    def _deletes(self, conn: sa.Connection, rows: Sequence[Any]) -> list[_Out]:
        had = [row for row in rows if row[1] or (row[2] and not row[2].startswith(INVALID_MARK))]
        views = customer_views(conn, [row[0] for row in had])
        out: list[_Out] = []
        for customer_id, remote_id, _, merged_into in had:
            view = contact_delete_view(views[customer_id], merged_into=merged_into, remote_id=remote_id)
            key = f"{self.name}:contact_delete:{customer_id}"
            out.append(self._prepared("contact_delete", customer_id, view, key, remote_id))
        return out

    # -------------------------------------------------------------------------------------------- contacts

    def contacts(self, scanned_at: datetime | None, swept_at: datetime | None) -> None:
        since, sweep = look_back(self.now, scanned_at, swept_at, SCAN_OVERLAP)
        self.summary.swept = sweep
        after = 0
        while True:
            with self.transaction() as conn:
                ids = self._candidates(conn, since, after)
                if ids:
                    after = ids[-1]
                    self.summary.batches += 1
                    self._contact_batch(conn, ids)
                if len(ids) < self.batch_size:
                    if not self.dry_run:  # the whole scan is done: only now may the watermarks move
                        moved = {"customers_swept_at": self.now} if sweep else {}
                        self._save_state(conn, customers_scanned_at=self.now, **moved)
                    return

    def _candidates(self, conn: sa.Connection, since: datetime | None, after: int) -> list[int]:
        """The next batch of live customers (by id) touched since ``since``, or of all of them."""
        c = _customer.c
        query = sa.select(c.id).where(c.merged_into.is_(None), c.erased_at.is_(None), c.id > after)
        if since is not None:
            query = query.where(
                sa.or_(
                    c.updated_at >= since,
                    c.id.in_(sa.select(_consent.c.customer_id).where(_consent.c.updated_at >= since)),
                    c.id.in_(sa.select(_identity.c.customer_id).where(_identity.c.first_seen_at >= since)),
                    c.id.in_(sa.select(_merge.c.survivor_id).where(_merge.c.at >= since)),
                )
            )
        return list(conn.execute(query.order_by(c.id).limit(self.batch_size)).scalars())

    def _contact_batch(self, conn: sa.Connection, ids: list[int]) -> None:
        assert self.mapping is not None
        views = customer_views(conn, ids)
        known = {
            row[0]: row[1:]
            for row in conn.execute(
                sa.select(_state.c.customer_id, _state.c.payload_hash, _state.c.version, _state.c.remote_id).where(
                    _state.c.destination == self.name, one_of(conn, _state.c.customer_id, ids)
                )
            )
        }
        out: list[_Out] = []
        states: list[tuple[Any, ...]] = []
        counts = self.summary.counts
        for customer_id in ids:
            view = views.get(customer_id)
            if view is None:
                continue
            self.summary.scanned += 1
            old_hash, version, remote_id = known.get(customer_id, (None, 0, None))
            error: str | None = None
            mapped: dict[str, Any] = {"_hub": hub_keys(view)}
            try:
                mapped = {**self.mapping(view), **mapped}
                payload = self.destination.prepare("contact_upsert", mapped)
                digest = payload_hash(payload)
            except InvalidMessage as exc:
                # Kept with what could be mapped; hashed with the reason (not the whole view, whose timestamps
                # move), so an unchanged invalid customer is not stored again.
                error = str(exc) or type(exc).__name__
                payload = mapped
                digest = INVALID_MARK + payload_hash({"payload": mapped, "error": error})
            if digest == old_hash:
                self.summary.unchanged += 1
                continue
            version += 1
            key = f"{self.name}:contact_upsert:{customer_id}:v{version}"
            out.append(_Out("contact_upsert", customer_id, payload, key, error, remote_id))
            states.append((self.name, customer_id, digest, version, self.now))
            had = remote_id is not None or (old_hash is not None and not old_hash.startswith(INVALID_MARK))
            counts["invalid" if error is not None else "contact_update" if had else "contact_create"] += 1
        if self.dry_run or not out:
            return
        self.summary.superseded += self._supersede(conn, [o.customer_id for o in out], _SUPERSEDED)  # type: ignore[misc]
        _write_messages(conn, self.name, out, self.now)
        bulk_upsert(
            conn,
            _state,
            states,
            ("destination", "customer_id", "payload_hash", "version", "updated_at"),
            conflict=("destination", "customer_id"),
            update=("payload_hash", "version", "updated_at"),
        )

    def _supersede(self, conn: sa.Connection, customer_ids: Sequence[int], reason: str) -> int:
        """Skip the still-pending upserts of these customers (in flight ones belong to a dispatcher)."""
        result = conn.execute(
            _message.update()
            .where(
                _message.c.destination == self.name,
                _message.c.kind == "contact_upsert",
                _message.c.status == "pending",
                one_of(conn, _message.c.customer_id, customer_ids),
            )
            .values(status="skipped", error_class="skipped", last_error=reason)
        )
        return int(result.rowcount or 0)

    # ---------------------------------------------------------------------------------------------- orders

    def orders(self, last_order_id: int) -> None:
        after = last_order_id
        while True:
            with self.transaction() as conn:
                ids = list(
                    conn.execute(
                        sa.select(_order.c.id).where(_order.c.id > after).order_by(_order.c.id).limit(self.batch_size)
                    ).scalars()
                )
                if not ids:
                    return
                after = ids[-1]
                self.summary.batches += 1
                views = order_views(conn, ids)
                out: list[_Out] = []
                for order_id in ids:
                    view = views[order_id]
                    keys = view["_hub"]
                    if keys is None:
                        self.summary.anonymous_orders += 1
                        continue
                    order = view["order"]
                    key = f"{self.name}:order:{order['source']}:{order['external_id']}"
                    out.append(self._prepared("order", keys["customer_id"], view, key))
                if not self.dry_run:
                    _write_messages(conn, self.name, out, self.now)
                    self._save_state(conn, last_order_id=after)

    # -------------------------------------------------------------------------------------------- helpers

    def _prepared(
        self, kind: str, customer_id: int | None, view: dict[str, Any], key: str, remote_ref: str | None = None
    ) -> _Out:
        """The message for a view through ``prepare``; an invalid one keeps the view and the reason, counted."""
        try:
            payload = self.destination.prepare(kind, view)
        except InvalidMessage as exc:
            self.summary.counts["invalid"] += 1
            return _Out(kind, customer_id, view, key, str(exc) or type(exc).__name__, remote_ref)
        self.summary.counts[kind] += 1
        return _Out(kind, customer_id, payload, key, None, remote_ref)

    def load_state(self) -> tuple[datetime | None, datetime | None, int]:
        """``customers_scanned_at``, ``customers_swept_at`` and ``last_order_id``."""
        c = _dest_state.c
        with self.hub.engine.connect() as conn:
            row = conn.execute(
                sa.select(c.customers_scanned_at, c.customers_swept_at, c.last_order_id).where(
                    c.destination == self.name
                )
            ).first()
        return (row[0], row[1], row[2]) if row is not None else (None, None, 0)

    def _save_state(self, conn: sa.Connection, **values: Any) -> None:
        row = {"destination": self.name, "paused": False, "last_order_id": 0, "updated_at": self.now, **values}
        bulk_upsert(
            conn,
            _dest_state,
            [tuple(row.values())],
            tuple(row),
            conflict=("destination",),
            update=(*values, "updated_at"),
        )


def enqueue_changes(
    hub: Hub, destination: str, *, dry_run: bool = False, now: datetime | None = None
) -> EnqueueSummary:
    """Decide what ``destination`` must receive since its last pass, and write it to the outbox.

    ``dry_run`` computes the same counts and writes nothing. ``now`` (default: the clock) is the scan's start,
    the next watermark, and the messages' creation time. Streams in batches of ``hub.config.batch_size``.
    """
    started = time.perf_counter()
    run = _Pass(hub, destination, dry_run=dry_run, now=now or datetime.now(UTC))
    scanned_at, swept_at, last_order_id = run.load_state()
    # Deletes first: a merged-away contact should be gone before its survivor's upsert claims the shared keys.
    run.merged_away()
    if run.mapping is not None:
        run.contacts(scanned_at, swept_at)
    if "order" in run.kinds:
        run.orders(last_order_id)
    run.summary.seconds = time.perf_counter() - started
    return run.summary


def rebuild_payload(hub: Hub, destination: str, message: Message) -> dict[str, Any] | None:
    """The payload of ``message`` rebuilt from today's data (to replay a dead letter after the data was fixed).

    None for kinds that cannot be rebuilt (``trigger`` and the kinds change detection does not enqueue); raises
    InvalidMessage when it is still invalid, or when its customer or order no longer exists as it did.
    """
    dest = _destination(hub, destination)
    if message.kind == "contact_upsert":
        customer_id = _customer_of(message)
        mapping = outbound_mapping(hub, destination)
        with hub.engine.connect() as conn:
            live = survivors(conn, [customer_id]).get(customer_id)
            if live is None:
                raise InvalidMessage(f"customer {customer_id} no longer exists")
            if live != customer_id:
                raise InvalidMessage(
                    f"customer {customer_id} was merged into {live}: its data goes out with that customer's upsert"
                )
            view = customer_views(conn, [customer_id])[customer_id]
        return build_contact_payload(dest, mapping, view)
    if message.kind == "contact_delete":
        customer_id = _customer_of(message)
        with hub.engine.connect() as conn:
            into = survivors(conn, [customer_id]).get(customer_id)
            views = customer_views(conn, [customer_id])
        if into is None or customer_id not in views:
            raise InvalidMessage(f"customer {customer_id} no longer exists")
        remote_id = message.remote_ref or ((message.payload or {}).get("_hub") or {}).get("remote_id")
        view = contact_delete_view(
            views[customer_id], merged_into=into if into != customer_id else None, remote_id=remote_id
        )
        return dest.prepare("contact_delete", view)
    if message.kind == "order":
        source, external_id = _order_key(message.idempotency_key)
        with hub.engine.connect() as conn:
            order_id = conn.execute(
                sa.select(_order.c.id).where(_order.c.source == source, _order.c.external_id == external_id)
            ).scalar_one_or_none()
            if order_id is None:
                raise InvalidMessage(f"order {external_id!r} of {source!r} no longer exists")
            view = order_views(conn, [order_id])[order_id]
        if view["_hub"] is None:
            raise InvalidMessage(f"order {external_id!r} of {source!r} has no customer")
        return dest.prepare("order", view)
    return None


def _customer_of(message: Message) -> int:
    if message.customer_id is None:
        raise InvalidMessage(f"message {message.idempotency_key} has no customer")
    return message.customer_id


def _order_key(idempotency_key: str) -> tuple[str, str]:
    """``<destination>:order:<source>:<external_id>`` -> (source, external_id); connector names hold no colon."""
    parts = idempotency_key.split(":", 3)
    if len(parts) != 4 or parts[1] != "order":
        raise InvalidMessage(f"{idempotency_key!r} is not an order message's key")
    return parts[2], parts[3]
