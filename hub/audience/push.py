"""Segment push: tell each destination a segment is pushed to who entered it and who left, as outbox rows.

What a destination holds is kept in ``segment_push`` (destination, segment, customer). Each pass diffs it against
the *effective* membership: ``segment_membership``, minus :func:`hub.audience.policy.blocked_customers` when the
segment has a ``message_type`` (so a customer in a newsletter quarantine leaves the pushed newsletter segment and
comes back when the quarantine ends). Both sides of the diff are computed in SQL; only the changed ids come back,
and they are handled in batches of ``config.batch_size`` (customer views in three queries per batch).

Each change is a ``segment_membership`` message, ``prepare("segment_membership", {"segment", "change", "_hub"})``,
keyed ``<destination>:segment_membership:<segment>:<customer>:<entered|left>:<now>``; a payload the destination
refuses is a dead letter. Pushes to a segment or destination no longer configured are taken back as ``left``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
import structlog

from hub.audience.policy import blocked_customers
from hub.config import HubConfig
from hub.connectors import Destination
from hub.db import one_of
from hub.delivery.changes import enqueue_many
from hub.delivery.outcomes import InvalidMessage
from hub.delivery.views import customer_views, hub_keys
from hub.models import SegmentMembership, SegmentPush

__all__ = ["KIND", "push_segments"]

#: The outbox kind of a segment change; a destination takes it by listing it in ``kinds``.
KIND = "segment_membership"

log = structlog.get_logger("hub.audience")

_member: sa.Table = SegmentMembership.__table__  # type: ignore[attr-defined]
_push: sa.Table = SegmentPush.__table__  # type: ignore[attr-defined]

Change = Literal["entered", "left"]


def push_segments(
    conn: sa.Connection, config: HubConfig, now: datetime, *, destinations: Mapping[str, Destination]
) -> dict[str, dict[str, int]]:
    """Push every segment's changes to its destinations; {segment: {entered, left, skipped}}, where ``skipped``
    counts destinations that are missing or take no ``segment_membership`` messages (logged as a warning)."""
    results: dict[str, dict[str, int]] = {}
    configured: set[tuple[str, str]] = set()
    for name, segment in config.segments.items():
        counts = results.setdefault(name, {"entered": 0, "left": 0, "skipped": 0})
        for destination_name in segment.push:
            configured.add((destination_name, name))
            destination = destinations.get(destination_name)
            if destination is None or KIND not in type(destination).kinds:
                counts["skipped"] += 1
                log.warning(
                    "segment push skipped: the destination takes no segment_membership messages",
                    segment=name,
                    destination=destination_name,
                )
                continue
            members = sa.select(_member.c.customer_id).where(_member.c.segment == name)
            if segment.message_type is not None:
                blocked = blocked_customers(config.contact_pressure, segment.message_type, now)
                members = members.where(_member.c.customer_id.not_in(blocked))
            entered, left = _diff(conn, destination_name, name, members)
            counts["entered"] += _apply(
                conn, destination_name, destination, name, "entered", entered, now, config.batch_size
            )
            counts["left"] += _apply(conn, destination_name, destination, name, "left", left, now, config.batch_size)
    stale = sa.select(_push.c.destination, _push.c.segment).distinct()
    for destination_name, name in conn.execute(stale).all():
        if (destination_name, name) in configured:
            continue
        counts = results.setdefault(name, {"entered": 0, "left": 0, "skipped": 0})
        _, left = _diff(conn, destination_name, name, sa.select(_member.c.customer_id).where(sa.false()))
        destination = destinations.get(destination_name)
        if destination is None or KIND not in type(destination).kinds:
            _forget(conn, destination_name, name, left)
        else:
            counts["left"] += _apply(conn, destination_name, destination, name, "left", left, now, config.batch_size)
    return results


def _diff(conn: sa.Connection, destination: str, segment: str, members: sa.Select[Any]) -> tuple[list[int], list[int]]:
    """(entered, left): effective members the destination does not hold, and held customers no longer members."""
    pushed = _push.c
    held = sa.select(pushed.customer_id).where(
        pushed.destination == destination, pushed.segment == segment, pushed.customer_id == _member.c.customer_id
    )
    entered = members.where(~held.exists()).order_by(_member.c.customer_id)
    gone = (
        sa.select(pushed.customer_id)
        .where(pushed.destination == destination, pushed.segment == segment, pushed.customer_id.not_in(members))
        .order_by(pushed.customer_id)
    )
    return list(conn.execute(entered).scalars()), list(conn.execute(gone).scalars())


def _batches(ids: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _apply(
    conn: sa.Connection,
    name: str,
    destination: Destination,
    segment: str,
    change: Change,
    customer_ids: Sequence[int],
    now: datetime,
    batch_size: int,
) -> int:
    """Enqueue one message per customer, and record (entered) or forget (left) them in ``segment_push``."""
    stamp = now.isoformat()
    for batch in _batches(customer_ids, batch_size):
        views = customer_views(conn, batch)
        messages: list[tuple[str, int | None, dict[str, Any], str, str | None]] = []
        for customer_id in batch:
            view = views.get(customer_id)
            keys = hub_keys(view) if view is not None else {"customer_id": customer_id}
            message = {"segment": segment, "change": change, "_hub": keys}
            error: str | None = None
            payload = message
            try:
                payload = destination.prepare(KIND, message)
            except InvalidMessage as exc:
                error = str(exc)
            key = f"{name}:{KIND}:{segment}:{customer_id}:{change}:{stamp}"
            messages.append((KIND, customer_id, payload, key, error))
        enqueue_many(conn, name, messages, now)
        if change == "entered":
            rows = [{"destination": name, "segment": segment, "customer_id": c, "since": now} for c in batch]
            conn.execute(sa.insert(_push), rows)
        else:
            _forget(conn, name, segment, batch)
    return len(customer_ids)


def _forget(conn: sa.Connection, destination: str, segment: str, customer_ids: Sequence[int]) -> None:
    if customer_ids:
        conn.execute(
            sa.delete(_push).where(
                _push.c.destination == destination,
                _push.c.segment == segment,
                one_of(conn, _push.c.customer_id, customer_ids),
            )
        )
