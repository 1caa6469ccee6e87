"""``hub_http_routes``: what plugins return is served by the daemon under ``/plugins/<plugin name>``, and a
broken plugin never takes the health endpoints (or another plugin's routes) down."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from hub import hookimpl
from hub.app import Hub
from hub.daemon.http import HttpServer, Readiness, Webhooks, make_app
from hub.daemon.jobs import JobBoard
from hub.daemon.metrics import DaemonMetrics
from hub.daemon.webhooks import WebhookIntake


def _text(body: str) -> Callable[[Request], PlainTextResponse]:
    def endpoint(request: Request) -> PlainTextResponse:
        return PlainTextResponse(body)

    return endpoint


class Greets:
    """Serves ``/hello`` and, to show it cannot shadow the core, its own ``/healthz``; it sees the hub."""

    @hookimpl
    def hub_http_routes(self, hub: Hub) -> list[Route]:
        names = ",".join(hub.config.connectors)
        return [Route("/hello", _text(f"hello from {names}")), Route("/healthz", _text("not the core's"))]


class Breaks:
    @hookimpl
    def hub_http_routes(self) -> list[Route]:
        raise RuntimeError("boom")


class ReturnsJunk:
    @hookimpl
    def hub_http_routes(self) -> list[Any]:
        return ["/not-a-route"]


@contextmanager
def served(of: Hub, **app_options: Any) -> Iterator[httpx.Client]:
    """The daemon's app for the hub ``of`` (its engine answers /readyz), built with ``app_options``."""
    board = JobBoard([])
    readiness = Readiness(of.engine, board, lambda: True, timedelta(minutes=30), threading.Event())
    app = make_app(readiness, DaemonMetrics(of.engine, board), **app_options)
    with HttpServer(app, "127.0.0.1", 0).running() as url, httpx.Client(base_url=url) as client:
        yield client


def test_a_plugins_routes_are_served_under_plugins_and_its_name(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub()
    hub.pm.register(Greets(), name="greets")

    with served(hub, hub=hub) as client:
        hello = client.get("/plugins/greets/hello")
        own_healthz = client.get("/plugins/greets/healthz")
        core_healthz = client.get("/healthz")

    assert (hello.status_code, hello.text) == (200, "hello from shop")
    assert own_healthz.text == "not the core's"
    assert core_healthz.json() == {"status": "ok"}


def test_a_plugin_that_raises_or_returns_no_routes_is_left_out_and_the_others_are_served(
    make_hub: Callable[..., Hub], capsys: Any
) -> None:
    hub = make_hub()
    for plugin, name in ((Breaks(), "breaks"), (ReturnsJunk(), "junk"), (Greets(), "greets")):
        hub.pm.register(plugin, name=name)

    with served(hub, hub=hub) as client:
        assert client.get("/plugins/greets/hello").status_code == 200
        assert client.get("/plugins/breaks/anything").status_code == 404
        assert client.get("/readyz").status_code == 200

    logged = capsys.readouterr()
    assert "plugin routes left out" in logged.out + logged.err
    assert "boom" in logged.out + logged.err and "not a Starlette route" in logged.out + logged.err


def test_the_daemons_app_mounts_plugin_routes_for_the_hub_its_webhooks_serve(make_hub: Callable[..., Hub]) -> None:
    """``hub run`` builds the app with its webhook intake: the plugins of that intake's hub are mounted."""
    hub = make_hub()
    hub.pm.register(Greets(), name="greets")
    webhooks = Webhooks(WebhookIntake(hub), wake=lambda: None, stopping=threading.Event())

    with served(hub, webhooks=webhooks) as client:
        assert client.get("/plugins/greets/hello").status_code == 200


def test_without_a_hub_no_plugin_is_asked(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub()
    hub.pm.register(Breaks(), name="breaks")

    with served(hub) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/plugins/breaks/x").status_code == 404
