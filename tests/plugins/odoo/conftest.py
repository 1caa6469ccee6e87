"""Fixtures: one loopback server per module in front of a fresh Odoo emulator per test, sources pointed at it over
either protocol, and a Hub that syncs it with the shipped mappings.

Starting uvicorn costs a fifth of a second, so the server is shared; what it serves is swapped for a fresh
emulator (fresh state) by every test. The switch records the requests it passed, with their JSON bodies.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from hub import ConnectorContext
from hub.app import Hub
from hub.plugins import make_plugin_manager
from hub.sandbox import serve
from hub.schema import upgrade
from hub.sources.http import RetryPolicy, use_policy
from hub_plugins import odoo, standard
from hub_plugins.odoo import emulator
from hub_plugins.odoo._state import OdooState
from hub_plugins.odoo.settings import OdooSettings
from hub_plugins.odoo.source import OdooSource

ROOT = Path(__file__).resolve().parents[3]
MAPPINGS = {"partners": "odoo_partners.yaml", "orders": "odoo_orders.yaml", "products": "odoo_products.yaml"}


@dataclass(slots=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass(slots=True)
class Switch:
    """ASGI app that forwards to ``app`` and records every request outside ``/_emulator/`` with its JSON body."""

    app: Any = None
    calls: list[Call] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator/"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.calls.append(Call(scope["method"], scope["path"], headers, json.loads(raw) if raw else None))
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": raw, "more_body": False}

        await self.app(scope, replay, send)

    def orm(self) -> list[tuple[str, str]]:
        """(model, method) of every ORM call, over either protocol."""
        found = []
        for call in self.calls:
            if call.path.startswith("/json/2/"):
                _, _, _, model, method = call.path.split("/")
                found.append((model, method))
            elif call.path == "/jsonrpc" and call.body["params"]["method"] == "execute_kw":
                found.append((call.body["params"]["args"][3], call.body["params"]["args"][4]))
        return found

    def arguments(self, method: str = "search_read") -> list[dict[str, Any]]:
        """The named arguments of every call of ``method``, over either protocol."""
        found = []
        for call in self.calls:
            if call.path.startswith("/json/2/") and call.path.endswith(f"/{method}"):
                found.append(call.body)
            elif (
                call.path == "/jsonrpc"
                and call.body["params"]["method"] == "execute_kw"
                and (call.body["params"]["args"][4] == method)
            ):
                found.append(call.body["params"]["args"][6])
        return found


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
def state(app: Starlette) -> OdooState:
    return app.state.odoo  # type: ignore[no-any-return]


#: Mark a test to run over both protocols (a test without it runs over JSON-2).
BOTH = pytest.mark.parametrize("protocol", ["json2", "jsonrpc"])


@pytest.fixture
def protocol() -> str:
    return "json2"


@pytest.fixture
def source(app: Starlette, url: str, tmp_path: Path, protocol: str) -> Iterator[Callable[..., OdooSource]]:
    """Build sources for the emulator at ``url`` over ``protocol``: ``source(page_size=2)``; closed afterwards."""
    made: list[OdooSource] = []

    def make(**overrides: Any) -> OdooSource:
        settings = OdooSettings.model_validate({**emulator.settings(url), "protocol": protocol, **overrides})
        made.append(OdooSource(settings, ConnectorContext(name="erp", project_dir=tmp_path)))
        return made[-1]

    with use_policy(RetryPolicy(backoff=0.01, max_backoff=0.05)):
        yield make
    for each in made:
        each.close()


@pytest.fixture
def hub(app: Starlette, url: str, tmp_path: Path, protocol: str) -> Iterator[Hub]:
    """A project whose ``erp`` connector reads the emulator over ``protocol`` with the shipped mappings, pages of 3."""
    config = {
        "database": {"url": f"sqlite:///{tmp_path / 'hub.db'}"},
        "timezone": "Europe/Oslo",
        "batch_size": 3,
        "connectors": {
            "erp": {
                "plugin": "odoo",
                "mapping": {stream: str(ROOT / "mappings" / file) for stream, file in MAPPINGS.items()},
                "settings": {**emulator.settings(url), "protocol": protocol, "page_size": 3},
            }
        },
    }
    path = tmp_path / "hub.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    pm = make_plugin_manager(entrypoints=False, plugins=[standard, odoo])
    loaded = Hub.load(path, pm=pm, project_dir=tmp_path)
    upgrade(loaded.engine)
    with use_policy(RetryPolicy(backoff=0.01, max_backoff=0.05)):
        yield loaded
    connector = loaded._connectors.get("erp")
    if isinstance(connector, OdooSource):
        connector.close()
    loaded.close()
