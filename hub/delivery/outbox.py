"""The outbox's SQL: claim due rows, record outcomes, recover stale claims, count, list and replay dead letters.

Every write here is set-based (one ``UPDATE ... RETURNING`` per claimed chunk, one ``executemany`` per batch of
outcomes) and starts with a write, so on SQLite a transaction never has to upgrade a read lock (which fails at
once instead of waiting). The caller owns the transaction: each function takes a ``Connection``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from hub.connectors import Outgoing
from hub.db import is_postgres, one_of
from hub.delivery.outcomes import Guarantee
from hub.models.delivery import DestinationState, Message, OutboundState, OutboxAudit

MESSAGE = Message.__table__
OUTBOUND = OutboundState.__table__
DEST_STATE = DestinationState.__table__
AUDIT = OutboxAudit.__table__

#: The order kinds are claimed in: a merged-away contact goes before its survivor's upsert (they may share an
#: e-mail, and the survivor must not be matched to the contact about to be deleted); contacts exist before
#: anything refers to them; a trigger (a mail someone is waiting for) goes before the purchase history, which no
#: one reads within the minute.
KIND_ORDER = ("contact_delete", "contact_upsert", "product", "segment_membership", "trigger", "order")
#: Kinds that wait while their customer still has a contact_upsert pending or in flight at the destination.
WAITS_FOR_CONTACT = ("order", "segment_membership", "trigger")
CRASH_PARKED = "outcome unknown after a crash; parked for review"


def claimant() -> str:
    """``host:pid`` of this process, stored in ``claimed_by`` so a restart on the same host can tell that the
    holder of an in-flight row is gone."""
    return f"{socket.gethostname()}:{os.getpid()}"


def holder_is_dead(claimed_by: str | None, *, host: str | None = None) -> bool:
    """True when ``claimed_by`` names a process on this host that no longer runs (other hosts: unknown, False)."""
    if not claimed_by or ":" not in claimed_by:
        return False
    holder_host, _, pid_text = claimed_by.rpartition(":")
    if holder_host != (host or socket.gethostname()) or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(slots=True)
class Claimed:
    """A claimed row, with what the dispatcher tracks while it is in flight."""

    id: int
    destination: str
    kind: str
    customer_id: int | None
    payload: dict[str, Any]
    idempotency_key: str
    attempts: int
    max_attempts: int | None
    error_class: str | None
    remote_ref: str | None = None
    dispatched_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None

    def outgoing(self) -> Outgoing:
        return Outgoing(
            id=self.id,
            kind=self.kind,
            customer_id=self.customer_id,
            payload=self.payload,
            idempotency_key=self.idempotency_key,
            attempts=self.attempts,
            remote_ref=self.remote_ref,
            uncertain=self.error_class == "unknown",
        )


@dataclass(slots=True)
class RowUpdate:
    """The new state of one row after its outcome (every column the dispatcher may change)."""

    id: int
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None = None
    last_error: str | None = None
    error_class: str | None = None
    remote_ref: str | None = None
    sent_at: datetime | None = None
    dispatched_at: datetime | None = None


# ------------------------------------------------------------------------------------------------- claim


def claim(
    conn: sa.Connection,
    destination: str,
    kind: str,
    *,
    limit: int,
    owner: str,
    lease_until: datetime,
    due: datetime,
) -> list[Claimed]:
    """Claim up to ``limit`` due rows of one kind, oldest due first, with one ``UPDATE ... RETURNING``.

    PostgreSQL locks the chosen rows with ``FOR UPDATE SKIP LOCKED``, so concurrent dispatchers take disjoint
    rows; SQLite has one writer at a time. Rows of the kinds in :data:`WAITS_FOR_CONTACT` are left while their
    customer's ``contact_upsert`` is still pending or in flight. ``remote_ref`` comes from ``outbound_state``.
    """
    m = MESSAGE
    pick = sa.select(m.c.id).where(
        m.c.destination == destination,
        m.c.status == "pending",
        m.c.kind == kind,
        m.c.next_attempt_at <= due,
    )
    if kind in WAITS_FOR_CONTACT:
        u = MESSAGE.alias("u")
        contact_open = (
            sa.exists()
            .where(
                u.c.destination == m.c.destination,
                u.c.customer_id == m.c.customer_id,
                u.c.status.in_(("pending", "in_flight")),
                u.c.kind == "contact_upsert",
            )
            .correlate(m)
        )
        pick = pick.where(sa.or_(m.c.customer_id.is_(None), ~contact_open))
    pick = pick.order_by(m.c.next_attempt_at, m.c.id).limit(limit)
    if is_postgres(conn):
        pick = pick.with_for_update(skip_locked=True, of=m)
    statement = (
        sa.update(m)
        .where(m.c.id.in_(pick.scalar_subquery()), m.c.status == "pending")
        .values(status="in_flight", claimed_by=owner, lease_until=lease_until)
        .returning(
            m.c.id,
            m.c.kind,
            m.c.customer_id,
            m.c.payload,
            m.c.idempotency_key,
            m.c.attempts,
            m.c.max_attempts,
            m.c.error_class,
            m.c.dispatched_at,
            m.c.last_status_code,
            m.c.last_error,
        )
    )
    rows = [
        Claimed(
            id=r.id,
            destination=destination,
            kind=r.kind,
            customer_id=r.customer_id,
            payload=r.payload,
            idempotency_key=r.idempotency_key,
            attempts=r.attempts,
            max_attempts=r.max_attempts,
            error_class=r.error_class,
            dispatched_at=r.dispatched_at,
            last_status_code=r.last_status_code,
            last_error=r.last_error,
        )
        for r in conn.execute(statement)
    ]
    rows.sort(key=lambda r: r.id)
    customers = {r.customer_id for r in rows if r.customer_id is not None}
    if customers:
        refs = dict(
            conn.execute(
                sa.select(OUTBOUND.c.customer_id, OUTBOUND.c.remote_id).where(
                    OUTBOUND.c.destination == destination,
                    one_of(conn, OUTBOUND.c.customer_id, customers),
                    OUTBOUND.c.remote_id.is_not(None),
                )
            ).all()
        )
        for r in rows:
            r.remote_ref = refs.get(r.customer_id) or r.remote_ref  # a delete carries its own: the state row is gone
    return rows


def mark_dispatched(conn: sa.Connection, ids: Sequence[int], now: datetime) -> None:
    """Record that these rows' request is about to leave (at-most-once kinds; committed before sending)."""
    conn.execute(sa.update(MESSAGE).where(one_of(conn, MESSAGE.c.id, ids)).values(dispatched_at=now))


