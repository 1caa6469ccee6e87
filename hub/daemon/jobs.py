"""The daemon's jobs, built from the configuration, and the guard every run of a job goes through.

Job ids are the names a reader finds in hub.yaml: ``sync:<connector>`` for a connector with a ``schedule:``, and
``audience``, ``deliver`` and ``housekeeping`` from the ``daemon:`` block. Each job calls the same public function
as its command (``hub sync``, ``hub audience``, ``hub deliver``), so the daemon adds scheduling and nothing else.

:func:`run_job` is the guard: a job that raises or reports a failure is logged with its error, counted, and runs
again at its next slot; nothing a job does can stop the scheduler.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import structlog

from hub.config import Schedule

if TYPE_CHECKING:
    from hub.app import Hub

log = structlog.get_logger("hub.daemon")

JobKind = Literal["sync", "audience", "deliver", "housekeeping"]
#: ``hub run --once`` runs the jobs in this order: data in, then what is computed from it, then out, then tidy.
ORDER: tuple[JobKind, ...] = ("sync", "audience", "deliver", "housekeeping")


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What one run of a job did: ``ok``, the error if not, figures for the log line, and the summary itself."""

    ok: bool
    error: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    summary: Any = None


@dataclass(frozen=True, slots=True)
class Job:
    """One scheduled job. ``run`` does one whole run and reports it; it may raise."""

    id: str
    kind: JobKind
    schedule: Schedule
    run: Callable[[], JobOutcome]


@dataclass(slots=True)
class JobState:
    """What the daemon knows about a job: read by ``/readyz`` and ``/metrics``."""

    id: str
    kind: JobKind
    running_since: datetime | None = None
    last_started: datetime | None = None
    last_finished: datetime | None = None
    last_success: datetime | None = None
    last_duration: float | None = None
    last_error: str | None = None
    succeeded: int = 0
    failed: int = 0


class JobBoard:
    """The state of every job, shared by the worker threads and the HTTP endpoints."""

    def __init__(self, jobs: list[Job]) -> None:
        self._lock = threading.Lock()
        self._states = {job.id: JobState(job.id, job.kind) for job in jobs}

    def started(self, job_id: str, at: datetime) -> None:
        with self._lock:
            state = self._states[job_id]
            state.running_since = state.last_started = at

    def finished(self, job_id: str, at: datetime, seconds: float, outcome: JobOutcome) -> None:
        with self._lock:
            state = self._states[job_id]
            state.running_since = None
            state.last_finished = at
            state.last_duration = seconds
            state.last_error = outcome.error
            if outcome.ok:
                state.last_success = at
                state.succeeded += 1
            else:
                state.failed += 1

    def snapshot(self) -> list[JobState]:
        """A copy of every state, safe to read while jobs run."""
        with self._lock:
            return [replace(state) for state in self._states.values()]

    def running(self) -> list[JobState]:
        return [state for state in self.snapshot() if state.running_since is not None]


def build_jobs(hub: Hub) -> list[Job]:
    """Every job the configuration asks for, in :data:`ORDER` (syncs in configuration order)."""
    daemon = hub.config.daemon
    # One sync at a time: SQLite has one writer, and a sync tunes the process-wide GC for its duration. A sync
    # that finds another running waits for it (it has started on time, so it never counts as a misfire).
    one_sync = threading.Lock()
    jobs = [
        Job(f"sync:{name}", "sync", schedule, _sync(hub, name, one_sync))
        for name in hub.sources()
        if (schedule := hub.config.connectors[name].schedule) is not None
    ]
    if daemon.audience.enabled:
        jobs.append(Job("audience", "audience", daemon.audience, _audience(hub)))
    if daemon.deliver.enabled:
        jobs.append(Job("deliver", "deliver", daemon.deliver, _deliver(hub)))
    if daemon.housekeeping.enabled:
        jobs.append(Job("housekeeping", "housekeeping", daemon.housekeeping, _housekeeping(hub)))
    return jobs


