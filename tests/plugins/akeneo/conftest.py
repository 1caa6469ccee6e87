"""Fixtures: one loopback server per module in front of a fresh Akeneo emulator per test, and sources pointed at it.

Starting uvicorn costs a fifth of a second, so the server is shared; what it serves is swapped for a fresh
emulator (fresh state) by every test. The switch also records the API requests it passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from hub import ConnectorContext
from hub.sandbox import serve
from hub.sources.http import RetryPolicy, use_policy
from hub_plugins.akeneo import emulator
from hub_plugins.akeneo._state import AkeneoState
from hub_plugins.akeneo.settings import AkeneoSettings
from hub_plugins.akeneo.source import AkeneoSource
from tests.plugins.akeneo._support import Switch


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Switch, str]]:
    switch = Switch()
    with serve(switch) as url:
        yield switch, url


@pytest.fixture
def switch(server: tuple[Switch, str]) -> Switch:
    return server[0]


@pytest.fixture
def url(server: tuple[Switch, str]) -> str:
    return server[1]


@pytest.fixture
def app(switch: Switch) -> Starlette:
    """A fresh, empty emulator, now served at ``url``."""
    switch.app, switch.calls = emulator.app(), []
    return switch.app


@pytest.fixture
def state(app: Starlette) -> AkeneoState:
    return app.state.akeneo  # type: ignore[no-any-return]


@pytest.fixture
def source(app: Starlette, url: str, tmp_path: Path) -> Iterator[Callable[..., AkeneoSource]]:
    """Build sources for the emulator at ``url``: ``source(page_size=2, locale="nb_NO")``; closed afterwards."""
    made: list[AkeneoSource] = []

    def make(**overrides: Any) -> AkeneoSource:
        settings = AkeneoSettings.model_validate({**emulator.settings(url), **overrides})
        made.append(AkeneoSource(settings, ConnectorContext(name="akeneo", project_dir=tmp_path)))
        return made[-1]

    with use_policy(RetryPolicy(backoff=0.01, max_backoff=0.05)):
        yield make
    for each in made:
        each.close()