# ------------------------------------------------------------------------------------------------ record

_RECORD = (
    sa.update(MESSAGE)
    .where(MESSAGE.c.id == sa.bindparam("_id"))
    .values(
        status=sa.bindparam("_status"),
        attempts=sa.bindparam("_attempts"),
        next_attempt_at=sa.bindparam("_next", type_=MESSAGE.c.next_attempt_at.type),
        last_status_code=sa.bindparam("_code"),
        last_error=sa.bindparam("_error"),
        error_class=sa.bindparam("_class"),
        remote_ref=sa.func.coalesce(sa.bindparam("_ref", type_=sa.String), MESSAGE.c.remote_ref),
        sent_at=sa.bindparam("_sent", type_=MESSAGE.c.sent_at.type),
        dispatched_at=sa.bindparam("_dispatched", type_=MESSAGE.c.dispatched_at.type),
        claimed_by=None,
        lease_until=None,
    )
)


def record(
    conn: sa.Connection,
    destination: str,
    updates: Sequence[RowUpdate],
    *,
    remote_ids: Iterable[tuple[int, str | None]] = (),
    now: datetime,
) -> None:
    """Write a batch's outcomes with one ``executemany``, and what was learnt of remote ids.

    ``remote_ids`` are ``(customer_id, remote_id)`` pairs: a contact created or updated (its id) or deleted
    (None) at the destination.
    """
    if updates:
        conn.execute(
            _RECORD,
            [
                {
                    "_id": u.id,
                    "_status": u.status,
                    "_attempts": u.attempts,
                    "_next": u.next_attempt_at,
                    "_code": u.last_status_code,
                    "_error": u.last_error,
                    "_class": u.error_class,
                    "_ref": u.remote_ref,
                    "_sent": u.sent_at,
                    "_dispatched": u.dispatched_at,
                }
                for u in updates
            ],
        )
    learnt = dict(remote_ids)
    known = [{"_dest": destination, "_customer": c, "_remote": r, "_at": now} for c, r in learnt.items()]
    upserts = [row for row in known if row["_remote"] is not None]
    if upserts:
        insert = _insert(conn, OUTBOUND)
        statement = insert.values(
            destination=sa.bindparam("_dest"),
            customer_id=sa.bindparam("_customer"),
            remote_id=sa.bindparam("_remote"),
            updated_at=sa.bindparam("_at", type_=OUTBOUND.c.updated_at.type),
            version=0,
        ).on_conflict_do_update(
            index_elements=["destination", "customer_id"],
            set_={"remote_id": insert.excluded.remote_id, "updated_at": insert.excluded.updated_at},
        )
        conn.execute(statement, upserts)
    cleared = [row for row in known if row["_remote"] is None]
    if cleared:
        conn.execute(
            sa.update(OUTBOUND)
            .where(
                OUTBOUND.c.destination == sa.bindparam("_dest"),
                OUTBOUND.c.customer_id == sa.bindparam("_customer"),
            )
            .values(remote_id=None, updated_at=sa.bindparam("_at", type_=OUTBOUND.c.updated_at.type)),
            cleared,
        )


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    return (postgresql.insert if is_postgres(conn) else sqlite.insert)(table)


