"""Stopping: no new work, the running job gets ``shutdown_timeout`` to finish, and no longer."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from hub.config import Schedule
from hub.daemon import Daemon, Job, JobOutcome

DAEMON = "daemon:\n  shutdown_timeout: 1s\n  http: {enabled: false}\n"


def _serving(daemon: Daemon) -> threading.Thread:
    thread = threading.Thread(target=daemon.serve, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(("job_seconds", "abandoned"), [(0.3, []), (5.0, ["sync:shop"])], ids=["finishes", "too slow"])
def test_a_stop_lets_the_running_job_finish_within_the_timeout(make_hub, job_seconds, abandoned) -> None:
    started, finished, release = threading.Event(), threading.Event(), threading.Event()

    def slow() -> JobOutcome:
        started.set()
        release.wait(job_seconds)
        finished.set()
        return JobOutcome(ok=True)

    hub = make_hub(daemon=DAEMON)
    # Never ran, so it is overdue and starts at once.
    daemon = Daemon(hub, jobs=[Job("sync:shop", "sync", Schedule(every=timedelta(hours=1)), slow)])
    thread = _serving(daemon)
    assert started.wait(timeout=5)
    daemon.stop("test")
    thread.join(timeout=5)
    was_finished = finished.is_set()
    release.set()  # let an abandoned job's thread end with the test
    assert not thread.is_alive()
    assert daemon.abandoned == abandoned
    assert was_finished is (not abandoned)


def test_after_a_stop_no_new_run_starts(make_hub) -> None:
    runs: list[int] = []
    hub = make_hub(daemon=DAEMON)
    daemon = Daemon(hub, jobs=[Job("sync:shop", "sync", Schedule(every=timedelta(hours=1)), JobOutcome)])
    daemon.stop("before start")
    daemon._scheduled(Job("sync:shop", "sync", Schedule(every=timedelta(hours=1)), lambda: runs.append(1)))
    assert runs == []
    assert daemon.run_once() is True and runs == []
