"""``/metrics``: the daemon's figures in Prometheus' text format, from a registry of its own (no module globals).

Two sources, chosen by what each figure means:

- **Counters** count what this process did, from the summaries its jobs return: records read, loaded and
  rejected, and tombstones that deleted something or were ignored, per connector and stream; messages sent,
  dead-lettered and retried per destination and kind; job runs by outcome. They start at zero with the process,
  which Prometheus' ``rate()`` and ``increase()`` expect.
- **Gauges read from the database** at each scrape show the state whoever wrote it (a ``hub sync`` by hand too):
  the outbox depth by destination and status, the oldest pending message, paused destinations, and the last run
  of each connector and stream from ``sync_run``. When the database does not answer, these are left out and
  ``hub_database_up`` is 0; the scrape itself still succeeds.

Per job: ``hub_job_last_success_timestamp_seconds``, ``hub_job_last_duration_seconds`` and ``hub_job_running``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from hub.models import Message, SyncRun

if TYPE_CHECKING:
    from hub.daemon.jobs import Job, JobBoard, JobOutcome
    from hub.daemon.webhooks import Ingested

log = structlog.get_logger("hub.daemon")

_run: sa.Table = SyncRun.__table__  # type: ignore[attr-defined]
_message: sa.Table = Message.__table__  # type: ignore[attr-defined]
#: Statuses that are still work or need an operator; sent and skipped rows are history, counted by the counters.
DEPTH_STATUSES = ("pending", "in_flight", "dead")


class DaemonMetrics:
    """The registry behind ``/metrics``; :meth:`observe` is handed every finished job's outcome."""

    def __init__(self, engine: sa.Engine, board: JobBoard) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.records = Counter(
            "hub_sync_records",
            "Records handled by this process's sync jobs and webhooks, by connector, stream and outcome"
            " (read, loaded, rejected; deleted, deletion_ignored: tombstones, counted in read, not in loaded).",
            ["connector", "stream", "outcome"],
            registry=self.registry,
        )
        self.messages = Counter(
            "hub_delivery_messages",
            "Outbox messages handled by this process's delivery passes, by destination, kind and outcome"
            " (sent; dead: dead-lettered or invalid).",
            ["destination", "kind", "outcome"],
            registry=self.registry,
        )
        self.retries = Counter(
            "hub_delivery_retries", "Retried requests per destination.", ["destination"], registry=self.registry
        )
        self.failures = Counter(
            "hub_delivery_failures",
            "Delivery passes in which a destination failed or was paused, per destination.",
            ["destination"],
            registry=self.registry,
        )
        self.runs = Counter(
            "hub_job_runs",
            "Job runs by job and outcome (succeeded, failed).",
            ["job", "outcome"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "hub_webhook_requests",
            "Webhook requests answered, by connector ('(unknown)' for a name that is none) and HTTP status.",
            ["connector", "status"],
            registry=self.registry,
        )
        self.registry.register(_StateCollector(engine, board))
        ProcessCollector(registry=self.registry)

    def observe(self, job: Job, outcome: JobOutcome) -> None:
        self.runs.labels(job.id, "succeeded" if outcome.ok else "failed").inc()
        summary = outcome.summary
        if summary is None:
            return
        if job.kind == "sync":
            for s in summary.streams:
                self.records.labels(s.connector, s.stream, "read").inc(s.read)
                self.records.labels(s.connector, s.stream, "loaded").inc(s.loaded)
                self.records.labels(s.connector, s.stream, "rejected").inc(s.rejected)
                self.records.labels(s.connector, s.stream, "deleted").inc(s.deleted)
                self.records.labels(s.connector, s.stream, "deletion_ignored").inc(s.deletions_ignored)
        elif job.kind == "deliver":
            for name, s in summary.destinations.items():
                for kind, n in s.sent.items():
                    self.messages.labels(name, kind, "sent").inc(n)
                if s.dead or s.invalid:
                    self.messages.labels(name, "any", "dead").inc(s.dead + s.invalid)
                self.retries.labels(name).inc(s.retries)
                if s.error or s.paused:
                    self.failures.labels(name).inc()

    def observe_webhook(self, connector: str | None, status: int, result: Ingested | None = None) -> None:
        """One answered webhook: its status, and the records it carried (counted as a sync's are)."""
        self.webhooks.labels(connector or "(unknown)", str(status)).inc()
        if result is not None and connector is not None:
            self.records.labels(connector, result.stream, "read").inc(result.read)
            self.records.labels(connector, result.stream, "loaded").inc(result.loaded)
            self.records.labels(connector, result.stream, "rejected").inc(result.rejected)
            self.records.labels(connector, result.stream, "deleted").inc(result.deleted)
            self.records.labels(connector, result.stream, "deletion_ignored").inc(result.deletions_ignored)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Gauges computed at scrape time: jobs from the board, the rest from the database."""

    def __init__(self, engine: sa.Engine, board: JobBoard) -> None:
        self.engine = engine
        self.board = board

    def describe(self) -> list[Metric]:
        return []  # computed per scrape: nothing to check for name clashes up front

    def collect(self) -> Iterator[Metric]:
        yield from self._jobs()
        up = GaugeMetricFamily("hub_database_up", "1 if the database answered this scrape's queries, else 0.")
        try:
            with self.engine.connect() as conn:
                families = [*_outbox(conn), *_last_runs(conn)]
        except Exception as exc:
            log.warning("metrics: the database did not answer", error=f"{type(exc).__name__}: {exc}")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _jobs(self) -> Iterator[Metric]:
        success = GaugeMetricFamily(
            "hub_job_last_success_timestamp_seconds",
            "When the job last finished successfully (Unix time).",
            labels=["job"],
        )
        duration = GaugeMetricFamily(
            "hub_job_last_duration_seconds", "How long the job's last run took.", labels=["job"]
        )
        running = GaugeMetricFamily(
            "hub_job_running_seconds", "How long the job's current run has been going; 0 when idle.", labels=["job"]
        )
        now = datetime.now(UTC)
        for state in self.board.snapshot():
            if state.last_success is not None:
                success.add_metric([state.id], state.last_success.timestamp())
            if state.last_duration is not None:
                duration.add_metric([state.id], state.last_duration)
            since = state.running_since
            running.add_metric([state.id], (now - since).total_seconds() if since else 0.0)
        yield from (success, duration, running)


def _outbox(conn: sa.Connection) -> list[Metric]:
    from hub.delivery import outbox

    depth = GaugeMetricFamily(
        "hub_outbox_messages",
        "Outbox messages still to deliver (pending, in_flight) or parked (dead), by destination and status.",
        labels=["destination", "status"],
    )
    m = _message
    rows = conn.execute(
        sa.select(m.c.destination, m.c.status, sa.func.count())
        .where(m.c.status.in_(DEPTH_STATUSES))
        .group_by(m.c.destination, m.c.status)
    )
    for destination, status, n in rows:
        depth.add_metric([destination, status], int(n))
    oldest = GaugeMetricFamily(
        "hub_outbox_oldest_pending_age_seconds",
        "Age of the oldest pending message per destination.",
        labels=["destination"],
    )
    now = datetime.now(UTC)
    for destination, created in outbox.oldest_pending(conn).items():
        oldest.add_metric([destination], max((now - created).total_seconds(), 0.0))
    paused = GaugeMetricFamily(
        "hub_destination_paused",
        "1 while a destination is paused (e.g. its credentials were refused).",
        labels=["destination"],
    )
    for destination in outbox.paused_destinations(conn):
        paused.add_metric([destination], 1)
    return [depth, oldest, paused]


def _last_runs(conn: sa.Connection) -> list[Metric]:
    """The latest finished run of each connector and stream, from ``sync_run``."""
    records = GaugeMetricFamily(
        "hub_sync_last_run_records",
        "Records of the latest finished sync run, by connector, stream and outcome"
        " (read, loaded, rejected, deleted, deletion_ignored).",
        labels=["connector", "stream", "outcome"],
    )
    finished = GaugeMetricFamily(
        "hub_sync_last_run_finished_timestamp_seconds",
        "When the latest finished sync run of the stream ended (Unix time).",
        labels=["connector", "stream", "status"],
    )
    r = _run
    latest = (
        sa.select(sa.func.max(r.c.id)).where(r.c.status != "running").group_by(r.c.connector, r.c.stream)
    ).scalar_subquery()
    rows: Any = conn.execute(
        sa.select(
            r.c.connector,
            r.c.stream,
            r.c.status,
            r.c.finished_at,
            r.c.records_read,
            r.c.records_loaded,
            r.c.records_rejected,
            r.c.records_deleted,
            r.c.deletions_ignored,
        ).where(r.c.id.in_(latest))
    )
    for row in rows:
        labels = [row.connector, row.stream]
        records.add_metric([*labels, "read"], row.records_read)
        records.add_metric([*labels, "loaded"], row.records_loaded)
        records.add_metric([*labels, "rejected"], row.records_rejected)
        records.add_metric([*labels, "deleted"], row.records_deleted)
        records.add_metric([*labels, "deletion_ignored"], row.deletions_ignored)
        if row.finished_at is not None:
            finished.add_metric([*labels, row.status], row.finished_at.timestamp())
    return [records, finished]
