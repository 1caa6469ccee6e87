"""Contact pressure: send, hold or suppress each due candidate message, and why, in plain words.

:func:`decide` takes a batch of :class:`~hub.audience.types.Prepared` candidates, reads what it needs about their
customers in one query per table (customer flags, consents, bounces, recent sends in ``contact_log``), and judges
each customer's candidates in order of priority (transactional, triggered, campaign), then the trigger's place in
hub.yaml, then the time it fired. The first rule that applies decides; the rule names are stable (``hub explain``
and the tests read them):

==================  ==========================================================================================
``erased``          the customer asked to be forgotten: suppressed, even a transactional message
``prepare_error``   the candidate could not be prepared (its order is gone, no destination): suppressed
``transactional``   a transactional message type skips every rule below: sent
``b2b``             ``exclusions.b2b`` is ``all`` or lists the type, and the customer is B2B: suppressed
``bounced``         e-mail only: an event of a type in ``exclusions.bounce_events``: suppressed
``unsubscribed``    ``require_consent`` and the channel's consent is ``opt_out``: suppressed
``no_consent``      ``require_consent`` and no opt-in on the channel: suppressed
``quarantine:<q>``  a send of a type in ``after`` less than ``for`` ago, and this type is kept out: ``then``
``cap:<c>``         ``max`` sends within ``per`` already counted (earlier sends in this batch too): ``then``
``expired``         due longer ago than the type's ``max_hold`` (or a hold would outlast it): suppressed
``send``            nothing held it back: sent
==================  ==========================================================================================

A hold ends when the send that blocks it leaves the window (quarantine: that send + ``for``; cap: the oldest
counted send + ``per``); :func:`due_candidates` hands the candidate back then and it is decided again.

Every decision is a ``contact_log`` row and an update of the candidate, written in the caller's transaction
together with the outbox rows of a ``send`` (keyed ``<destination>:trigger:<candidate key>``, so deciding the
same candidate twice never enqueues twice). :func:`blocked_customers` is the same exclusions and quarantines as
one SELECT, for the segment push.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from hub.audience.types import Prepared
from hub.config import HubConfig
from hub.config._audience import PRIORITIES, Cap, ContactPressureConfig, MessageType, Quarantine
from hub.connectors import Destination
from hub.db import one_of
from hub.delivery.changes import enqueue
from hub.delivery.outcomes import InvalidMessage
from hub.models import AudienceCandidate, Consent, ContactLog, Customer, Event

__all__ = [
    "CHANNEL_WORDS",
    "Decision",
    "DecisionSummary",
    "Facts",
    "blocked_customers",
    "decide",
    "due_candidates",
    "judge",
    "message_kind",
    "read_facts",
    "span",
]

DecisionKind = Literal["send", "hold", "suppress"]
#: How a channel is named in a reason ("no e-mail consent").
CHANNEL_WORDS: dict[str, str] = {"email": "e-mail", "sms": "SMS", "post": "post", "phone": "phone", "push": "push"}
_RANK: dict[str, int] = {priority: rank for rank, priority in enumerate(PRIORITIES)}

_candidate: sa.Table = AudienceCandidate.__table__  # type: ignore[attr-defined]
_log: sa.Table = ContactLog.__table__  # type: ignore[attr-defined]
_customer: sa.Table = Customer.__table__  # type: ignore[attr-defined]
_consent: sa.Table = Consent.__table__  # type: ignore[attr-defined]
_event: sa.Table = Event.__table__  # type: ignore[attr-defined]

_LOG_COLUMNS = (
    "candidate_id",
    "customer_id",
    "trigger",
    "message_type",
    "channel",
    "priority",
    "decision",
    "rule",
    "reason",
    "hold_until",
    "destinations",
    "at",
)
_STATUS: dict[str, str] = {"send": "sent", "hold": "held", "suppress": "suppressed"}


@dataclass(frozen=True, slots=True)
class Decision:
    """What one rule said about one candidate."""

    decision: DecisionKind
    rule: str
    reason: str
    hold_until: datetime | None = None


@dataclass(slots=True)
class DecisionSummary:
    """What one :func:`decide` call did: decisions by kind and by (kind, rule); outbox rows written (``dead``: a
    destination refused the payload, stored as a dead letter); ``skipped``: candidates already decided."""

    by_decision: Counter[str] = field(default_factory=Counter)
    by_rule: Counter[tuple[str, str]] = field(default_factory=Counter)
    enqueued: int = 0
    dead: int = 0
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class _Send:
    """A send counted by caps and quarantines: from ``contact_log``, or decided earlier in this batch."""

    message_type: str
    channel: str
    priority: str
    at: datetime


@dataclass(slots=True)
class Facts:
    """What the rules need to know about one customer."""

    erased_at: datetime | None = None
    is_b2b: bool = False
    consents: dict[str, str] = field(default_factory=dict)
    bounced: str | None = None  # the bounce event type, if any
    sends: list[_Send] = field(default_factory=list)


def message_kind(pressure: ContactPressureConfig, name: str) -> MessageType:
    """The configured message type, or the defaults (e-mail, triggered) for a type the block does not list."""
    return pressure.message_types.get(name) or MessageType()


def span(delta: timedelta) -> str:
    """A duration in words: "2 days", "36 hours", "90 minutes"."""
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def _when(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _b2b_excluded(pressure: ContactPressureConfig, name: str) -> bool:
    b2b = pressure.exclusions.b2b
    return b2b == "all" or name in b2b


def _counts(cap: Cap, name: str, kind: MessageType) -> bool:
    """Whether a message of type ``name`` falls under ``cap`` (for a candidate, and for a counted send)."""
    if cap.message_types and name not in cap.message_types:
        return False
    return cap.channel is None or cap.channel == kind.channel


def judge(
    pressure: ContactPressureConfig,
    name: str,
    facts: Facts,
    now: datetime,
    *,
    due_at: datetime,
    zone: ZoneInfo,
    error: str | None = None,
) -> Decision:
    """The first rule that applies to a candidate of message type ``name`` for a customer with ``facts``."""
    kind = message_kind(pressure, name)
    exclusions = pressure.exclusions
    if facts.erased_at is not None:
        return Decision("suppress", "erased", f"the customer was erased on {_when(facts.erased_at, zone)}")
    if error is not None:
        return Decision("suppress", "prepare_error", f"could not be prepared: {error}")
    if kind.priority == "transactional":
        return Decision("send", "transactional", f"{name} is transactional: only erasure stops it")
    if facts.is_b2b and _b2b_excluded(pressure, name):
        return Decision("suppress", "b2b", f"B2B customers get no {name} (contact_pressure.exclusions.b2b)")
    channel = CHANNEL_WORDS.get(kind.channel, kind.channel)
    if kind.channel == "email" and facts.bounced is not None:
        return Decision("suppress", "bounced", f"e-mail to the customer bounced (a {facts.bounced} event)")
    if exclusions.require_consent:
        consent = facts.consents.get(kind.channel)
        if consent == "opt_out":
            return Decision("suppress", "unsubscribed", f"the customer unsubscribed from {channel}")
        if consent != "opt_in":
            return Decision("suppress", "no_consent", f"no {channel} consent")
    for quarantine in pressure.quarantines:
        if name in quarantine.keep_out_of and (held := _quarantined(quarantine, name, facts, now, zone)):
            return _within_max_hold(held, kind, due_at, zone)
    for cap in pressure.caps:
        if _counts(cap, name, kind) and (held := _capped(pressure, cap, name, kind, facts, now, zone)):
            return _within_max_hold(held, kind, due_at, zone)
    if now - due_at > kind.max_hold:
        reason = f"it was due on {_when(due_at, zone)}, longer ago than {name}'s max_hold of {span(kind.max_hold)}"
        return Decision("suppress", "expired", reason)
    return Decision("send", "send", "no rule held it back")


def _quarantined(quarantine: Quarantine, name: str, facts: Facts, now: datetime, zone: ZoneInfo) -> Decision | None:
    recent = [s for s in facts.sends if s.message_type in quarantine.after and s.at > now - quarantine.for_]
    if not recent:
        return None
    last = max(recent, key=lambda s: s.at)
    until = last.at + quarantine.for_
    reason = (
        f"quarantine '{quarantine.name}': got {last.message_type} on {_when(last.at, zone)}, so no {name} for "
        f"{span(quarantine.for_)} (until {_when(until, zone)})"
    )
    if quarantine.then == "hold":
        return Decision("hold", f"quarantine:{quarantine.name}", reason, until)
    return Decision("suppress", f"quarantine:{quarantine.name}", reason)


def _capped(
    pressure: ContactPressureConfig,
    cap: Cap,
    name: str,
    kind: MessageType,
    facts: Facts,
    now: datetime,
    zone: ZoneInfo,
) -> Decision | None:
    counted = sorted(
        (
            s
            for s in facts.sends
            if s.at > now - cap.per and _counts(cap, s.message_type, message_kind(pressure, s.message_type))
        ),
        key=lambda s: s.at,
    )
    if len(counted) < cap.max:
        return None
    got = ", ".join(f"{s.message_type} at {_when(s.at, zone)}" for s in counted)
    reason = f"cap '{cap.name}' ({cap.max} per {span(cap.per)}): already got {got}"
    higher = [s for s in counted if _RANK[s.priority] < _RANK[kind.priority]]
    if higher:
        reason += f"; a higher-priority {higher[-1].message_type} took the slot"
    if cap.then == "hold":
        return Decision("hold", f"cap:{cap.name}", reason, counted[0].at + cap.per)
    return Decision("suppress", f"cap:{cap.name}", reason)


def _within_max_hold(decided: Decision, kind: MessageType, due_at: datetime, zone: ZoneInfo) -> Decision:
    """A hold that would end after the type's ``max_hold`` is pointless: suppress it now, under the same rule."""
    if decided.hold_until is None or decided.hold_until <= due_at + kind.max_hold:
        return decided
    reason = f"{decided.reason}; holding it would outlast its max_hold of {span(kind.max_hold)}"
    return Decision("suppress", decided.rule, reason)


