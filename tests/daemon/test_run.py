"""``hub run`` as an operator runs it: a real process on loopback, real SQLite, real signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

DAEMON = "daemon:\n  audience: {every: 1h}\n  deliver: {every: 1h}\n  shutdown_timeout: 5s\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _hub(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "hub", "--log-json", "run", "-c", str(config), *args]


def _env() -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200"}


def _upgrade(config: Path) -> None:
    cmd = [sys.executable, "-m", "hub", "db", "upgrade", "-c", str(config)]
    subprocess.run(cmd, cwd=config.parent, check=True, capture_output=True, timeout=60)


def _wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("timed out")


@pytest.fixture
def daemon(write_project):
    """A running ``hub run`` on a free port; the test stops it (or the fixture kills it)."""
    config = write_project(daemon=DAEMON)
    _upgrade(config)
    port = _free_port()
    process = subprocess.Popen(
        _hub(config, "--http-port", str(port)),
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: httpx.get(f"{url}/healthz").status_code == 200)
        yield process, url, config
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_the_daemon_answers_health_and_metrics_and_stops_cleanly_on_sigterm(daemon) -> None:
    process, url, _ = daemon
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready"}

    read = 'hub_sync_records_total{connector="shop",outcome="read",stream="records"} 3.0'
    _wait_for(lambda: read in httpx.get(f"{url}/metrics").text)
    metrics = httpx.get(f"{url}/metrics").text
    assert 'hub_sync_records_total{connector="shop",outcome="rejected",stream="records"} 1.0' in metrics
    assert 'hub_job_last_success_timestamp_seconds{job="sync:shop"}' in metrics
    assert "_created" not in metrics

    process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert time.monotonic() - started < 6  # shutdown_timeout is 5 s
    assert '"event": "daemon stopped"' in stderr
    assert '"reason": "SIGTERM"' in stderr


def test_sigusr1_writes_every_threads_stack_and_the_daemon_goes_on(daemon) -> None:
    process, url, _ = daemon
    process.send_signal(signal.SIGUSR1)
    time.sleep(0.5)
    assert httpx.get(f"{url}/healthz").status_code == 200
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "Current thread" in stderr and "Thread 0x" in stderr and "hub/daemon/" in stderr


def test_a_second_daemon_on_the_same_sqlite_database_refuses_to_start(daemon) -> None:
    process, _, config = daemon
    second = subprocess.run(
        _hub(config, "--http-port", str(_free_port())),
        cwd=config.parent,
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert second.returncode == 1
    assert "another `hub run` is already running on this database" in second.stderr
    assert f"pid {process.pid}" in second.stderr
    assert process.poll() is None  # the first one is untouched


def test_run_once_runs_every_job_in_order_and_exits(write_project) -> None:
    config = write_project(daemon=DAEMON)
    _upgrade(config)
    result = subprocess.run(_hub(config, "--once"), cwd=config.parent, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    finished = [line for line in result.stderr.splitlines() if '"event": "job finished"' in line]
    order = [next(j for j in ("sync:shop", "audience", "deliver", "housekeeping") if j in f) for f in finished]
    assert order == ["sync:shop", "audience", "deliver", "housekeeping"]


def test_run_once_exits_non_zero_when_a_job_failed_and_still_runs_the_others(write_project) -> None:
    config = write_project(daemon=DAEMON)
    _upgrade(config)
    (config.parent / "data" / "broken.csv").write_bytes(b"id,email\n1,\xff\xfe@x.no\n")  # not UTF-8: the read fails
    result = subprocess.run(_hub(config, "--once"), cwd=config.parent, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert '"event": "job failed"' in result.stderr and "sync:shop" in result.stderr
    assert result.stderr.count('"event": "job finished"') == 3  # audience, deliver, housekeeping
