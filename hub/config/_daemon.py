"""The ``daemon:`` block of hub.yaml: when ``hub run`` runs its own jobs, and how it serves and stops.

Connector syncs are scheduled by each connector's own ``schedule:``; this block schedules the jobs that belong to
no connector (the audience pass, delivery, housekeeping) and holds the daemon's process settings. Every key has
a default, so a file without the block runs a daemon that works. A job set to ``false`` is not scheduled.

"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from hub.config._models import _BLOCK, Schedule, _Duration


class JobSchedule(Schedule):
    """A daemon job's schedule: ``every`` or ``cron`` as for a connector, or ``enabled: false`` (or just ``false``)
    to leave the job out of the daemon; it still runs with its own command."""

    enabled: bool = True

    @model_validator(mode="after")
    def _exactly_one(self) -> JobSchedule:  # replaces Schedule's: a disabled job needs no schedule
        if self.enabled and (self.every is None) == (self.cron is None):
            raise ValueError("give either every or cron (or enabled: false)")
        return self


def _job_schedule(default: JobSchedule) -> Any:
    """Empty (``audience:``) means the default schedule, as for every other block; ``false`` means disabled."""

    def read(value: Any) -> Any:
        if value is None:
            return default
        if value is False:
            return {"enabled": False}
        return value

    return BeforeValidator(read)


_AUDIENCE = JobSchedule(every=timedelta(minutes=15))
_DELIVER = JobSchedule(every=timedelta(minutes=1))
_HOUSEKEEPING = JobSchedule(cron="30 3 * * *")


class DaemonHttpConfig(BaseModel):
    """The daemon's HTTP endpoint: ``/healthz``, ``/readyz`` and ``/metrics``."""

    model_config = _BLOCK

    enabled: bool = True
    host: str = Field(
        default="127.0.0.1",
        description="the address to bind; 127.0.0.1 keeps it on this machine (put a proxy in front to expose it)",
    )
    port: int = Field(default=8787, ge=0, le=65535, description="0 picks a free port (logged at start)")


class DaemonConfig(BaseModel):
    """``hub run``: schedules of the jobs that belong to no connector, retention, HTTP and stopping."""

    model_config = _BLOCK

    audience: Annotated[JobSchedule, _job_schedule(_AUDIENCE)] = Field(
        default=_AUDIENCE, description="attributes, segments, triggers, contact pressure and the outbox (hub audience)"
    )
    deliver: Annotated[JobSchedule, _job_schedule(_DELIVER)] = Field(
        default=_DELIVER, description="one delivery pass over every enabled destination (hub deliver)"
    )
    housekeeping: Annotated[JobSchedule, _job_schedule(_HOUSEKEEPING)] = Field(
        default=_HOUSEKEEPING, description="prunes run history, logs and sent messages older than retention"
    )
    retention: _Duration = Field(
        default=timedelta(days=90),
        description="how long sync runs, contact_log, segment changes and sent messages are kept",
    )
    misfire_grace_time: _Duration = Field(
        default=timedelta(minutes=5),
        description="a run that could not start on time still starts if it is at most this late",
    )
    stuck_after: _Duration = Field(
        default=timedelta(hours=2),
        description="a job running longer than this makes /readyz answer 503",
    )
    shutdown_timeout: _Duration = Field(
        default=timedelta(seconds=30),
        description="on SIGTERM or SIGINT, how long a running job may take to finish before the process exits",
    )
    takeover_interval: _Duration = Field(
        default=timedelta(seconds=5),
        gt=timedelta(0),
        description=(
            "PostgreSQL, several daemons: how often a standby tries to take the scheduler over (and the leader"
            " checks that it still holds it); a dead leader is replaced within about this long"
        ),
    )
    http: DaemonHttpConfig = DaemonHttpConfig()