# ----------------------------------------------------------------------------------------------- recover


@dataclass(frozen=True, slots=True)
class Stale:
    id: int
    destination: str
    kind: str
    claimed_by: str | None
    dispatched_at: datetime | None


def find_stale(
    conn: sa.Connection, now: datetime, destinations: Sequence[str] | None = None, *, owner: str | None = None
) -> list[Stale]:
    """In-flight rows whose claim is void: the lease expired, or the claiming process on this host is gone.

    ``owner`` (this process's :func:`claimant`) selects that process's own claims instead, whatever their lease:
    a pass that failed half-way hands its rows on at once.
    """
    m = MESSAGE
    query = sa.select(m.c.id, m.c.destination, m.c.kind, m.c.claimed_by, m.c.lease_until, m.c.dispatched_at).where(
        m.c.status == "in_flight"
    )
    if destinations is not None:
        query = query.where(m.c.destination.in_(list(destinations)))
    if owner is not None:
        query = query.where(m.c.claimed_by == owner)
    found = []
    for r in conn.execute(query):
        if owner is None and not (r.lease_until is None or r.lease_until < now or holder_is_dead(r.claimed_by)):
            continue
        found.append(Stale(r.id, r.destination, r.kind, r.claimed_by, r.dispatched_at))
    return found


