"""A tiny test plugin with a recommender connector that is as slow as its settings say, and a hub built on it.

``slowrec`` is a real connector type, registered through ``hub_connector_types`` and built by the hub from
hub.yaml like Raptor would be. It answers ``answer`` after ``delay`` seconds for the customers in ``slow_for``
(everyone when empty) and at once for the others, and it ignores its ``timeout`` on purpose: the core, not the
connector, must keep the wait bounded. ``esp`` is a destination that only has to exist for triggers' ``to:``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.app import Hub
from hub.connectors import (
    ClientOptions,
    Connector,
    ConnectorSettings,
    Destination,
    KindSpec,
    Recommendation,
    RecommendationRequest,
    Recommender,
)
from hub.plugins import hookimpl, make_plugin_manager
from hub.schema import upgrade


class SlowSettings(ConnectorSettings):
    delay: float = 0.0
    slow_for: list[int] = []
    answer: list[str] = ["GAME8", "GAME7"]
    fail: bool = False


class SlowRecommender(Recommender):
    """A recommendation service that takes ``delay`` seconds for some customers."""

    type = "slowrec"
    Settings = SlowSettings

    def __init__(self, settings: ConnectorSettings, context: Any) -> None:
        super().__init__(settings, context)
        self.calls: list[RecommendationRequest] = []
        self._lock = threading.Lock()

    def recommend(self, request: RecommendationRequest, *, timeout: float) -> list[Recommendation]:
        settings = self.settings
        assert isinstance(settings, SlowSettings)
        with self._lock:
            self.calls.append(request)
        if settings.fail:
            raise ConnectionError("recommendation service unavailable")
        if not settings.slow_for or request.customer_id in settings.slow_for:
            time.sleep(settings.delay)
        return [Recommendation(sku, score=1.0, reason="slowrec's model") for sku in settings.answer]


class Esp(Destination):
    type = "testesp"
    kinds = {"trigger": KindSpec()}

    def client_options(self) -> ClientOptions:
        return ClientOptions(base_url="http://127.0.0.1:9")


class SlowPlugin:
    @hookimpl
    def hub_connector_types(self) -> list[type[Connector]]:
        return [SlowRecommender, Esp]


@pytest.fixture
def make_hub(tmp_path: Path) -> Iterator[Callable[..., Hub]]:
    """Build a hub from a hub.yaml of ``blocks`` (with ``esp`` and the database added), its schema upgraded."""
    made: list[Hub] = []

    def make(**blocks: Any) -> Hub:
        connectors = {"esp": {"plugin": "testesp"}, **blocks.pop("connectors", {})}
        config = {
            "database": {"url": f"sqlite:///{tmp_path / 'hub.db'}"},
            "project_dir": str(tmp_path),
            "connectors": connectors,
            **blocks,
        }
        path = tmp_path / "hub.yaml"
        path.write_text(json.dumps(config), encoding="utf-8")
        hub = Hub.load(path, pm=make_plugin_manager(entrypoints=False, plugins=[SlowPlugin()]))
        upgrade(hub.engine)
        made.append(hub)
        return hub

    yield make
    for hub in made:
        hub.close()
