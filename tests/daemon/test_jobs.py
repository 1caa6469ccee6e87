"""Jobs come from the configuration; a failing job is logged and runs again; overdue jobs run at start."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from hub.config import Schedule
from hub.daemon.jobs import Job, JobBoard, JobOutcome, build_jobs, in_order, run_job
from hub.daemon.scheduler import last_runs, make_scheduler

UTC_ZONE = ZoneInfo("UTC")


def test_jobs_are_named_after_the_configuration_and_run_once_in_dependency_order(make_hub) -> None:
    hub = make_hub(daemon="daemon:\n  deliver: false\n  housekeeping: {cron: '0 4 * * *'}\n")
    jobs = build_jobs(hub)
    assert [job.id for job in jobs] == ["sync:shop", "audience", "housekeeping"]
    assert jobs[0].schedule.every == timedelta(seconds=1)
    assert jobs[1].schedule.every == timedelta(minutes=15)  # the default
    assert [job.kind for job in in_order(list(reversed(jobs)))] == ["sync", "audience", "housekeeping"]


def test_a_connector_without_a_schedule_has_no_job(make_hub) -> None:
    hub = make_hub(schedule="")
    assert [job.id for job in build_jobs(hub)] == ["audience", "deliver", "housekeeping"]


def test_a_job_is_left_out_with_false_or_enabled_false(make_hub) -> None:
    hub = make_hub(daemon="daemon:\n  audience: false\n  deliver: {enabled: false}\n  housekeeping:\n")
    assert [job.id for job in build_jobs(hub)] == ["sync:shop", "housekeeping"]


def test_a_job_that_raises_is_logged_with_its_error_and_recorded() -> None:
    def broken() -> JobOutcome:
        raise RuntimeError("the shop is down")

    job = Job("sync:shop", "sync", Schedule(every=timedelta(minutes=1)), broken)
    board = JobBoard([job])
    with capture_logs() as logs:
        outcome = run_job(job, board)
    assert not outcome.ok
    assert outcome.error == "RuntimeError: the shop is down"
    failed = [entry for entry in logs if entry["event"] == "job failed"]
    assert failed and failed[0]["error"] == "RuntimeError: the shop is down"
    (state,) = board.snapshot()
    assert (state.failed, state.succeeded, state.running_since, state.last_success) == (1, 0, None, None)


def test_a_failing_job_never_stops_the_scheduler_and_runs_again_at_its_next_slot() -> None:
    calls = {"broken": 0, "fine": 0}
    done = threading.Event()

    def broken() -> JobOutcome:
        calls["broken"] += 1
        raise RuntimeError("boom")

    def fine() -> JobOutcome:
        calls["fine"] += 1
        if calls["broken"] >= 2 and calls["fine"] >= 2:
            done.set()
        return JobOutcome(ok=True)

    every = Schedule(every=timedelta(seconds=1))
    jobs = [Job("broken", "audience", every, broken), Job("fine", "deliver", every, fine)]
    board = JobBoard(jobs)
    scheduler = make_scheduler(
        jobs, lambda job: run_job(job, board), zone=UTC_ZONE, misfire_grace_seconds=5, last_runs=None
    )
    scheduler.start()
    try:
        assert done.wait(timeout=5), calls
        assert scheduler.running
    finally:
        scheduler.shutdown(wait=True)
    by_id = {state.id: state for state in board.snapshot()}
    assert by_id["broken"].failed >= 2 and by_id["broken"].last_error == "RuntimeError: boom"
    assert by_id["fine"].succeeded >= 2


def test_a_job_still_running_at_its_next_slot_is_not_started_twice() -> None:
    running = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()

    def slow() -> JobOutcome:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(timeout=3)
        with lock:
            running -= 1
        return JobOutcome(ok=True)

    jobs = [Job("slow", "audience", Schedule(every=timedelta(seconds=1)), slow)]
    board = JobBoard(jobs)
    scheduler = make_scheduler(jobs, lambda job: run_job(job, board), zone=UTC_ZONE, misfire_grace_seconds=5)
    scheduler.start()
    try:
        time.sleep(2.5)  # two more slots pass while the first run is still going
    finally:
        release.set()
        scheduler.shutdown(wait=True)
    assert most == 1


@pytest.mark.parametrize(
    ("last", "runs_at_start"),
    [(None, True), (timedelta(hours=3), True), (timedelta(minutes=10), False)],
    ids=["never ran", "overdue", "ran recently"],
)
def test_an_overdue_sync_runs_at_start_others_wait_for_their_slot(last, runs_at_start) -> None:
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    hourly = Schedule(every=timedelta(hours=1))
    jobs = [Job("sync:shop", "sync", hourly, JobOutcome), Job("deliver", "deliver", hourly, JobOutcome)]
    runs = {} if last is None else {"sync:shop": now - last, "deliver": now - timedelta(days=9)}
    scheduler = make_scheduler(jobs, print, zone=UTC_ZONE, misfire_grace_seconds=5, last_runs=runs, now=now)
    scheduler.start(paused=True)
    try:
        next_runs = {job.id: job.next_run_time for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
    assert (next_runs["sync:shop"] == now) is runs_at_start
    assert next_runs["deliver"] != now


def test_last_runs_reads_sync_run_and_the_audience_state(make_hub) -> None:
    from hub.audience.pipeline import run_audience
    from hub.engine.run import SyncEngine

    hub = make_hub()
    assert last_runs(hub) == {}
    SyncEngine(hub).sync()
    run_audience(hub)
    found = last_runs(hub)
    assert set(found) == {"sync:shop", "audience"}
    assert all(datetime.now(UTC) - at < timedelta(minutes=1) for at in found.values())