def recover(
    conn: sa.Connection, stale: Sequence[Stale], guarantee_of: Callable[[str, str], Guarantee], now: datetime
) -> dict[str, int]:
    """Hand stale in-flight rows on, per their kind's guarantee; returns how many went ``pending``/``dead``.

    At-least-once rows go back to pending marked uncertain (``error_class='unknown'``: the plugin checks
    before re-sending). At-most-once rows whose request may have left (``dispatched_at`` set) are parked dead;
    those that certainly never left go back to pending as they were. Attempts are not spent: the destination
    did nothing wrong. Each update repeats the claim it saw, so a row finished meanwhile is left alone.
    """
    retry, parked, untouched = [], [], []
    for s in stale:
        if guarantee_of(s.destination, s.kind) == "at_least_once":
            retry.append(s)
        elif s.dispatched_at is not None:
            parked.append(s)
        else:
            untouched.append(s)
    m = MESSAGE
    claim_matches = sa.and_(
        m.c.id == sa.bindparam("_id"),
        m.c.status == "in_flight",
        m.c.claimed_by.is_not_distinct_from(sa.bindparam("_owner", type_=sa.String)),
    )
    common = {"claimed_by": None, "lease_until": None}

    def params(rows: list[Stale]) -> list[dict[str, Any]]:
        return [{"_id": s.id, "_owner": s.claimed_by} for s in rows]

    if retry:
        conn.execute(
            sa.update(m)
            .where(claim_matches)
            .values(
                status="pending",
                error_class="unknown",
                last_error=sa.func.coalesce(m.c.last_error, "outcome unknown: the dispatcher holding it stopped"),
                next_attempt_at=now,
                dispatched_at=None,
                **common,
            ),
            params(retry),
        )
    if parked:
        conn.execute(
            sa.update(m)
            .where(claim_matches)
            .values(status="dead", error_class="unknown", last_error=CRASH_PARKED, **common),
            params(parked),
        )
    if untouched:
        conn.execute(
            sa.update(m).where(claim_matches).values(status="pending", next_attempt_at=now, **common),
            params(untouched),
        )
    return {"pending": len(retry) + len(untouched), "dead": len(parked)}


# ------------------------------------------------------------------------------------------ pause/resume


def _state_upsert(conn: sa.Connection, destination: str, now: datetime, **values: Any) -> None:
    insert = _insert(conn, DEST_STATE)
    conn.execute(
        insert.values(
            destination=destination, updated_at=now, last_order_id=0, **{"paused": False, **values}
        ).on_conflict_do_update(index_elements=["destination"], set_={"updated_at": now, **values})
    )


def pause(conn: sa.Connection, destination: str, reason: str, now: datetime) -> None:
    _state_upsert(conn, destination, now, paused=True, paused_reason=reason, paused_at=now)


def resume(conn: sa.Connection, destination: str, now: datetime, *, actor: str, detail: str) -> None:
    _state_upsert(conn, destination, now, paused=False, paused_reason=None, paused_at=None)
    conn.execute(sa.insert(AUDIT).values(destination=destination, action="resume", actor=actor, detail=detail, at=now))


def paused_destinations(conn: sa.Connection) -> dict[str, tuple[str | None, datetime | None]]:
    """Paused destinations with why and since when."""
    rows = conn.execute(
        sa.select(DEST_STATE.c.destination, DEST_STATE.c.paused_reason, DEST_STATE.c.paused_at).where(
            DEST_STATE.c.paused.is_(True)
        )
    )
    return {r.destination: (r.paused_reason, r.paused_at) for r in rows}


# ------------------------------------------------------------------------------------------------ counts


def counts(conn: sa.Connection) -> list[tuple[str, str, str, int]]:
    """``(destination, kind, status, count)`` for every combination present."""
    m = MESSAGE
    rows = conn.execute(
        sa.select(m.c.destination, m.c.kind, m.c.status, sa.func.count())
        .group_by(m.c.destination, m.c.kind, m.c.status)
        .order_by(m.c.destination, m.c.kind, m.c.status)
    )
    return [(r[0], r[1], r[2], int(r[3])) for r in rows]


def oldest_pending(conn: sa.Connection) -> dict[str, datetime]:
    """Per destination, when its oldest pending row was created."""
    m = MESSAGE
    rows = conn.execute(
        sa.select(m.c.destination, sa.func.min(m.c.created_at)).where(m.c.status == "pending").group_by(m.c.destination)
    )
    return {r[0]: r[1] for r in rows if r[1] is not None}


def count_due(conn: sa.Connection, destination: str, due: datetime, kinds: Sequence[str] | None = None) -> int:
    m = MESSAGE
    query = sa.select(sa.func.count()).where(
        m.c.destination == destination, m.c.status == "pending", m.c.next_attempt_at <= due
    )
    if kinds is not None:
        query = query.where(m.c.kind.in_(list(kinds)))
    return int(conn.execute(query).scalar_one())


