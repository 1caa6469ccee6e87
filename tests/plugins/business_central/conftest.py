"""Fixtures: one loopback server per module in front of a fresh Business Central emulator per test, sources pointed
at it, and a Hub that syncs it with the shipped mappings.

Starting uvicorn costs a fifth of a second, so the server is shared; what it serves is swapped for a fresh
emulator (fresh state) by every test. The switch records the API requests it passed, with their headers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from starlette.applications import Starlette

from hub import ConnectorContext
from hub.app import Hub
from hub.plugins import make_plugin_manager
from hub.sandbox import serve
from hub.schema import upgrade
from hub.sources.http import RetryPolicy, use_policy
from hub_plugins import business_central, standard
from hub_plugins.business_central import emulator
from hub_plugins.business_central._state import BcState
from hub_plugins.business_central.settings import BusinessCentralSettings
from hub_plugins.business_central.source import BusinessCentralSource

ROOT = Path(__file__).resolve().parents[3]
MAPPINGS = {
    "customers": "bc_customers.yaml",
    "contacts": "bc_contacts.yaml",
    "items": "bc_items.yaml",
    "salesInvoices": "bc_invoices.yaml",
    "salesCreditMemos": "bc_credit_memos.yaml",
}


@dataclass(slots=True)
class Call:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass(slots=True)
class Switch:
    """ASGI app that forwards to ``app`` and records every request outside ``/_emulator/``."""

    app: Any = None
    calls: list[Call] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_emulator/"):
            query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            self.calls.append(Call(scope["method"], scope["path"], query, headers))
        await self.app(scope, receive, send)

    def api_calls(self) -> list[Call]:
        return [c for c in self.calls if "/api/v2.0/" in c.path]


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
def state(app: Starlette) -> BcState:
    return app.state.bc  # type: ignore[no-any-return]


@pytest.fixture
def source(app: Starlette, url: str, tmp_path: Path) -> Iterator[Callable[..., BusinessCentralSource]]:
    """Build sources for the emulator at ``url``: ``source(page_size=2)``; closed afterwards."""
    made: list[BusinessCentralSource] = []

    def make(**overrides: Any) -> BusinessCentralSource:
        settings = BusinessCentralSettings.model_validate({**emulator.settings(url), **overrides})
        made.append(BusinessCentralSource(settings, ConnectorContext(name="erp", project_dir=tmp_path)))
        return made[-1]

    with use_policy(RetryPolicy(backoff=0.01, max_backoff=0.05)):
        yield make
    for each in made:
        each.close()


@pytest.fixture
def hub(app: Starlette, url: str, tmp_path: Path) -> Iterator[Hub]:
    """A project whose ``erp`` connector reads the emulator with the shipped mappings, pages of 3."""
    config = {
        "database": {"url": f"sqlite:///{tmp_path / 'hub.db'}"},
        "timezone": "Europe/Oslo",
        "batch_size": 3,
        "connectors": {
            "erp": {
                "plugin": "business_central",
                "mapping": {stream: str(ROOT / "mappings" / file) for stream, file in MAPPINGS.items()},
                "settings": {**emulator.settings(url), "page_size": 3},
            }
        },
    }
    path = tmp_path / "hub.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    loaded = Hub.load(
        path, pm=make_plugin_manager(entrypoints=False, plugins=[standard, business_central]), project_dir=tmp_path
    )
    upgrade(loaded.engine)
    with use_policy(RetryPolicy(backoff=0.01, max_backoff=0.05)):
        yield loaded
    connector = loaded._connectors.get("erp")
    if isinstance(connector, BusinessCentralSource):
        connector.close()
    loaded.close()
