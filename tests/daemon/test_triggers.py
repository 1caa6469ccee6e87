"""Schedules become triggers in the configured time zone, with crontab's own weekday numbers."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.interval import IntervalTrigger

from hub.config import Schedule
from hub.daemon.triggers import CrontabTrigger, last_slot, make_trigger

OSLO = ZoneInfo("Europe/Oslo")


def test_cron_day_one_is_monday_as_in_crontab() -> None:
    trigger = make_trigger(Schedule(cron="0 9 * * 1"), OSLO)
    saturday = datetime(2025, 3, 29, 12, 0, tzinfo=OSLO)
    assert trigger.get_next_fire_time(None, saturday) == datetime(2025, 3, 31, 9, 0, tzinfo=OSLO)


def test_cron_runs_in_the_configured_zone() -> None:
    trigger = make_trigger(Schedule(cron="0 2 * * *"), OSLO)
    now = datetime(2025, 6, 1, 0, 30, tzinfo=ZoneInfo("UTC"))  # 02:30 in Oslo: today's 02:00 has passed
    fire = trigger.get_next_fire_time(None, now)
    assert fire == datetime(2025, 6, 2, 2, 0, tzinfo=OSLO)


def test_a_cron_tick_at_exactly_now_is_not_skipped_and_the_next_follows_the_previous() -> None:
    trigger = CrontabTrigger("*/15 * * * *", OSLO)
    now = datetime(2025, 6, 1, 10, 15, tzinfo=OSLO)
    assert trigger.get_next_fire_time(None, now) == now
    assert trigger.get_next_fire_time(now, now) == now + timedelta(minutes=15)


def test_a_tick_skipped_by_the_spring_dst_change_fires_at_the_new_hour() -> None:
    trigger = make_trigger(Schedule(cron="30 2 * * *"), OSLO)
    fire = trigger.get_next_fire_time(None, datetime(2025, 3, 29, 12, 0, tzinfo=OSLO))
    assert fire is not None and fire.astimezone(OSLO).replace(tzinfo=None) == datetime(2025, 3, 30, 3, 0)


def test_every_is_an_interval() -> None:
    trigger = make_trigger(Schedule(every=timedelta(minutes=15)), OSLO)
    assert isinstance(trigger, IntervalTrigger)
    assert trigger.interval == timedelta(minutes=15)


def test_last_slot_of_cron_and_of_every() -> None:
    now = datetime(2025, 6, 1, 10, 20, tzinfo=OSLO)
    assert last_slot(Schedule(cron="0 2 * * *"), OSLO, now) == datetime(2025, 6, 1, 2, 0, tzinfo=OSLO)
    assert last_slot(Schedule(cron="20 10 * * *"), OSLO, now) == now
    assert last_slot(Schedule(every=timedelta(hours=1)), OSLO, now) == now - timedelta(hours=1)
