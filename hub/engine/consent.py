"""Consent: every statement is audited, and the current state per channel only ever changes monotonically.

Sources disagree and re-send old data: a nightly ERP dump still says "opt-in" a week after the person
unsubscribed in the shop. So the current ``consent`` row is never simply overwritten; :func:`decide` applies a
statement only when it is newer in a way that keeps an opt-out safe:

- an **opt-out** is applied when there is no current row, or the current opt-in is not newer than it; one
  without a date counts as *now* and so beats all older data (it is stored with ``at = now``);
- an **opt-in** is applied when there is no current row, or it has an explicit date strictly newer than the
  current one *and* a source. An undated opt-in can never replace an opt-out, and neither can re-mapping or
  re-syncing old records.

With distinct dates the result is the latest statement whatever the order they arrive in. Each statement
becomes one ``consent_event`` row (applied or not, and why) unless an identical one (same fingerprint) is
already recorded for that customer, so re-syncs add nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from hub.db import bulk_upsert, one_of, select_ids
from hub.models import Consent, ConsentEvent

__all__ = [
    "OPT_IN",
    "OPT_OUT",
    "ConsentStats",
    "Statement",
    "apply_consents",
    "decide",
    "fingerprint",
    "merge_consents",
]

OPT_IN = "opt_in"
OPT_OUT = "opt_out"
_STATUSES = frozenset({OPT_IN, OPT_OUT})
_OLDEST = datetime.min.replace(tzinfo=UTC)

_consent: sa.Table = Consent.__table__  # type: ignore[attr-defined]
_event: sa.Table = ConsentEvent.__table__  # type: ignore[attr-defined]
_CONSENT_COLUMNS = ("customer_id", "channel", "status", "at", "source", "evidence", "updated_at")
_EVENT_COLUMNS = (
    "customer_id",
    "channel",
    "status",
    "at",
    "source",
    "evidence",
    "applied",
    "reason",
    "fingerprint",
    "recorded_at",
)


@dataclass(frozen=True, slots=True)
class Statement:
    """A consent statement, or the current state it produced. ``at``: when the person gave or withdrew it."""

    status: str
    at: datetime | None = None
    source: str | None = None
    evidence: str | None = None


@dataclass(slots=True)
class ConsentStats:
    """What :func:`apply_consents` did. ``rejected`` maps an item index to the reasons it was unusable."""

    events: int = 0
    applied: int = 0
    ignored: int = 0
    duplicates: int = 0
    rejected: dict[int, list[str]] = field(default_factory=dict)


def decide(current: Statement | None, incoming: Statement, *, now: datetime | None = None) -> tuple[bool, str]:
    """Whether ``incoming`` replaces ``current`` (the state of one customer and channel), and why.

    Pure, so it can be property-tested. An undated opt-out counts as ``now``, or as newer than anything when
    ``now`` is not given. A current opt-in without a date is older than anything; a current opt-out without
    one (only legacy data has it) is newer than anything, so no opt-in can lift it.
    """
    if current is None:
        return True, "no current consent"
    if incoming.status == OPT_OUT:
        if current.status == OPT_OUT:
            if incoming.at is not None and current.at is not None and incoming.at > current.at:
                return True, "newer opt-out"
            return False, "already opted out"
        if incoming.at is None and (now is None or current.at is None or current.at <= now):
            return True, "opt-out without a date counts as now"
        effective = incoming.at or now
        if current.at is None or (effective is not None and current.at <= effective):
            return True, "not older than current opt-in"
        return False, "older than current opt-in"
    current_name = "opt-out" if current.status == OPT_OUT else "opt-in"
    if incoming.at is None:
        return False, f"opt-in without a date cannot replace current {current_name}"
    if not incoming.source:
        return False, f"opt-in without a source cannot replace current {current_name}"
    if current.at is None:
        if current.status == OPT_OUT:
            return False, "current opt-out has no date"
        return True, "newer than current opt-in"
    if incoming.at > current.at:
        return True, f"newer than current {current_name}"
    return (
        False,
        f"older than current {current_name}" if incoming.at < current.at else f"same date as current {current_name}",
    )


def fingerprint(channel: str, statement: Statement) -> str:
    """Identity of a statement in the audit trail: the same statement synced twice has one fingerprint."""
    at = statement.at.astimezone(UTC).isoformat() if statement.at is not None else ""
    text = "\x1f".join((channel, statement.status, statement.source or "", at, statement.evidence or ""))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _order_key(statement: Statement, now: datetime) -> datetime:
    """When a statement takes effect, for ordering one batch: undated opt-outs now, undated opt-ins first."""
    if statement.at is not None:
        return statement.at
    return now if statement.status == OPT_OUT else _OLDEST


def _parse(row: Mapping[str, Any], source: str) -> tuple[str, Statement] | str:
    channel = str(row.get("channel") or "").strip().lower()
    status = str(row.get("status") or "").strip().lower()
    at = row.get("at")
    if not channel:
        return "consent: channel is missing"
    if status not in _STATUSES:
        return f"consent: status {row.get('status')!r} is not opt_in or opt_out"
    if at is not None and (not isinstance(at, datetime) or at.utcoffset() is None):
        return f"consent: at {at!r} is not a timezone-aware datetime"
    evidence = row.get("evidence")
    return channel, Statement(status, at, source, None if evidence is None else str(evidence))


def _load_current(conn: sa.Connection, customer_ids: Sequence[int]) -> dict[tuple[int, str], Statement]:
    current: dict[tuple[int, str], Statement] = {}
    if not customer_ids:
        return current
    c = _consent.c
    # ``one_of``, not ``in_``: an IN list's text changes with its length, and every length would be prepared and
    # cached as a statement of its own (about 0.5 MB each at a batch's size), growing with the run.
    query = sa.select(c.customer_id, c.channel, c.status, c.at, c.source, c.evidence)
    for customer_id, channel, status, at, source, evidence in conn.execute(
        query.where(one_of(conn, c.customer_id, customer_ids))
    ):
        current[(customer_id, channel)] = Statement(status, at, source, evidence)
    return current


def _write_current(conn: sa.Connection, states: Mapping[tuple[int, str], Statement], now: datetime) -> None:
    rows = [(cid, channel, s.status, s.at, s.source, s.evidence, now) for (cid, channel), s in states.items()]
    bulk_upsert(conn, _consent, rows, _CONSENT_COLUMNS, conflict=("customer_id", "channel"))


def apply_consents(
    conn: sa.Connection, items: Sequence[tuple[int, Mapping[str, Any]]], *, source: str, now: datetime
) -> ConsentStats:
    """Record and apply a batch of consent statements ``(customer_id, consent row)`` from ``source``.

    Set-based: one lookup of already-recorded fingerprints, one load of the current rows, then two bulk
    writes. Statements for one customer and channel are applied in ``at`` order.
    """
    stats = ConsentStats()
    fresh: dict[tuple[int, str], tuple[int, str, Statement]] = {}
    for index, (customer_id, row) in enumerate(items):
        parsed = _parse(row, source)
        if isinstance(parsed, str):
            stats.rejected[index] = [parsed]
            continue
        channel, statement = parsed
        key = (customer_id, fingerprint(channel, statement))
        if key in fresh:
            stats.duplicates += 1
        else:
            fresh[key] = (customer_id, channel, statement)
    recorded = select_ids(conn, _event, ("customer_id", "fingerprint"), list(fresh))
    stats.duplicates += len(recorded)
    by_channel: dict[tuple[int, str], list[tuple[str, Statement]]] = {}
    for key, (customer_id, channel, statement) in fresh.items():
        if key not in recorded:
            by_channel.setdefault((customer_id, channel), []).append((key[1], statement))
    if not by_channel:
        return stats

    current = _load_current(conn, sorted({customer_id for customer_id, _ in by_channel}))
    changed: dict[tuple[int, str], Statement] = {}
    events: list[tuple[Any, ...]] = []
    for (customer_id, channel), statements in by_channel.items():
        state = current.get((customer_id, channel))
        statements.sort(key=lambda item: _order_key(item[1], now))
        for print_, statement in statements:
            applied, reason = decide(state, statement, now=now)
            if applied:
                state = statement if statement.at is not None else _dated(statement, now)
                changed[(customer_id, channel)] = state
                stats.applied += 1
            else:
                stats.ignored += 1
            events.append(
                (
                    customer_id,
                    channel,
                    statement.status,
                    statement.at,
                    statement.source,
                    statement.evidence,
                    applied,
                    reason,
                    print_,
                    now,
                )
            )
    stats.events = bulk_upsert(conn, _event, events, _EVENT_COLUMNS, conflict=("customer_id", "fingerprint"), update=())
    _write_current(conn, changed, now)
    return stats


def _dated(statement: Statement, now: datetime) -> Statement:
    """The state an undated statement leaves: an opt-out is as of now, an opt-in stays undated (oldest)."""
    if statement.status == OPT_OUT:
        return Statement(statement.status, now, statement.source, statement.evidence)
    return statement


def merge_consents(conn: sa.Connection, survivor_of: Mapping[int, int], *, now: datetime) -> None:
    """Fold the consents and audit trail of merged customers into their survivors (merged id -> survivor id).

    Per channel the survivor's current row stays unless a merged customer's row wins under :func:`decide`,
    taken in ``at`` order, so a merge can never lift an opt-out. ``consent_event`` rows move to the survivor;
    one the survivor already has (same fingerprint) is dropped (unique customer_id, fingerprint).
    """
    if not survivor_of:
        return
    merged = sorted(survivor_of)
    survivors = sorted(set(survivor_of.values()))
    current = _load_current(conn, [*survivors, *merged])
    incoming: dict[tuple[int, str], list[Statement]] = {}
    for (customer_id, channel), statement in current.items():
        if customer_id in survivor_of:
            incoming.setdefault((survivor_of[customer_id], channel), []).append(statement)
    changed: dict[tuple[int, str], Statement] = {}
    for key, statements in incoming.items():
        state = current.get(key)
        for statement in sorted(statements, key=lambda s: _order_key(s, now)):
            if decide(state, statement, now=now)[0]:
                state = changed[key] = statement
    _write_current(conn, changed, now)
    conn.execute(_consent.delete().where(one_of(conn, _consent.c.customer_id, merged)))

    involved = [*survivors, *merged]
    seen: dict[int, set[str]] = {survivor: set() for survivor in survivors}
    query = sa.select(_event.c.id, _event.c.customer_id, _event.c.fingerprint).where(
        one_of(conn, _event.c.customer_id, involved)
    )
    owned = [(event_id, customer_id, print_) for event_id, customer_id, print_ in conn.execute(query)]
    owned.sort(key=lambda row: (row[1] in survivor_of, row[0]))  # the survivor's own events are kept first
    duplicates: list[int] = []
    for event_id, customer_id, print_ in owned:
        prints = seen[survivor_of.get(customer_id, customer_id)]
        if print_ in prints:
            duplicates.append(event_id)
        prints.add(print_)
    if duplicates:
        conn.execute(_event.delete().where(one_of(conn, _event.c.id, duplicates)))
    conn.execute(
        _event.update().where(_event.c.customer_id == sa.bindparam("merged")).values(customer_id=sa.bindparam("to")),
        [{"merged": m, "to": s} for m, s in survivor_of.items()],
    )