# -------------------------------------------------------------------------------------------------- facts


def read_facts(
    conn: sa.Connection, pressure: ContactPressureConfig, customer_ids: Sequence[int], now: datetime
) -> dict[int, Facts]:
    """Everything the rules read about these customers: one query per table for the whole batch."""
    facts: dict[int, Facts] = defaultdict(Facts)
    flags = sa.select(_customer.c.id, _customer.c.erased_at, _customer.c.is_b2b).where(
        one_of(conn, _customer.c.id, customer_ids)
    )
    for customer_id, erased_at, is_b2b in conn.execute(flags):
        facts[customer_id].erased_at, facts[customer_id].is_b2b = erased_at, bool(is_b2b)
    consents = sa.select(_consent.c.customer_id, _consent.c.channel, _consent.c.status).where(
        one_of(conn, _consent.c.customer_id, customer_ids)
    )
    for customer_id, channel, status in conn.execute(consents):
        facts[customer_id].consents[channel] = status
    bounce_events = pressure.exclusions.bounce_events
    if bounce_events:
        bounces = (
            sa.select(_event.c.customer_id, sa.func.max(_event.c.type))
            .where(one_of(conn, _event.c.customer_id, customer_ids), _event.c.type.in_(bounce_events))
            .group_by(_event.c.customer_id)
        )
        for customer_id, event_type in conn.execute(bounces):
            facts[customer_id].bounced = event_type
    windows = [cap.per for cap in pressure.caps] + [quarantine.for_ for quarantine in pressure.quarantines]
    if windows:
        sends = (
            sa.select(_log.c.customer_id, _log.c.message_type, _log.c.channel, _log.c.priority, _log.c.at)
            .where(
                one_of(conn, _log.c.customer_id, customer_ids),
                _log.c.decision == "send",
                _log.c.at > now - max(windows),
            )
            .order_by(_log.c.at)
        )
        for customer_id, name, channel, priority, at in conn.execute(sends):
            facts[customer_id].sends.append(_Send(name, channel, priority, at))
    return facts


