"""``hub run``: the daemon. Jobs from the configuration on APScheduler, HTTP health and metrics, graceful stops.

Modules, in the order a run uses them: :mod:`~hub.daemon.lock` (one daemon per database),
:mod:`~hub.daemon.jobs` (what runs, and the guard around each run), :mod:`~hub.daemon.triggers` and
:mod:`~hub.daemon.scheduler` (when), :mod:`~hub.daemon.housekeeping` (pruning), :mod:`~hub.daemon.metrics` and
:mod:`~hub.daemon.http` (what it tells a monitor, and the webhook route), :mod:`~hub.daemon.webhooks` (pushed
records through the engine's batch path, and the real-time audience and delivery passes),
:mod:`~hub.daemon.runner` (all of it, and stopping), and :mod:`~hub.daemon.command` (the ``hub run`` command).
"""

from hub.daemon.jobs import Job, JobBoard, JobOutcome, JobState, build_jobs, run_job
from hub.daemon.lock import AlreadyRunning, daemon_lock
from hub.daemon.runner import Daemon

__all__ = [
    "AlreadyRunning",
    "Daemon",
    "Job",
    "JobBoard",
    "JobOutcome",
    "JobState",
    "build_jobs",
    "daemon_lock",
    "run_job",
]
