"""One audience pass: compute -> segments -> triggers -> contact pressure -> outbox, at one ``now``.

Each step commits on its own, and each is idempotent on its own: attributes are recomputed, segment diffs are
against stored membership, candidates are unique by key, and a candidate is decided in the same transaction as
the outbox rows its ``send`` writes. A crash between steps loses nothing; the next pass picks up where it stopped.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from hub.db import bulk_upsert
from hub.models import AudienceState
from hub.watermarks import look_back

if TYPE_CHECKING:
    from hub.app import Hub
    from hub.connectors import Destination

#: How far before the last sweep a sweep recomputes (:mod:`hub.watermarks`: every compute looks back
#: ``QUICK_OVERLAP``, a sweep at most every ``SWEEP_EVERY`` this far, for long sync transactions).
COMPUTE_OVERLAP = timedelta(minutes=5)
#: Windowed attributes (orders in the last 365 days, tiers) drift as days pass: recompute everyone this often.
FULL_COMPUTE_EVERY = timedelta(days=1)
DECIDE_BATCH = 2000

_state: sa.Table = AudienceState.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class AudienceSummary:
    """What one pass did: attributes computed, segment changes, candidates fired, decisions, pushes."""

    now: datetime
    compute: Any = None
    segments: dict[str, Any] = field(default_factory=dict)
    fired: dict[str, int] = field(default_factory=dict)
    decisions: Counter[str] = field(default_factory=Counter)
    rules: Counter[tuple[str, str]] = field(default_factory=Counter)
    pushed: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def read_state(conn: sa.Connection, name: str) -> Any:
    return conn.execute(sa.select(_state.c.value).where(_state.c.name == name)).scalar()


def write_state(conn: sa.Connection, name: str, value: Any, now: datetime) -> None:
    bulk_upsert(conn, _state, [(name, value, now)], ("name", "value", "updated_at"), conflict=("name",))


def _destinations(hub: Hub) -> dict[str, Destination]:
    return {name: hub.connector(name) for name in hub.destinations()}  # type: ignore[misc]


def compute(hub: Hub, *, now: datetime | None = None, full: bool | None = None) -> Any:
    """Recompute attributes: in full when asked, when never done, or when the last full compute is a day old;
    otherwise for the customers touched since the last compute (see :data:`COMPUTE_OVERLAP`). A full compute
    also rebuilds the follow-up rules of the built-in recommender (``product_followup``), which move slowly, in
    a transaction of its own."""
    from hub.audience.attributes import compute_attributes, touched_customers
    from hub.recommend.builtin import settings_of
    from hub.recommend.followups import compute_followups

    now = now or hub.clock.now()
    with hub.engine.begin() as conn:
        last = _moment(read_state(conn, "compute:last"))
        last_full = _moment(read_state(conn, "compute:last_full"))
        last_sweep = _moment(read_state(conn, "compute:last_sweep")) or last_full
        if full is None:
            full = last is None or last_full is None or now - last_full >= FULL_COMPUTE_EVERY
        since, sweep = look_back(now, last, last_sweep, COMPUTE_OVERLAP)
        ids = None if full or since is None else touched_customers(conn, since=since)
        summary = compute_attributes(
            conn, hub.config.attributes, now, customer_ids=ids, plugin_attributes=hub.attribute_specs
        )
        write_state(conn, "compute:last", now.isoformat(), now)
        if sweep or full:
            write_state(conn, "compute:last_sweep", now.isoformat(), now)
        if full:
            write_state(conn, "compute:last_full", now.isoformat(), now)
    if full:
        with hub.engine.begin() as conn:
            compute_followups(conn, settings_of(hub.config).followups, now)
    return summary


def run_audience(hub: Hub, *, now: datetime | None = None, full: bool | None = None) -> AudienceSummary:
    """The whole pass at ``now`` (default: ``hub.clock``)."""
    from hub.audience.policy import decide, due_candidates
    from hub.audience.push import push_segments
    from hub.audience.segments import evaluate_segments, prune_segments
    from hub.audience.triggers import fire_triggers, prepare_due
    from hub.recommend.connectors import configured_recommenders

    now = now or hub.clock.now()
    config = hub.config
    summary = AudienceSummary(now=now)
    specs = hub.attribute_specs

    started = time.perf_counter()
    summary.compute = compute(hub, now=now, full=full)
    summary.seconds["compute"] = time.perf_counter() - started

    started = time.perf_counter()
    with hub.engine.begin() as conn:
        prune_segments(conn, keep=set(config.segments), now=now)
        summary.segments = evaluate_segments(conn, config.segments, now, plugin_attributes=specs)
    summary.seconds["segments"] = time.perf_counter() - started

    started = time.perf_counter()
    with hub.engine.begin() as conn:
        summary.fired = fire_triggers(conn, config, now, plugin_attributes=specs)
    summary.seconds["triggers"] = time.perf_counter() - started

    started = time.perf_counter()
    destinations = _destinations(hub)
    recommenders = configured_recommenders(hub)
    after = 0
    while True:
        with hub.engine.begin() as conn:
            rows = due_candidates(conn, now, limit=DECIDE_BATCH, after_customer=after)
            if not rows:
                break
            prepared = prepare_due(conn, config, rows, now, plugin_attributes=specs, recommenders=recommenders)
            decided = decide(conn, config, prepared, now, destinations=destinations)
        summary.decisions.update(decided.by_decision)
        summary.rules.update(decided.by_rule)
        after = rows[-1].customer_id
    summary.seconds["decide"] = time.perf_counter() - started

    started = time.perf_counter()
    with hub.engine.begin() as conn:
        summary.pushed = push_segments(conn, config, now, destinations=destinations)
    summary.seconds["push"] = time.perf_counter() - started
    return summary


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
