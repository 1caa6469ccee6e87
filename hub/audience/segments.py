"""Segment membership: evaluate each segment's ``when`` in SQL and diff it with the stored membership.

One evaluation per segment fills a temporary table with the members; four set-based statements then write the
changes (``segment_change`` rows for who entered and left, then the membership itself) and ``segment_state``
keeps the figures. Nothing changes for a customer whose membership did not change, so re-evaluating unchanged
data writes no changes and a ``segment_entered`` trigger fires once per entry. Segments run in dependency order:
one using ``in_segment(x)`` sees ``x`` as evaluated in the same pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hub.audience.catalog import builtin_names
from hub.audience.expressions import ATTRIBUTES_TABLE, CUSTOMER, customer_select, parse, virtual_attributes
from hub.audience.types import AttributeSpec
from hub.db import UTCDateTime
from hub.models import SegmentChange, SegmentMembership, SegmentState

if TYPE_CHECKING:
    from hub.config._audience import SegmentConfig

__all__ = [
    "SegmentCycleError",
    "SegmentInfo",
    "SegmentResult",
    "evaluate_segments",
    "evaluation_order",
    "preview",
    "prune_segments",
    "segment_sizes",
]

_membership = SegmentMembership.__table__  # type: ignore[attr-defined]
_change = SegmentChange.__table__  # type: ignore[attr-defined]
_state = SegmentState.__table__  # type: ignore[attr-defined]
#: This evaluation's members of one segment; temporary, so it lives only in the evaluating connection.
_members = sa.Table(
    "hub_segment_members",
    sa.MetaData(),
    sa.Column("customer_id", sa.Integer, primary_key=True),
    prefixes=["TEMPORARY"],
)


class SegmentCycleError(ValueError):
    """Segments refer to each other through ``in_segment`` in a circle, so none can be evaluated first."""


@dataclass(frozen=True, slots=True)
class SegmentResult:
    members: int
    entered: int
    left: int


@dataclass(frozen=True, slots=True)
class SegmentInfo:
    """A segment's last evaluation, for ``hub segments``."""

    name: str
    members: int
    entered: int
    left: int
    evaluated_at: datetime | None


def evaluation_order(segments: Mapping[str, SegmentConfig]) -> list[str]:
    """The segments with every ``in_segment`` dependency first; a cycle raises :class:`SegmentCycleError`."""
    depends = {
        name: parse(segment.when, context="segment").segments & set(segments) for name, segment in segments.items()
    }
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(name) :], name])
            raise SegmentCycleError(f"segments refer to each other in a circle through in_segment(): {cycle}")
        visiting.append(name)
        for dependency in sorted(depends[name]):
            visit(dependency)
        visiting.pop()
        order.append(name)

    for name in segments:
        visit(name)
    return order


def evaluate_segments(
    conn: sa.Connection,
    segments: Mapping[str, SegmentConfig],
    now: datetime,
    *,
    names: Collection[str] | None = None,
    plugin_attributes: Mapping[str, AttributeSpec] = {},
) -> dict[str, SegmentResult]:
    """Re-evaluate ``segments`` (only ``names``, if given) at ``now``; entered and left become ``segment_change``.

    Runs in the caller's transaction. ``names`` are evaluated in dependency order, but segments they depend on
    are not re-evaluated with them (their stored membership is used).
    """
    wanted = set(segments) if names is None else set(names)
    unknown = wanted - set(segments)
    if unknown:
        raise KeyError(f"no such segment: {', '.join(sorted(unknown))}")
    attributes = builtin_names() | frozenset(plugin_attributes)
    # A table left by an evaluation that failed on this connection is dropped first.
    conn.execute(sa.schema.DropTable(_members, if_exists=True))
    conn.execute(sa.schema.CreateTable(_members))
    results: dict[str, SegmentResult] = {}
    for name in evaluation_order(segments):
        if name in wanted:
            expression = parse(segments[name].when, context="segment", attributes=attributes, segments=segments)
            query = customer_select(expression, now, plugin_attributes=plugin_attributes)
            results[name] = _evaluate(conn, name, query, _definition_hash(segments[name].when), now)
    conn.execute(sa.schema.DropTable(_members))
    return results


