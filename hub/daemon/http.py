"""The daemon's HTTP endpoint: ``/healthz``, ``/readyz`` and ``/metrics``, served by uvicorn on a thread.

- ``/healthz``: 200 while the process answers at all (a liveness probe: restart it if this fails).
- ``/readyz``: 200 when the database answers, the scheduler runs and no job has been running longer than
  ``daemon.stuck_after``; otherwise 503 with every reason in JSON (a readiness probe: alert, do not restart blindly).
  On PostgreSQL (several daemons), either way ``role`` says whether this process holds the scheduler
  (``leader``) or is a ``standby``: a standby delivers and serves webhooks, so it is ready.
- ``/metrics``: Prometheus' text format (:mod:`hub.daemon.metrics`).
- ``POST /webhooks/{connector}``: a signed record pushed by a shop (:mod:`hub.daemon.webhooks`).
- ``/plugins/<plugin name>/...``: what each plugin returns from ``hub_http_routes`` (e.g. Raptor's product feed).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import sqlalchemy as sa
import structlog
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from hub.daemon.jobs import JobBoard
from hub.daemon.metrics import DaemonMetrics
from hub.daemon.webhooks import WebhookIntake
from hub.errors import HubError

if TYPE_CHECKING:
    from hub.app import Hub

log = structlog.get_logger("hub.daemon.webhooks")
#: Where each plugin's ``hub_http_routes`` are mounted: ``/plugins/<plugin name>``.
PLUGIN_PREFIX = "/plugins"
plugin_log = structlog.get_logger("hub.daemon.http")


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
    #: ``leader`` or ``standby``; None: not reported.
    role: Callable[[], str] | None = None

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


@dataclass(slots=True)
class Webhooks:
    """What ``POST /webhooks/{connector}`` needs: the intake, and what to call once a record is loaded."""

    intake: WebhookIntake
    wake: Callable[[], None]
    stopping: threading.Event


class _TooLarge(Exception):
    pass


def make_app(
    readiness: Readiness, metrics: DaemonMetrics, webhooks: Webhooks | None = None, *, hub: Hub | None = None
) -> Starlette:
    """The daemon's app. Plugins' routes are mounted for ``hub`` (default: the hub the webhook intake serves)."""

    def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    def readyz(request: Request) -> JSONResponse:
        # A plain ``def``: Starlette runs it on its thread pool, so a slow database never blocks the event loop.
        reasons = readiness.reasons()
        role = {"role": readiness.role()} if readiness.role is not None else {}
        if reasons:
            return JSONResponse({"status": "not ready", "reasons": reasons, **role}, status_code=503)
        return JSONResponse({"status": "ready", **role})

    def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics_endpoint),
    ]
    if webhooks is not None:
        routes.append(Route("/webhooks/{connector}", _webhook_endpoint(webhooks, metrics), methods=["POST"]))
    if hub is None and webhooks is not None:
        hub = webhooks.intake.hub
    if hub is not None:
        routes.extend(plugin_routes(hub))
    return Starlette(routes=routes)


def plugin_routes(hub: Hub) -> list[BaseRoute]:
    """Every plugin's ``hub_http_routes``, each plugin's under ``/plugins/<its name>``, so no plugin can shadow
    the core's paths or another plugin's. A plugin whose hook raises or returns something that is not a route is
    logged by name and left out: the health endpoints must come up whatever a plugin does."""
    mounts: list[BaseRoute] = []
    pm = hub.pm
    for impl in pm.hook.hub_http_routes.get_hookimpls():
        owner = pm.get_name(impl.plugin) or impl.plugin_name
        try:
            routes = list(impl.function(**({"hub": hub} if "hub" in impl.argnames else {})) or [])
            wrong = [route for route in routes if not isinstance(route, BaseRoute)]
            if wrong:
                raise TypeError(f"{wrong[0]!r} is not a Starlette route")
        except Exception as exc:
            plugin_log.error("plugin routes left out", plugin=owner, error=f"{type(exc).__name__}: {exc}")
            continue
        if routes:
            mounts.append(Mount(f"{PLUGIN_PREFIX}/{quote(owner, safe='')}", routes=routes))
    return mounts


def _webhook_endpoint(webhooks: Webhooks, metrics: DaemonMetrics) -> Callable[[Request], Any]:
    intake = webhooks.intake

    async def webhook(request: Request) -> Response:
        # Reading the body happens on the event loop; verification and the database write on the thread pool.
        name = request.path_params["connector"]
        if webhooks.stopping.is_set():
            metrics.observe_webhook(name, 503)
            return JSONResponse({"error": "shutting down; send again later"}, status_code=503)
        receiver = intake.receiver(name)
        if receiver is None:
            metrics.observe_webhook(None, 404)  # an unknown name is not a label: anyone can make up names
            return JSONResponse({"error": f"no webhook connector named {name!r}"}, status_code=404)
        limit = receiver.max_body_bytes
        try:
            body = await _read_body(request, limit)
        except _TooLarge:
            metrics.observe_webhook(name, 413)
            log.warning("webhook refused: body too large", connector=name, limit=limit)
            return JSONResponse({"error": f"body larger than {limit} bytes"}, status_code=413)
        except ClientDisconnect:
            return Response(status_code=400)
        client = request.client.host if request.client else None
        try:
            answer = await run_in_threadpool(intake.handle, name, receiver, body, request.headers, client)
        except Exception as exc:  # the database is down or locked too long: the sender retries later
            log.error("webhook not stored", connector=name, error=f"{type(exc).__name__}: {exc}", exc_info=True)
            metrics.observe_webhook(name, 503)
            return JSONResponse({"error": "not stored; send again later"}, status_code=503)
        background = BackgroundTask(webhooks.wake) if answer.loaded else None
        return JSONResponse(answer.body, status_code=answer.status, background=background)

    return webhook


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


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
