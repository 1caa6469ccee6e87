"""Fixtures: a fresh Actito emulator per test, served over real loopback HTTP, and destinations pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from hub.sandbox.server import serve
from hub_plugins.actito import emulator
from hub_plugins.actito._state import ActitoState
from hub_plugins.actito.destination import ActitoDestination
from tests.plugins.actito._support import make_destination


@pytest.fixture
def actito_app() -> Starlette:
    return emulator.app(calls_per_minute=None)


@pytest.fixture
def state(actito_app: Starlette) -> ActitoState:
    return actito_app.state.actito  # type: ignore[no-any-return]


@pytest.fixture
def base_url(actito_app: Starlette) -> Iterator[str]:
    with serve(actito_app) as url:
        yield url


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Callable[..., ActitoDestination]]:
    """``make(base_url, **settings)``: a bound destination whose client is closed after the test."""
    made: list[ActitoDestination] = []

    def factory(base_url: str, **settings: Any) -> ActitoDestination:
        made.append(make_destination(base_url, tmp_path, **settings))
        return made[-1]

    yield factory
    for destination in made:
        destination.http.close()


@pytest.fixture
def destination(base_url: str, make: Callable[..., ActitoDestination]) -> ActitoDestination:
    return make(base_url)
