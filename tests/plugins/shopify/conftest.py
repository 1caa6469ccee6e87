"""Fixtures for the Shopify plugin's tests: an emulated shop on loopback, a source pointed at it, a Hub around it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import hub_plugins.shopify
import hub_plugins.standard
from hub import ConnectorContext
from hub.app import Hub
from hub.plugins import make_plugin_manager
from hub.sandbox import serve
from hub.schema import upgrade
from hub.sources.http import RetryPolicy, use_policy
from hub_plugins.shopify import emulator
from hub_plugins.shopify.settings import ShopifySettings
from hub_plugins.shopify.source import ShopifySource

ROOT = Path(__file__).resolve().parents[3]
STREAMS = ("customers", "orders", "products", "checkouts", "inventory")


class Shop:
    """An emulated shop being served: its URL, its in-process state and a client for its control API."""

    def __init__(self, app: Any, url: str) -> None:
        self.app = app
        self.state = app.state.shopify
        self.url = url
        self.control = httpx.Client(base_url=url, timeout=10.0)

    def put(self, stream: str, *records: dict[str, Any], updated_at: str | None = None) -> list[str]:
        body: dict[str, Any] = {"records": list(records) or [{}]}
        if updated_at:
            body["updated_at"] = updated_at
        response = self.control.post(f"/_emulator/records/{stream}", json=body)
        response.raise_for_status()
        return list(response.json()["keys"])

    def rest(self, stream: str, key: str) -> dict[str, Any]:
        return dict(self.control.get(f"/_emulator/records/{stream}/{key}").json())

    def config(self, **values: Any) -> None:
        self.control.post("/_emulator/config", json=values).raise_for_status()

    def graphql(self, query: str, variables: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
        return self.control.post(
            "/admin/api/2025-07/graphql.json",
            json={"query": query, "variables": variables or {}},
            headers={"X-Shopify-Access-Token": emulator.DEFAULT_TOKEN, **headers},
        )


@pytest.fixture
def shop() -> Iterator[Shop]:
    app = emulator.app()
    with use_policy(RetryPolicy(attempts=8, backoff=0.01, max_backoff=0.05)), serve(app) as url:
        served = Shop(app, url)
        try:
            yield served
        finally:
            app.state.shopify.webhooks.stop()
            served.control.close()


@pytest.fixture
def make_source(tmp_path: Path) -> Iterator[Callable[..., ShopifySource]]:
    """``make_source(shop, batch_size=5, **settings)``: a ShopifySource on the emulator, closed after the test."""
    made: list[ShopifySource] = []

    def make(shop: Shop, *, batch_size: int = 5000, **settings: Any) -> ShopifySource:
        parsed = ShopifySettings(**{**emulator.settings(shop.url), **settings})
        context = ConnectorContext(name="shop", project_dir=tmp_path, extra={"batch_size": batch_size})
        source = ShopifySource(parsed, context)
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


@pytest.fixture
def make_hub(tmp_path: Path) -> Iterator[Callable[..., Hub]]:
    """``make_hub(shop, **settings)``: a Hub on SQLite with connector ``shop`` on the emulator and the shipped
    mappings."""
    hubs: list[Hub] = []

    def make(shop: Shop, **settings: Any) -> Hub:
        config = {
            "database": {"url": f"sqlite:///{tmp_path / 'hub.db'}"},
            "timezone": "Europe/Oslo",
            "batch_size": 50,
            "connectors": {
                "shop": {
                    "plugin": "shopify",
                    "mapping": {s: str(ROOT / "mappings" / f"shopify_{s}.yaml") for s in STREAMS},
                    "settings": {**emulator.settings(shop.url), **settings},
                }
            },
        }
        path = tmp_path / "hub.yaml"
        path.write_text(json.dumps(config), encoding="utf-8")
        pm = make_plugin_manager(entrypoints=False, plugins=[hub_plugins.standard, hub_plugins.shopify])
        hub = Hub.load(path, pm=pm, project_dir=tmp_path)
        upgrade(hub.engine)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        connector = hub._connectors.get("shop")
        if isinstance(connector, ShopifySource):
            connector.close()
        hub.close()