# ------------------------------------------------------------------------------------------------- decide


def decide(
    conn: sa.Connection,
    config: HubConfig,
    prepared: Sequence[Prepared],
    now: datetime,
    *,
    destinations: Mapping[str, Destination],
) -> DecisionSummary:
    """Decide every candidate of the batch, log it, update it, and enqueue the sends, in the caller's transaction.

    A candidate that is no longer waiting or held (decided by an earlier call) is skipped, so a batch decided
    twice changes nothing the second time.
    """
    summary = DecisionSummary()
    if not prepared:
        return summary
    pressure = config.contact_pressure
    zone = ZoneInfo(config.timezone)
    ids = [p.candidate_id for p in prepared]
    statuses = dict(
        conn.execute(sa.select(_candidate.c.id, _candidate.c.status).where(one_of(conn, _candidate.c.id, ids))).all()
    )
    todo = [p for p in prepared if statuses.get(p.candidate_id) in ("waiting", "held")]
    summary.skipped = len(prepared) - len(todo)
    if not todo:
        return summary
    facts = read_facts(conn, pressure, sorted({p.customer_id for p in todo}), now)

    def rank(p: Prepared) -> tuple[Any, ...]:
        kind = message_kind(pressure, p.message_type)
        return (p.customer_id, _RANK[kind.priority], p.order, p.fired_at, p.candidate_id)

    logs: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    sends: list[Prepared] = []
    for p in sorted(todo, key=rank):
        kind = message_kind(pressure, p.message_type)
        error = p.error if p.error is not None or p.views else "no destination to send it to"
        customer = facts[p.customer_id]
        decided = judge(pressure, p.message_type, customer, now, due_at=p.due_at, zone=zone, error=error)
        if decided.decision == "send":
            customer.sends.append(_Send(p.message_type, kind.channel, kind.priority, now))
            sends.append(p)
        summary.by_decision[decided.decision] += 1
        summary.by_rule[decided.decision, decided.rule] += 1
        values = (p.candidate_id, p.customer_id, p.trigger, p.message_type, kind.channel, kind.priority)
        logs.append(
            dict(
                zip(
                    _LOG_COLUMNS,
                    (*values, decided.decision, decided.rule, decided.reason, decided.hold_until, sorted(p.views), now),
                    strict=True,
                )
            )
        )
        updates.append(
            {
                "_id": p.candidate_id,
                "status": _STATUS[decided.decision],
                "rule": decided.rule,
                "reason": decided.reason,
                "hold_until": decided.hold_until,
                "branch": p.branch,
                "variant": p.variant,
                "payload": p.payload,
                "decided_at": now,
            }
        )
    conn.execute(sa.insert(_log), logs)
    columns = ("status", "rule", "reason", "hold_until", "branch", "variant", "payload", "decided_at")
    update = (
        sa.update(_candidate)
        .where(_candidate.c.id == sa.bindparam("_id"))
        .values({name: sa.bindparam(name) for name in columns})
    )
    conn.execute(update, updates)
    for p in sends:
        _enqueue(conn, p, destinations, now, summary)
    return summary


