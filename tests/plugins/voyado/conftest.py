"""Fixtures: a fresh Voyado emulator per test, served over real loopback HTTP, and a destination pointed at it."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from hub.connectors import ConnectorContext
from hub.sandbox.server import serve
from hub_plugins.voyado import emulator
from hub_plugins.voyado._state import VoyadoState
from hub_plugins.voyado.destination import VoyadoDestination
from hub_plugins.voyado.settings import VoyadoSettings

HEADERS = {"apikey": emulator.DEFAULT_API_KEY, "User-Agent": "HubTests/1.0"}


@pytest.fixture
def voyado_app() -> Starlette:
    return emulator.app()


@pytest.fixture
def state(voyado_app: Starlette) -> VoyadoState:
    return voyado_app.state.voyado


@pytest.fixture
def base_url(voyado_app: Starlette) -> Iterator[str]:
    with serve(voyado_app) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, headers=HEADERS, timeout=5) as http:
        yield http


def make_destination(base_url: str, tmp_path: Path, *, timeout: float = 5, **settings: Any) -> VoyadoDestination:
    """A destination with its HTTP client bound the way the core binds one (base URL and headers)."""
    values = {"base_url": base_url, "api_key": emulator.DEFAULT_API_KEY, **settings}
    context = ConnectorContext(name="voyado", project_dir=tmp_path, timezone="Europe/Stockholm")
    destination = VoyadoDestination(VoyadoSettings(**values), context)
    options = destination.client_options()
    destination.bind_http(httpx.Client(base_url=options.base_url, headers=dict(options.headers), timeout=timeout))
    return destination


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[..., VoyadoDestination]]:
    """``make(base_url, **settings)``: a bound destination whose client is closed after the test."""
    made: list[VoyadoDestination] = []

    def factory(base_url: str, **settings: Any) -> VoyadoDestination:
        made.append(make_destination(base_url, tmp_path, **settings))
        return made[-1]

    yield factory
    for destination in made:
        if destination._http is not None:
            destination.http.close()


@pytest.fixture
def destination(base_url: str, make: Callable[..., VoyadoDestination]) -> VoyadoDestination:
    return make(base_url)
