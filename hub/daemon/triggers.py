"""APScheduler triggers from a ``schedule:`` block, in the configured time zone.

``cron`` goes through croniter, not APScheduler 3's ``CronTrigger.from_crontab``: APScheduler 3 numbers the days of
the week from Monday = 0, crontab from Sunday = 0, so ``"0 9 * * 1"`` would fire on Tuesdays. croniter is what
validates the expression and what campaign triggers tick on, so a schedule means the same day everywhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from croniter import croniter

from hub.config import Schedule


class CrontabTrigger(BaseTrigger):
    """Fires on a five-field crontab expression in ``zone``; a tick skipped by a DST change fires at the new hour."""

    def __init__(self, expression: str, zone: ZoneInfo) -> None:
        self.expression = expression
        self.zone = zone

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        # croniter gives the first tick strictly after its start: after the previous one, or at/after ``now``.
        start = previous_fire_time if previous_fire_time is not None else now - timedelta(microseconds=1)
        fire: datetime = croniter(self.expression, start.astimezone(self.zone)).get_next(datetime)
        return fire

    def previous_fire_time(self, now: datetime) -> datetime:
        """The last tick at or before ``now``: the slot a job that has not run since then has missed."""
        ticks = croniter(self.expression, now.astimezone(self.zone) + timedelta(microseconds=1))
        tick: datetime = ticks.get_prev(datetime)
        return tick

    def __str__(self) -> str:
        return f"cron[{self.expression} {self.zone.key}]"

    def __repr__(self) -> str:
        return f"<CrontabTrigger ({self.expression!r}, zone={self.zone.key!r})>"


def make_trigger(schedule: Schedule, zone: ZoneInfo) -> BaseTrigger:
    """The trigger of an ``every`` or a ``cron`` schedule."""
    if schedule.cron is not None:
        return CrontabTrigger(schedule.cron, zone)
    assert schedule.every is not None
    return IntervalTrigger(seconds=schedule.every.total_seconds(), timezone=zone)


def last_slot(schedule: Schedule, zone: ZoneInfo, now: datetime) -> datetime:
    """The latest moment at or before ``now`` at which the schedule wanted a run: a job whose last run started
    before it is overdue. For ``every``, that is ``now - every``."""
    if schedule.cron is not None:
        return CrontabTrigger(schedule.cron, zone).previous_fire_time(now)
    assert schedule.every is not None
    return now - schedule.every