def pending_plan(conn: sa.Connection, destination: str) -> dict[str, int]:
    """Pending rows by kind, contact upserts split into creates and updates (the remote id known or not)."""
    m, o = MESSAGE, OUTBOUND
    known = sa.case((o.c.remote_id.is_(None), 0), else_=1)
    rows = conn.execute(
        sa.select(m.c.kind, known, sa.func.count())
        .select_from(m.outerjoin(o, sa.and_(o.c.destination == m.c.destination, o.c.customer_id == m.c.customer_id)))
        .where(m.c.destination == destination, m.c.status == "pending")
        .group_by(m.c.kind, known)
    )
    plan: dict[str, int] = {}
    for kind, known, n in rows:
        key = ("contact_update" if known else "contact_create") if kind == "contact_upsert" else kind
        plan[key] = plan.get(key, 0) + int(n)
    return plan


# ------------------------------------------------------------------------------------------ dead letters

_LISTED = (
    MESSAGE.c.id,
    MESSAGE.c.destination,
    MESSAGE.c.kind,
    MESSAGE.c.customer_id,
    MESSAGE.c.attempts,
    MESSAGE.c.error_class,
    MESSAGE.c.last_status_code,
    MESSAGE.c.last_error,
    MESSAGE.c.created_at,
)


def dead_letters(
    conn: sa.Connection, *, destination: str | None = None, kind: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Dead rows, newest first."""
    query = sa.select(*_LISTED).where(MESSAGE.c.status == "dead").order_by(MESSAGE.c.id.desc())
    if destination:
        query = query.where(MESSAGE.c.destination == destination)
    if kind:
        query = query.where(MESSAGE.c.kind == kind)
    if limit:
        query = query.limit(limit)
    return [dict(r._mapping) for r in conn.execute(query)]


def get_message(conn: sa.Connection, message_id: int) -> Message | None:
    row = conn.execute(sa.select(MESSAGE).where(MESSAGE.c.id == message_id)).first()
    return Message.model_validate(dict(row._mapping)) if row is not None else None


def audit_of(conn: sa.Connection, message_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(AUDIT).where(AUDIT.c.message_id == message_id).order_by(AUDIT.c.id))
    return [dict(r._mapping) for r in rows]


@dataclass(frozen=True, slots=True)
class Replay:
    """One dead letter to re-queue: its id, the rebuilt payload (None keeps the stored one), and a note."""

    id: int
    payload: dict[str, Any] | None = None
    detail: str = ""


def replay(conn: sa.Connection, replays: Sequence[Replay], *, budget: int, actor: str, now: datetime) -> list[int]:
    """Re-queue dead rows: pending now, a fresh budget of ``budget`` attempts on top of those spent, the
    rebuilt payload where there is one, and an ``outbox_audit`` row each. Returns the ids re-queued (a row no
    longer dead is left alone)."""
    m = MESSAGE
    ids = [r.id for r in replays]
    if not ids:
        return []
    done = [
        row.id
        for row in conn.execute(
            sa.update(m)
            .where(one_of(conn, m.c.id, ids), m.c.status == "dead")
            .values(
                status="pending",
                next_attempt_at=now,
                max_attempts=m.c.attempts + budget,
                error_class=None,
                dispatched_at=None,
                claimed_by=None,
                lease_until=None,
            )
            .returning(m.c.id)
        )
    ]
    by_id = {r.id: r for r in replays}
    with_payload = [{"_id": i, "_payload": by_id[i].payload} for i in done if by_id[i].payload is not None]
    if with_payload:
        conn.execute(
            sa.update(m)
            .where(m.c.id == sa.bindparam("_id"))
            .values(payload=sa.bindparam("_payload", type_=m.c.payload.type)),
            with_payload,
        )
    if done:
        destinations = dict(conn.execute(sa.select(m.c.id, m.c.destination).where(one_of(conn, m.c.id, done))).all())
        conn.execute(
            sa.insert(AUDIT),
            [
                {
                    "message_id": i,
                    "destination": destinations.get(i),
                    "action": "replay",
                    "actor": actor,
                    "detail": by_id[i].detail or None,
                    "at": now,
                }
                for i in done
            ],
        )
    return done
