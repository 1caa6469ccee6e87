"""Fixtures for the WooCommerce tests: an emulated shop on loopback, a source pointed at it, a Hub around it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import hub_plugins.standard
import hub_plugins.woocommerce
from hub import ConnectorContext
from hub.app import Hub
from hub.plugins import make_plugin_manager
from hub.sandbox import serve
from hub.schema import upgrade
from hub.sources.http import RetryPolicy, use_policy
from hub_plugins.woocommerce import emulator
from hub_plugins.woocommerce._state import ShopState
from hub_plugins.woocommerce.settings import WooCommerceSettings
from hub_plugins.woocommerce.source import WooCommerceSource

ROOT = Path(__file__).resolve().parents[3]
STREAMS = ("customers", "orders", "products")


class Shop:
    """An emulated shop being served: its URL, its in-process state and a client for its control API."""

    def __init__(self, app: Any, url: str) -> None:
        self.app = app
        self.state: ShopState = app.state.woocommerce
        self.url = url
        self.client = httpx.Client(base_url=url, timeout=10.0)

    def put(self, stream: str, *records: dict[str, Any], updated_at: str | None = None) -> list[str]:
        body: dict[str, Any] = {"records": list(records) or [{}]}
        if updated_at:
            body["updated_at"] = updated_at
        response = self.client.post(f"/_emulator/records/{stream}", json=body)
        response.raise_for_status()
        return list(response.json()["keys"])

    def delete(self, stream: str, key: str, at: str | None = None) -> None:
        self.client.delete(f"/_emulator/records/{stream}/{key}", params={"at": at} if at else None).raise_for_status()


@pytest.fixture
def shop() -> Iterator[Shop]:
    app = emulator.app()
    with use_policy(RetryPolicy(attempts=8, backoff=0.01, max_backoff=0.05)), serve(app) as url:
        served = Shop(app, url)
        try:
            yield served
        finally:
            served.state.sender.stop()
            served.client.close()


MakeSource = Callable[..., WooCommerceSource]


@pytest.fixture
def make_source(tmp_path: Path) -> Iterator[MakeSource]:
    """``make_source(shop, **settings)``: a source on the emulator (pages of 5, customers read every time)."""
    made: list[WooCommerceSource] = []

    def make(shop: Shop, **settings: Any) -> WooCommerceSource:
        given = {**emulator.settings(shop.url), "page_size": 5, "customer_scan_every": "0s", **settings}
        source = WooCommerceSource(WooCommerceSettings(**given), ConnectorContext(name="woo", project_dir=tmp_path))
        made.append(source)
        return source

    yield make
    for source in made:
        source.close()


def ids(records: list[dict[str, Any]]) -> list[str]:
    """The ids of the good records (no error records, no tombstones), in order."""
    return [str(r["id"]) for r in records if "_error" not in r and not r.get("_deleted")]


@pytest.fixture
def make_hub(tmp_path: Path) -> Iterator[Callable[..., Hub]]:
    """``make_hub(shop, **settings)``: a Hub on SQLite with connector ``woo`` on the emulator and the shipped
    mappings."""
    hubs: list[Hub] = []

    def make(shop: Shop, **settings: Any) -> Hub:
        config = {
            "database": {"url": f"sqlite:///{tmp_path / 'hub.db'}"},
            "timezone": "Europe/Oslo",
            "batch_size": 50,
            "connectors": {
                "woo": {
                    "plugin": "woocommerce",
                    "mapping": {s: str(ROOT / "mappings" / f"woocommerce_{s}.yaml") for s in STREAMS},
                    "settings": {**emulator.settings(shop.url), "customer_scan_every": "0s", **settings},
                }
            },
        }
        path = tmp_path / "hub.yaml"
        path.write_text(json.dumps(config), encoding="utf-8")
        pm = make_plugin_manager(entrypoints=False, plugins=[hub_plugins.standard, hub_plugins.woocommerce])
        hub = Hub.load(path, pm=pm, project_dir=tmp_path)
        upgrade(hub.engine)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        connector = hub._connectors.get("woo")
        if isinstance(connector, WooCommerceSource):
            connector.close()
        hub.close()
