"""Fixtures: a fresh Raptor emulator per test over real loopback HTTP, and a connector pointed at it."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from hub.connectors import ConnectorContext
from hub.sandbox.faults import FaultInjector, Faults
from hub.sandbox.server import serve
from hub_plugins.raptor import emulator
from hub_plugins.raptor._state import RaptorState
from hub_plugins.raptor.connector import RaptorConnector
from hub_plugins.raptor.settings import RaptorSettings


@pytest.fixture
def raptor_app() -> Starlette:
    return emulator.app()


@pytest.fixture
def state(raptor_app: Starlette) -> RaptorState:
    return raptor_app.state.raptor  # type: ignore[no-any-return]


@pytest.fixture
def injector(raptor_app: Starlette) -> FaultInjector:
    """The emulator behind a fault injector with no faults yet (tests set ``injector.faults``)."""
    return FaultInjector(raptor_app, Faults())


class Door:
    """In front of the fault injector: counts tracking requests, and can fault only some of them by number.

    ``fault(nth, faults, times)`` applies ``faults`` to tracking requests ``nth`` .. ``nth + times - 1`` (from 1)
    and none to the others, so a test can lose the answer of exactly the second line of an order.
    """

    def __init__(self, injector: FaultInjector) -> None:
        self.injector = injector
        self.count = 0
        self.plan: tuple[int, int, Faults] | None = None
        self.hits = 0

    def fault(self, nth: int, faults: Faults, times: int = 1) -> None:
        self.plan = (nth, times, faults)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.plan is not None and scope["type"] == "http" and scope["path"].endswith(".stream"):
            self.count += 1
            nth, times, faults = self.plan
            hit = nth <= self.count < nth + times
            self.hits += hit
            self.injector.faults = faults if hit else Faults()
        await self.injector(scope, receive, send)


@pytest.fixture
def door(injector: FaultInjector) -> Door:
    return Door(injector)


@pytest.fixture
def base_url(door: Door) -> Iterator[str]:
    with serve(door) as url:
        yield url


def make_connector(base_url: str, tmp_path: Path, *, timeout: float = 5, **settings: Any) -> RaptorConnector:
    """A connector with its tracking client bound as the core binds one (base URL, headers, timeouts)."""
    values = {
        "customer_id": emulator.DEFAULT_CUSTOMER_ID,
        "tracking_url": base_url,
        "api_url": base_url,
        "api_key": emulator.DEFAULT_API_KEY,
        "line_backoff_max": 0.05,
        **settings,
    }
    connector = RaptorConnector(RaptorSettings(**values), ConnectorContext(name="raptor", project_dir=tmp_path))
    options = connector.client_options()
    connector.bind_http(httpx.Client(base_url=options.base_url, headers=dict(options.headers), timeout=timeout))
    return connector


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[..., RaptorConnector]]:
    """``make(base_url, **settings)``: a bound connector whose client is closed after the test."""
    made: list[RaptorConnector] = []

    def factory(base_url: str, **settings: Any) -> RaptorConnector:
        made.append(make_connector(base_url, tmp_path, **settings))
        return made[-1]

    yield factory
    for connector in made:
        connector.http.close()


@pytest.fixture
def connector(base_url: str, make: Callable[..., RaptorConnector]) -> RaptorConnector:
    return make(base_url)
