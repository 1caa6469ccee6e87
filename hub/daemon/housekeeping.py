"""Housekeeping: prune history older than ``daemon.retention``, in small transactions.

What goes, and what is kept whatever its age:

- ``sync_run``: finished runs; the latest run of each connector and stream stays (``hub status`` shows it).
- ``contact_log``: decisions older than retention, but never inside the longest contact-pressure window, which
  caps and quarantines count; so a short retention cannot let a customer be contacted again too soon.
- ``segment_change``: changes older than retention, but never inside the longest trigger ``max_age``.
- ``message``: ``sent`` and ``skipped`` rows (terminal, not errors). Pending, in-flight and dead rows stay: they
  are work, or an operator's business. Pruned keys cannot come back: upserts are versioned, orders and pushes
  follow watermarks, and trigger candidates (never pruned) deduplicate triggers.
- ``reject`` and ``outbox_audit`` stay: bad input is never silently dropped, and the audit is the audit.

Rows go in chunks of :data:`CHUNK`, each chunk its own transaction, so a nightly prune of a large SQLite file
never holds the write lock long enough to stall a sync.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from hub.models import ContactLog, Message, SegmentChange, SyncRun

if TYPE_CHECKING:
    from hub.app import Hub
    from hub.config import HubConfig

CHUNK = 5000

_run: sa.Table = SyncRun.__table__  # type: ignore[attr-defined]
_log: sa.Table = ContactLog.__table__  # type: ignore[attr-defined]
_change: sa.Table = SegmentChange.__table__  # type: ignore[attr-defined]
_message: sa.Table = Message.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class PruneSummary:
    """Rows deleted per table, and the cut-off used for each."""

    deleted: dict[str, int] = field(default_factory=dict)
    cutoffs: dict[str, datetime] = field(default_factory=dict)


def cutoffs(config: HubConfig, now: datetime) -> dict[str, datetime]:
    """The moment before which each table's prunable rows go: retention, stretched where a rule looks back."""
    retention = config.daemon.retention
    pressure = config.contact_pressure
    windows = [cap.per for cap in pressure.caps] + [q.for_ for q in pressure.quarantines]
    max_ages = [trigger.max_age for trigger in config.triggers.values()]
    return {
        "sync_run": now - retention,
        "contact_log": now - max([retention, *windows]),
        "segment_change": now - max([retention, *max_ages]),
        "message": now - retention,
    }


def prune(hub: Hub, *, now: datetime | None = None) -> PruneSummary:
    """Delete what :func:`cutoffs` allows; safe to run at any time, next to any other job."""
    now = now or hub.clock.now()
    summary = PruneSummary(cutoffs=cutoffs(hub.config, now))
    latest = sa.select(sa.func.max(_run.c.id)).group_by(_run.c.connector, _run.c.stream)
    summary.deleted["sync_run"] = _delete_in_chunks(
        hub.engine,
        _run,
        _run.c.status != "running",
        _run.c.started_at < summary.cutoffs["sync_run"],
        _run.c.id.not_in(latest.scalar_subquery()),
    )
    summary.deleted["contact_log"] = _delete_in_chunks(hub.engine, _log, _log.c.at < summary.cutoffs["contact_log"])
    summary.deleted["segment_change"] = _delete_in_chunks(
        hub.engine, _change, _change.c.at < summary.cutoffs["segment_change"]
    )
    summary.deleted["message"] = _delete_in_chunks(
        hub.engine,
        _message,
        _message.c.status.in_(("sent", "skipped")),
        sa.func.coalesce(_message.c.sent_at, _message.c.created_at) < summary.cutoffs["message"],
    )
    return summary


def _delete_in_chunks(engine: sa.Engine, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    deleted = 0
    while True:
        with engine.begin() as conn:
            ids = conn.execute(sa.select(table.c.id).where(*where).order_by(table.c.id).limit(CHUNK)).scalars().all()
            if not ids:
                return deleted
            conn.execute(table.delete().where(table.c.id.in_(ids)))
        deleted += len(ids)
