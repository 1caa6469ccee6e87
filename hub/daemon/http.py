"""The daemon's HTTP endpoint: ``/healthz``, ``/readyz`` and ``/metrics``, served by uvicorn on a thread.

- ``/healthz``: 200 while the process answers at all (a liveness probe: restart it if this fails).
- ``/readyz``: 200 when the database answers, the scheduler runs and no job has been running longer than
  ``daemon.stuck_after``; otherwise 503 with every reason in JSON (a readiness probe: alert, do not restart blindly).
- ``/metrics``: Prometheus' text format (:mod:`hub.daemon.metrics`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.daemon.jobs import JobBoard
from hub.daemon.metrics import DaemonMetrics
from hub.errors import HubError


class HttpUnavailable(HubError):
    """The daemon's HTTP endpoint could not start (most often: the port is taken)."""


@dataclass(slots=True)
class Readiness:
    """What ``/readyz`` checks; ``scheduler_running`` is asked at each request."""

    engine: sa.Engine
    board: JobBoard
    scheduler_running: Callable[[], bool]
    stuck_after: timedelta
    stopping: threading.Event

    def reasons(self) -> list[str]:
        """Why the daemon is not ready; empty when it is."""
        reasons: list[str] = []
        if self.stopping.is_set():
            reasons.append("shutting down")
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:
            reasons.append(f"database unreachable: {type(exc).__name__}: {exc}")
        if not self.stopping.is_set() and not self.scheduler_running():
            reasons.append("scheduler not running")
        now = datetime.now(UTC)
        for state in self.board.running():
            assert state.running_since is not None
            if now - state.running_since > self.stuck_after:
                minutes = (now - state.running_since).total_seconds() / 60
                limit = self.stuck_after.total_seconds() / 60
                reasons.append(f"job {state.id} has been running for {minutes:.0f} min (stuck_after: {limit:g} min)")
        return reasons


def make_app(readiness: Readiness, metrics: DaemonMetrics) -> Starlette:
    def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    def readyz(request: Request) -> JSONResponse:
        # A plain ``def``: Starlette runs it on its thread pool, so a slow database never blocks the event loop.
        reasons = readiness.reasons()
        if reasons:
            return JSONResponse({"status": "not ready", "reasons": reasons}, status_code=503)
        return JSONResponse({"status": "ready"})

    def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
        ]
    )


class HttpServer:
    """uvicorn on a daemon thread; :meth:`running` yields the base URL once it accepts connections."""

    def __init__(self, app: Any, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="off", access_log=False, log_config=None
        )
        self.server = uvicorn.Server(config)
        self.host = host

    @contextmanager
    def running(self, startup_timeout: float = 10.0) -> Iterator[str]:
        failure: list[BaseException] = []

        def serve() -> None:
            try:
                self.server.run()
            except BaseException as exc:  # uvicorn exits (SystemExit) when it cannot bind: report it, not the thread
                failure.append(exc)

        thread = threading.Thread(target=serve, name="hub-http", daemon=True)
        thread.start()
        deadline = time.monotonic() + startup_timeout
        while not self.server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.server.should_exit = True
                port = self.server.config.port
                raise HttpUnavailable(
                    f"the HTTP endpoint could not listen on {self.host}:{port} (is the port in use?);"
                    " choose another with `hub run --http-port N` or daemon.http.port"
                )
            time.sleep(0.01)
        try:
            yield f"http://{self.host}:{self._port()}"
        finally:
            self.server.should_exit = True
            thread.join(timeout=5)

    def _port(self) -> int:
        for server in self.server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self.server.config.port
