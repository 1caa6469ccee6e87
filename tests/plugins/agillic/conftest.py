"""Fixtures: a fresh Agillic emulator per test, served over real loopback HTTP, and destinations pointed at it
with their HTTP client built by the core (``make_client``: the real auth, limits and timeouts).

One server serves the whole session (starting and stopping uvicorn costs more than most tests); each test puts its
own fresh app behind it with ``use(app)``, so no state is shared.
"""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from hub.config._models import DeliveryConfig
from hub.connectors import ConnectorContext, Outgoing
from hub.delivery.http import make_client
from hub.delivery.outcomes import Outcome
from hub.sandbox.server import serve
from hub_plugins.agillic import emulator, emulator_settings
from hub_plugins.agillic._state import AgillicState
from hub_plugins.agillic.destination import AgillicDestination
from hub_plugins.agillic.settings import AgillicSettings


def keys(email: str | None = "ann@example.com", **extra: Any) -> dict[str, Any]:
    return {"customer_id": 12, "email": email, "phone": None, "member_no": None, "external_ids": {}, **extra}


def send(destination: AgillicDestination, kind: str, *views: dict[str, Any], **outgoing: Any) -> list[Outcome]:
    """``prepare`` and ``send`` the views as one batch, as the dispatcher does."""
    batch = [
        Outgoing(n, kind, 12, destination.prepare(kind, view), f"{kind}:{n}", **outgoing)
        for n, view in enumerate(views)
    ]
    return destination.send(kind, batch)


def token(client: httpx.Client) -> str:
    response = client.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": emulator.DEFAULT_CLIENT_ID,
            "client_secret": emulator.DEFAULT_CLIENT_SECRET,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


class _Current:
    """ASGI app that forwards to whichever app the current test put behind the shared server."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(scope="session")
def _server() -> Iterator[tuple[_Current, str]]:
    current = _Current()
    with serve(current) as url:
        yield current, url


@pytest.fixture
def use(_server: tuple[_Current, str]) -> Callable[[Any], str]:
    """``use(app)``: serve ``app`` (an emulator, or one wrapped in faults) for this test; returns its base URL."""

    def put(app: Any) -> str:
        _server[0].app = app
        return _server[1]

    return put


@pytest.fixture
def agillic_app() -> Starlette:
    return emulator.app()


@pytest.fixture
def state(agillic_app: Starlette) -> AgillicState:
    return agillic_app.state.agillic  # type: ignore[no-any-return]


@pytest.fixture
def base_url(agillic_app: Starlette, use: Callable[[Any], str]) -> str:
    return use(agillic_app)


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    """A raw client holding a valid token."""
    with httpx.Client(base_url=base_url, timeout=5) as http:
        http.headers["Authorization"] = f"Bearer {token(http)}"
        yield http


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[..., AgillicDestination]]:
    """``make(base_url, delivery={...}, **settings)``: a destination whose client the core built; closed after."""
    made: list[AgillicDestination] = []

    def factory(base_url: str, *, delivery: dict[str, Any] | None = None, **settings: Any) -> AgillicDestination:
        values = {**emulator_settings(base_url), **settings}
        context = ConnectorContext(name="agillic", project_dir=tmp_path, timezone="Europe/Copenhagen")
        destination = AgillicDestination(AgillicSettings(**values), context)
        config = DeliveryConfig.model_validate({"read_timeout": 2.0, **(delivery or {})})
        destination.bind_http(make_client(destination, config))
        made.append(destination)
        return destination

    yield factory
    for destination in made:
        destination.http.close()


@pytest.fixture
def destination(base_url: str, make: Callable[..., AgillicDestination]) -> AgillicDestination:
    return make(base_url, context_schema="HUB_TRIGGER")