def run_job(job: Job, board: JobBoard, *, observe: Callable[[Job, JobOutcome], None] | None = None) -> JobOutcome:
    """Run ``job`` once under the guard: never raises; logs, records on ``board`` and hands the outcome on."""
    with structlog.contextvars.bound_contextvars(job=job.id):
        started_at = datetime.now(UTC)
        board.started(job.id, started_at)
        log.info("job started")
        started = time.perf_counter()
        try:
            outcome = job.run()
        except Exception as exc:
            outcome = JobOutcome(ok=False, error=f"{type(exc).__name__}: {exc}")
            log.error("job failed", error=outcome.error, exc_info=True)
        else:
            if not outcome.ok:
                log.error("job failed", error=outcome.error, **outcome.figures)
        seconds = time.perf_counter() - started
        board.finished(job.id, datetime.now(UTC), seconds, outcome)
        if outcome.ok:
            log.info("job finished", seconds=round(seconds, 3), **outcome.figures)
        if observe is not None:
            try:
                observe(job, outcome)
            except Exception:  # metrics must never turn a finished job into a crash
                log.exception("recording the job's metrics failed")
        return outcome


def in_order(jobs: list[Job]) -> Iterator[Job]:
    """The jobs in :data:`ORDER`, each kind in configuration order: what ``hub run --once`` runs."""
    for kind in ORDER:
        yield from (job for job in jobs if job.kind == kind)


def _sync(hub: Hub, connector: str, one_sync: threading.Lock) -> Callable[[], JobOutcome]:
    def run() -> JobOutcome:
        from hub.engine.run import SyncEngine

        with one_sync:
            summary = SyncEngine(hub).sync([connector])
        failed = [f"{s.stream}: {s.error}" for s in summary.streams if s.status != "succeeded"]
        figures = {
            "read": summary.records_read,
            "loaded": sum(s.loaded for s in summary.streams),
            "rejected": sum(s.rejected for s in summary.streams),
        }
        return JobOutcome(ok=summary.ok, error="; ".join(failed) or None, figures=figures, summary=summary)

    return run


def _audience(hub: Hub) -> Callable[[], JobOutcome]:
    def run() -> JobOutcome:
        from hub.audience.pipeline import run_audience

        summary = run_audience(hub)
        figures = {
            "fired": sum(summary.fired.values()),
            "decisions": dict(summary.decisions),
            "computed": summary.compute.customers,
        }
        return JobOutcome(ok=True, figures=figures, summary=summary)

    return run


#: What the real-time pass sends: a contact and the trigger waiting for it. Receipts and segment changes go with
#: the scheduled pass (minutes later), so each real-time pass is short and the next webhook's trigger goes sooner.
REALTIME_KINDS = ("contact_delete", "contact_upsert", "trigger")


def realtime_jobs(jobs: list[Job], hub: Hub) -> list[Job]:
    """The audience job and a deliver job limited to :data:`REALTIME_KINDS`, under the same ids (so they share
    the scheduled runs' locks and never run beside them), for :class:`hub.daemon.webhooks.Realtime`."""
    picked = []
    for kind in ("audience", "deliver"):
        for job in jobs:
            if job.kind == kind:
                picked.append(replace(job, run=_deliver(hub, REALTIME_KINDS)) if kind == "deliver" else job)
    return picked


def _deliver(hub: Hub, kinds: tuple[str, ...] | None = None) -> Callable[[], JobOutcome]:
    def run() -> JobOutcome:
        from hub.delivery.dispatcher import deliver

        summary = deliver(hub, kinds=kinds)
        problems = [
            f"{name}: {s.error or f'paused ({s.paused_reason})'}"
            for name, s in summary.destinations.items()
            if s.error or s.paused
        ]
        figures = {
            "sent": sum(s.total_sent for s in summary.destinations.values()),
            "dead": sum(s.dead + s.invalid for s in summary.destinations.values()),
            "retries": sum(s.retries for s in summary.destinations.values()),
        }
        return JobOutcome(ok=summary.ok, error="; ".join(problems) or None, figures=figures, summary=summary)

    return run


def _housekeeping(hub: Hub) -> Callable[[], JobOutcome]:
    def run() -> JobOutcome:
        from hub.daemon.housekeeping import prune

        summary = prune(hub)
        return JobOutcome(ok=True, figures={"deleted": summary.deleted}, summary=summary)

    return run