def _evaluate(conn: sa.Connection, name: str, query: sa.Select[Any], definition: str, now: datetime) -> SegmentResult:
    conn.execute(_members.delete())
    members = _written(conn, _members.insert().from_select(["customer_id"], query))
    segment = sa.bindparam("segment", name, type_=sa.String())
    at = sa.bindparam("at", now, type_=UTCDateTime())
    member = _members.c.customer_id
    stored = _membership.c.customer_id
    is_stored = sa.exists().where(_membership.c.segment == segment, stored == member)
    is_member = sa.exists().where(member == stored)
    columns = ["segment", "customer_id", "change", "initial", "at"]
    # A segment's first evaluation records who was already in: its entries are `initial` and fire no trigger.
    first = conn.execute(sa.select(_state.c.segment).where(_state.c.segment == name)).first() is None
    initial = sa.literal(first, sa.Boolean())
    entered = _written(
        conn,
        _change.insert().from_select(
            columns,
            sa.select(segment, member, sa.literal("entered"), initial, at).where(~is_stored).order_by(member),
        ),
    )
    left = _written(
        conn,
        _change.insert().from_select(
            columns,
            sa.select(segment, stored, sa.literal("left"), sa.literal(False, sa.Boolean()), at)
            .where(_membership.c.segment == segment, ~is_member)
            .order_by(stored),
        ),
    )
    if left:
        conn.execute(_membership.delete().where(_membership.c.segment == segment, ~is_member))
    if entered:
        conn.execute(
            _membership.insert().from_select(
                ["segment", "customer_id", "since"], sa.select(segment, member, at).where(~is_stored)
            )
        )
    figures = {"definition_hash": definition, "members": members, "entered": entered, "left": left}
    updated = conn.execute(_state.update().where(_state.c.segment == name).values(**figures, evaluated_at=now)).rowcount
    if not updated:
        conn.execute(_state.insert().values(segment=name, **figures, evaluated_at=now))
    return SegmentResult(members=members, entered=entered, left=left)


def _written(conn: sa.Connection, statement: sa.Executable) -> int:
    """Rows an INSERT ... SELECT wrote (SQLAlchemy keeps an INSERT's row count only when asked to)."""
    return int(conn.execute(statement.execution_options(preserve_rowcount=True)).rowcount)


def _definition_hash(when: str) -> str:
    return hashlib.sha256(" ".join(when.split()).encode()).hexdigest()[:16]


def prune_segments(conn: sa.Connection, keep: Collection[str], now: datetime) -> dict[str, int]:
    """Empty the segments no longer configured: each member gets a 'left' change. Returns segment -> members left."""
    keep = list(keep)
    gone = _membership.c.segment.not_in(keep)
    counts = dict(
        conn.execute(
            sa.select(_membership.c.segment, sa.func.count()).where(gone).group_by(_membership.c.segment)
        ).all()
    )
    if counts:
        conn.execute(
            _change.insert().from_select(
                ["segment", "customer_id", "change", "initial", "at"],
                sa.select(
                    _membership.c.segment,
                    _membership.c.customer_id,
                    sa.literal("left"),
                    sa.literal(False, sa.Boolean()),
                    sa.bindparam("at", now, type_=UTCDateTime()),
                )
                .where(gone)
                .order_by(_membership.c.segment, _membership.c.customer_id),
            )
        )
        conn.execute(_membership.delete().where(gone))
    conn.execute(_state.delete().where(_state.c.segment.not_in(keep)))
    return {str(segment): int(n) for segment, n in counts.items()}


def segment_sizes(conn: sa.Connection) -> list[SegmentInfo]:
    """Every evaluated segment: its members and what its last evaluation changed."""
    rows = conn.execute(
        sa.select(_state.c.segment, _state.c.members, _state.c.entered, _state.c.left, _state.c.evaluated_at).order_by(
            _state.c.segment
        )
    )
    return [SegmentInfo(*row) for row in rows]


def preview(conn: sa.Connection, name: str, *, limit: int = 20, now: datetime) -> list[dict[str, Any]]:
    """Sample members of ``name`` (latest entries first) with their key attributes."""
    customer, attributes = CUSTOMER.c, ATTRIBUTES_TABLE.c
    query = (
        sa.select(
            customer.id.label("customer_id"),
            _membership.c.since,
            customer.first_name,
            customer.last_name,
            customer.email,
            attributes.tier,
            attributes.rfm_segment,
            attributes.orders_lifetime,
            attributes.monetary_lifetime,
            attributes.last_order_at,
        )
        .select_from(
            _membership.join(CUSTOMER, customer.id == _membership.c.customer_id).outerjoin(
                ATTRIBUTES_TABLE, attributes.customer_id == customer.id
            )
        )
        .where(_membership.c.segment == name)
        .order_by(_membership.c.since.desc(), customer.id)
        .limit(limit)
    )
    rows = []
    for row in conn.execute(query).mappings():
        sample = dict(row)
        sample["days_since_last_order"] = virtual_attributes(row, now)["days_since_last_order"]
        rows.append(sample)
    return rows
