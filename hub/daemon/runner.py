"""The daemon itself: its jobs on a scheduler, its HTTP endpoint, and a stop that lets the running job finish.

:meth:`Daemon.serve` is ``hub run``; :meth:`Daemon.run_once` is ``hub run --once``. Both stop on
:meth:`Daemon.stop` (the command wires SIGTERM and SIGINT to it): no new run starts, and the running ones get
``daemon.shutdown_timeout`` to finish. A job still running after that is cut off when the process exits, which
is safe by design: a sync resumes from its last committed batch, and the dispatcher recovers its in-flight rows.

On PostgreSQL several daemons share the database (``leadership``, see :class:`~hub.daemon.lock.SchedulerLeadership`):
the leader's scheduler runs every job, a standby's only the dispatcher, and a standby that gets the lock resumes
the rest. A leader-only job (a sync, the audience pass, housekeeping) also runs under its own advisory lock, so
a real-time audience pass woken by a webhook on a standby never overlaps the leader's.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from datetime import UTC
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog
from apscheduler.schedulers.base import STATE_RUNNING

from hub.daemon.http import HttpServer, Readiness, Webhooks, make_app
from hub.daemon.jobs import Job, JobBoard, build_jobs, in_order, realtime_jobs, run_job
from hub.daemon.lock import SchedulerLeadership, cluster_job_lock
from hub.daemon.metrics import DaemonMetrics
from hub.daemon.scheduler import last_runs, leader_only, make_scheduler, step_down, take_over
from hub.daemon.webhooks import Realtime, WebhookIntake

if TYPE_CHECKING:
    from hub.app import Hub

log = structlog.get_logger("hub.daemon")


class Daemon:
    """One configured hub's jobs, board, metrics and stop signal. Build one per process run."""

    def __init__(
        self,
        hub: Hub,
        *,
        http_port: int | None = None,
        jobs: list[Job] | None = None,
        leadership: SchedulerLeadership | None = None,
    ) -> None:
        self.hub = hub
        #: PostgreSQL: who holds the scheduler (None: this daemon is alone on its database and always leads).
        self.leadership = leadership
        self.settings = hub.config.daemon
        self.http_port = self.settings.http.port if http_port is None else http_port
        self.jobs = build_jobs(hub) if jobs is None else jobs
        self.board = JobBoard(self.jobs)
        self.metrics = DaemonMetrics(hub.engine, self.board)
        self.stopping = threading.Event()
        #: Set when :meth:`serve` or :meth:`run_once` gave up waiting for a running job (see ``shutdown_timeout``).
        self.abandoned: list[str] = []
        self.url: str | None = None
        #: One lock per job, shared by its scheduled runs and the real-time passes: a job never runs twice at once.
        self._job_locks = {job.id: threading.Lock() for job in self.jobs}
        #: Audience then delivery, run at once after a webhook loaded something (see :class:`Realtime`).
        self.realtime = Realtime(
            realtime_jobs(self.jobs, hub),
            self._run_when_free,
            self.stopping,
        )

    def stop(self, reason: str = "asked") -> None:
        """Take no new work; the running job gets ``shutdown_timeout`` to finish. Safe from a signal handler."""
        if not self.stopping.is_set():
            self.stopping.set()
            log.info("daemon stopping", reason=reason, timeout=self.settings.shutdown_timeout.total_seconds())

    @property
    def role(self) -> str:
        """``leader`` (runs the scheduler's every job) or ``standby`` (the dispatcher only, until it takes over)."""
        return "leader" if self.leadership is None else self.leadership.role

    def serve(self, *, started: threading.Event | None = None) -> None:
        """Run the jobs on their schedules and serve HTTP until :meth:`stop`; then wait for the running jobs."""
        zone = ZoneInfo(self.hub.config.timezone)
        standby = self.leadership is not None and not self.leadership.is_leader
        scheduler = make_scheduler(
            self.jobs,
            self._scheduled,
            zone=zone,
            misfire_grace_seconds=self.settings.misfire_grace_time.total_seconds(),
            last_runs=last_runs(self.hub),
            paused=frozenset(job.id for job in self.jobs if standby and leader_only(job)),
        )
        readiness = Readiness(
            self.hub.engine,
            self.board,
            scheduler_running=lambda: scheduler.state == STATE_RUNNING,
            stuck_after=self.settings.stuck_after,
            stopping=self.stopping,
            role=None if self.leadership is None else (lambda: self.role),  # SQLite: one daemon, no roles
        )
        webhooks = Webhooks(
            WebhookIntake(self.hub, observe=self.metrics.observe_webhook), self.realtime.wake, self.stopping
        )
        with ExitStack() as stack:
            if self.settings.http.enabled:
                app = make_app(readiness, self.metrics, webhooks)
                server = HttpServer(app, self.settings.http.host, self.http_port)
                self.url = stack.enter_context(server.running())
            self.realtime.start()
            scheduler.start()
            stack.callback(self._shutdown, scheduler)
            if self.leadership is not None:
                self.leadership.on_change = lambda leader: self._leadership_changed(scheduler, zone, leader)
                self.leadership.watch(self.stopping)
            log.info("daemon started", http=self.url, role=self.role, jobs=_describe(scheduler))
            if standby:
                log.info(
                    "standby: another daemon holds the scheduler; this one delivers, serves HTTP and takes the"
                    " scheduler over if that one stops",
                    retry_every=self.settings.takeover_interval.total_seconds(),
                )
            if not self.jobs:
                log.warning("no jobs configured: give connectors a schedule, or enable daemon.audience/deliver")
            if started is not None:
                started.set()
            # A timed wait: the main thread returns to Python once a second, so a SIGTERM the kernel handed to
            # another thread still gets its handler run here (an untimed wait may never wake for it).
            while not self.stopping.wait(timeout=1.0):
                pass

    def _leadership_changed(self, scheduler: Any, zone: ZoneInfo, leader: bool) -> None:
        if self.stopping.is_set():
            return
        if leader:
            resumed = take_over(scheduler, self.jobs, zone=zone, last_runs=last_runs(self.hub))
            log.info("scheduler taken over", role="leader", resumed=resumed, jobs=_describe(scheduler))
        else:
            paused = step_down(scheduler, self.jobs)
            log.warning("scheduler handed back: standby until the lock is free again", role="standby", paused=paused)

    def run_once(self) -> bool:
        """Every job once, in dependency order (syncs, audience, deliver, housekeeping); True if all succeeded."""
        ok = True
        for job in in_order(self.jobs):
            if self.stopping.is_set():
                log.warning("not run: the daemon is stopping", job=job.id)
                continue
            outcome: list[Any] = []
            worker = threading.Thread(
                target=self._run_into,
                args=(job, outcome),
                name=f"hub-job:{job.id}",
                daemon=True,  # a job cut off by shutdown_timeout must not hold the process open
            )
            worker.start()
            while worker.is_alive() and not self.stopping.is_set():
                worker.join(0.1)
            if worker.is_alive():
                self._wait_for_running()
                return False
            ok = ok and bool(outcome and outcome[0].ok)
        return ok

    def _run_into(self, job: Job, outcome: list[Any]) -> None:
        outcome.append(run_job(job, self.board, observe=self.metrics.observe))

    def _scheduled(self, job: Job) -> None:
        if self.stopping.is_set():  # submitted just as the stop came in
            return
        if self.leadership is not None and leader_only(job) and not self.leadership.is_leader:
            return  # stepped down after APScheduler had submitted the run
        lock = self._job_locks.get(job.id)
        if lock is None:
            self._run_shared(job)
            return
        if not lock.acquire(blocking=False):  # a real-time pass is running it now: this slot is covered
            log.debug("slot skipped: a real-time pass is running the job", job=job.id)
            return
        try:
            self._run_shared(job)
        finally:
            lock.release()

    def _run_shared(self, job: Job, *, wait: bool = False) -> None:
        """Run ``job``; a leader-only job on a shared database under its advisory lock. A scheduled run that finds
        it held skips the slot (another daemon is running the job: the slot is covered); a real-time run
        (``wait``) waits for it, or gives up when the daemon stops."""
        if self.leadership is None or not leader_only(job):
            run_job(job, self.board, observe=self.metrics.observe)
            return
        with cluster_job_lock(self.hub.engine, job.id, wait=self.stopping if wait else None) as locked:
            if not locked:
                if not self.stopping.is_set():
                    log.info("slot skipped: another daemon is running the job", job=job.id)
                return
            if not self.stopping.is_set():
                run_job(job, self.board, observe=self.metrics.observe)

    def _run_when_free(self, job: Job) -> None:
        """A real-time run: waits for a scheduled run of the same job to finish (it may have started before the
        webhook's commit), then runs; gives up when the daemon stops."""
        lock = self._job_locks[job.id]
        while not lock.acquire(timeout=0.2):
            if self.stopping.is_set():
                return
        try:
            if not self.stopping.is_set():
                self._run_shared(job, wait=True)
        finally:
            lock.release()

    def _shutdown(self, scheduler: Any) -> None:
        scheduler.shutdown(wait=False)  # no new runs; running ones go on in their threads
        self._wait_for_running()
        self.realtime.join(timeout=1)

    def _wait_for_running(self) -> None:
        deadline = time.monotonic() + self.settings.shutdown_timeout.total_seconds()
        running = self.board.running()
        if running:
            log.info("waiting for running jobs", jobs=[state.id for state in running])
        while running and time.monotonic() < deadline:
            time.sleep(0.05)
            running = self.board.running()
        if running:
            self.abandoned = [state.id for state in running]
            log.warning(
                "jobs still running after shutdown_timeout; exiting anyway (a sync resumes from its last"
                " committed batch, delivery recovers its in-flight messages)",
                jobs=self.abandoned,
            )
        else:
            log.info("daemon stopped")


def _describe(scheduler: Any) -> list[dict[str, str]]:
    return [
        {
            "job": job.id,
            "trigger": str(job.trigger),
            "next": job.next_run_time.astimezone(UTC).isoformat() if job.next_run_time else "paused",
        }
        for job in scheduler.get_jobs()
    ]