def _enqueue(
    conn: sa.Connection,
    prepared: Prepared,
    destinations: Mapping[str, Destination],
    now: datetime,
    summary: DecisionSummary,
) -> None:
    """One ``trigger`` outbox row per destination of a sent candidate; a payload the destination refuses (or a
    destination that is missing or takes no triggers) is stored as a dead letter with the reason."""
    for name, view in sorted(prepared.views.items()):
        error: str | None = None
        payload = view
        destination = destinations.get(name)
        if destination is None:
            error = f"no destination named {name} is configured"
        elif "trigger" not in type(destination).kinds:
            error = f"{name} does not take trigger messages"
        else:
            try:
                payload = destination.prepare("trigger", view)
            except InvalidMessage as exc:
                error = str(exc)
        key = f"{name}:trigger:{prepared.key}"
        if enqueue(conn, name, "trigger", prepared.customer_id, payload, key, now, error=error):
            if error is None:
                summary.enqueued += 1
            else:
                summary.dead += 1


# ----------------------------------------------------------------------------------------- due candidates


def due_candidates(conn: sa.Connection, now: datetime, *, limit: int, after_customer: int = 0) -> list[sa.Row[Any]]:
    """Candidates to decide now (waiting and due, or held and their hold over), by customer then id, after
    ``after_customer``; the batch is extended past ``limit`` to hold all of its last customer's candidates (the
    rules weigh a customer's candidates against each other)."""
    c = _candidate
    due = sa.or_(
        sa.and_(c.c.status == "waiting", c.c.due_at <= now),
        sa.and_(c.c.status == "held", c.c.hold_until <= now),
    )
    query = sa.select(c).where(due, c.c.customer_id > after_customer).order_by(c.c.customer_id, c.c.id)
    rows = list(conn.execute(query.limit(limit)))
    if len(rows) == limit and rows:
        last = rows[-1]
        rest = sa.select(c).where(due, c.c.customer_id == last.customer_id, c.c.id > last.id).order_by(c.c.id)
        rows.extend(conn.execute(rest))
    return rows


