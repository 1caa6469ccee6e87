"""The APScheduler side of ``hub run``: one scheduler per daemon, its jobs, and when each first runs.

Every job runs with ``max_instances=1`` (a run still going when the next slot comes is not doubled),
``coalesce=True`` (slots missed while busy or stopped become one run) and ``daemon.misfire_grace_time``. Each job
has its own worker thread, so a long sync never delays the dispatcher.

A job whose last recorded run is older than its latest slot runs once as soon as the daemon starts: without this,
a sync ``every: 1d`` would never run on a daemon restarted more often than daily, and a nightly cron missed
during an upgrade would wait a whole day. Syncs read their last run from ``sync_run``, the audience from its own
state; the dispatcher and housekeeping simply wait for their next slot.

On PostgreSQL, where several daemons share a database, every process has a scheduler, but only the leader's
runs the :func:`leader_only` jobs (syncs, the audience pass, housekeeping): a standby's has them paused and runs
the dispatcher alone. :func:`take_over` resumes them (with the same catch-up as at start) when a standby becomes
the leader; :func:`step_down` pauses them again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from hub.daemon.jobs import Job
from hub.daemon.triggers import last_slot, make_trigger
from hub.models import SyncRun

if TYPE_CHECKING:
    from hub.app import Hub

log = structlog.get_logger("hub.daemon")
_run: sa.Table = SyncRun.__table__  # type: ignore[attr-defined]


def make_scheduler(
    jobs: list[Job],
    run: Callable[[Job], object],
    *,
    zone: ZoneInfo,
    misfire_grace_seconds: float,
    last_runs: dict[str, datetime] | None = None,
    now: datetime | None = None,
    paused: frozenset[str] = frozenset(),
) -> BackgroundScheduler:
    """A scheduler (not started) that calls ``run(job)`` at each job's slots; ``last_runs`` enables catch-up.
    The jobs named in ``paused`` are added paused (a standby's leader-only jobs)."""
    scheduler = BackgroundScheduler(
        timezone=zone,
        executors={"default": ThreadPoolExecutor(max_workers=max(len(jobs), 1))},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": max(int(misfire_grace_seconds), 1)},
    )
    now = now or datetime.now(UTC)
    for job in jobs:
        extra: dict[str, datetime | None] = {}
        if job.id in paused:
            extra["next_run_time"] = None  # APScheduler's "added paused"
        elif last_runs is not None and _overdue(job, zone, now, last_runs):
            extra["next_run_time"] = now
        scheduler.add_job(run, make_trigger(job.schedule, zone), args=[job], id=job.id, name=job.id, **extra)
    return scheduler


def leader_only(job: Job) -> bool:
    """Jobs that only the scheduler's holder runs; the dispatcher runs in every process."""
    return job.kind != "deliver"


def take_over(
    scheduler: BackgroundScheduler,
    jobs: list[Job],
    *,
    zone: ZoneInfo,
    last_runs: dict[str, datetime],
    now: datetime | None = None,
) -> list[str]:
    """Resume the leader-only jobs of a standby's scheduler; one whose last run is older than its latest slot
    (the old leader died before it) runs at once. Returns the resumed job ids."""
    now = now or datetime.now(UTC)
    resumed: list[str] = []
    for job in jobs:
        if not leader_only(job) or scheduler.get_job(job.id) is None:
            continue
        if _overdue(job, zone, now, last_runs):
            scheduler.modify_job(job.id, next_run_time=now)
        else:
            scheduler.resume_job(job.id)
        resumed.append(job.id)
    return resumed


def step_down(scheduler: BackgroundScheduler, jobs: list[Job]) -> list[str]:
    """Pause the leader-only jobs (a run in progress finishes); returns the paused job ids."""
    paused = [job.id for job in jobs if leader_only(job) and scheduler.get_job(job.id) is not None]
    for job_id in paused:
        scheduler.pause_job(job_id)
    return paused


def _overdue(job: Job, zone: ZoneInfo, now: datetime, last_runs: dict[str, datetime]) -> bool:
    if job.kind not in ("sync", "audience"):
        return False
    last = last_runs.get(job.id)
    return last is None or last < last_slot(job.schedule, zone, now)


def last_runs(hub: Hub) -> dict[str, datetime]:
    """When each sync job and the audience job last started, as far as the database knows."""
    from hub.audience.pipeline import read_state

    found: dict[str, datetime] = {}
    with hub.engine.connect() as conn:
        rows = conn.execute(sa.select(_run.c.connector, sa.func.max(_run.c.started_at)).group_by(_run.c.connector))
        for connector, started in rows:
            if started is not None:
                found[f"sync:{connector}"] = started
        compute = read_state(conn, "compute:last")
    if isinstance(compute, str):
        found["audience"] = datetime.fromisoformat(compute)
    return found


class _ToStructlog(logging.Handler):
    """APScheduler logs through the standard library; its warnings (a missed run, a run skipped because the
    previous one is still going) become structured lines like the rest of the daemon's."""

    def emit(self, record: logging.LogRecord) -> None:
        method = getattr(log, record.levelname.lower(), log.warning)
        method(record.getMessage(), logger=record.name)


def route_scheduler_logs() -> None:
    """Send APScheduler's warnings and errors to structlog, and drop its per-run info lines (``hub run`` logs its
    own). Process-wide by nature: called by the ``hub run`` command, which owns the process."""
    logger = logging.getLogger("apscheduler")
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    if not any(isinstance(h, _ToStructlog) for h in logger.handlers):
        logger.addHandler(_ToStructlog())
