"""One daemon per SQLite database (a lock file); on PostgreSQL, one scheduler holder (an advisory lock) and standbys."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.daemon.lock import (
    ADVISORY_KEY,
    AlreadyRunning,
    SchedulerLeadership,
    cluster_job_lock,
    daemon_lock,
    lock_path,
)
from hub.db import make_engine


def _refused(engine: sa.Engine, url: str, message: str) -> None:
    with pytest.raises(AlreadyRunning, match=message), daemon_lock(engine, url):
        pass


def test_the_lock_file_sits_next_to_the_sqlite_database(tmp_path: Path) -> None:
    assert lock_path(f"sqlite:///{tmp_path}/var/hub.db") == tmp_path / "var" / "hub.db.lock"
    assert lock_path("sqlite:///:memory:") is None
    assert lock_path("postgresql+psycopg://hub@localhost/hub") is None


def test_a_second_holder_is_refused_and_the_lock_is_free_again_after(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/hub.db"
    engine = make_engine(url)
    try:
        with daemon_lock(engine, url):
            _refused(engine, url, r"already running on this database \(pid \d+")
        with daemon_lock(engine, url):
            pass
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_on_postgresql_an_advisory_lock_refuses_a_second_daemon(pg_database_url: str) -> None:
    first, second = make_engine(pg_database_url), make_engine(pg_database_url)
    try:
        with daemon_lock(first, pg_database_url):
            _refused(second, pg_database_url, "advisory lock")
        with daemon_lock(second, pg_database_url):
            pass
    finally:
        first.dispose()
        second.dispose()


@pytest.mark.postgres
def test_on_postgresql_a_standby_takes_the_scheduler_over_when_the_leader_goes(pg_database_url: str) -> None:
    first, second = make_engine(pg_database_url), make_engine(pg_database_url)
    changes: list[bool] = []
    leader = SchedulerLeadership(first, interval=0.1)
    standby = SchedulerLeadership(second, interval=0.1, on_change=changes.append)
    try:
        assert leader.try_acquire() and leader.role == "leader"
        assert not standby.try_acquire() and standby.role == "standby"
        standby.step()
        assert changes == []
        # --once still refuses while a daemon holds the scheduler.
        _refused(second, pg_database_url, "advisory lock")
        # The leader's session ends as a kill -9 would end it: the server frees the lock, the standby takes over.
        with second.connect() as conn:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = :o"),
                {"o": ADVISORY_KEY & 0xFFFFFFFF},
            )
            conn.commit()
        standby.step()
        assert changes == [True] and standby.is_leader
        # The old leader finds its connection gone and steps down instead of leading twice.
        assert not leader.still_held() and leader.role == "standby"
        assert not leader.try_acquire()
    finally:
        leader.release()
        standby.release()
        first.dispose()
        second.dispose()


@pytest.mark.postgres
def test_on_postgresql_a_job_runs_in_one_daemon_at_a_time(pg_database_url: str) -> None:
    first, second = make_engine(pg_database_url), make_engine(pg_database_url)
    try:
        with cluster_job_lock(first, "audience") as held:
            assert held
            with cluster_job_lock(second, "audience") as other:
                assert not other
            with cluster_job_lock(second, "housekeeping") as other:
                assert other
            gave_up = threading.Event()
            threading.Timer(0.3, gave_up.set).start()
            with cluster_job_lock(second, "audience", wait=gave_up, poll=0.05) as other:
                assert not other and gave_up.is_set()
        with cluster_job_lock(second, "audience") as other:
            assert other
    finally:
        first.dispose()
        second.dispose()


def test_on_sqlite_jobs_need_no_cluster_lock(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/hub.db")
    try:
        with cluster_job_lock(engine, "audience") as held, cluster_job_lock(engine, "audience") as again:
            assert held and again
    finally:
        engine.dispose()