# ------------------------------------------------------------------------------------------- blocked (push)


def blocked_customers(pressure: ContactPressureConfig, message_type: str, now: datetime) -> sa.Select[Any]:
    """SELECT the ids of customers who may not get ``message_type`` now: erased, and (unless it is
    transactional) B2B if excluded, bounced (e-mail), without consent if required, or in one of its quarantines.

    Only ``send`` rows of ``contact_log`` count for quarantines; caps are per message and do not apply to a
    segment's membership. Every branch yields non-NULL ids, so ``NOT IN`` over it is safe.
    """
    kind = message_kind(pressure, message_type)
    c = _customer
    parts: list[sa.Select[Any]] = [sa.select(c.c.id.label("customer_id")).where(c.c.erased_at.is_not(None))]
    if kind.priority != "transactional":
        if _b2b_excluded(pressure, message_type):
            parts.append(sa.select(c.c.id).where(c.c.is_b2b.is_(True)))
        bounce_events = pressure.exclusions.bounce_events
        if kind.channel == "email" and bounce_events:
            parts.append(
                sa.select(_event.c.customer_id).where(
                    _event.c.type.in_(bounce_events), _event.c.customer_id.is_not(None)
                )
            )
        if pressure.exclusions.require_consent:
            opted_in = sa.select(_consent.c.customer_id).where(
                _consent.c.customer_id == c.c.id, _consent.c.channel == kind.channel, _consent.c.status == "opt_in"
            )
            parts.append(sa.select(c.c.id).where(~opted_in.exists()))
        for quarantine in pressure.quarantines:
            if message_type in quarantine.keep_out_of:
                parts.append(
                    sa.select(_log.c.customer_id).where(
                        _log.c.decision == "send",
                        _log.c.message_type.in_(quarantine.after),
                        _log.c.at > now - quarantine.for_,
                    )
                )
    if len(parts) == 1:
        return parts[0]
    union = sa.union(*parts).subquery()
    return sa.select(union.c.customer_id)
