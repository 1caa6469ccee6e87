"""What ``hub run`` serves for Raptor (through ``hub_http_routes``): each ``raptor`` connector's product feed.

Mounted by the daemon under ``/plugins/raptor``, so the feed of connector ``raptor`` in CSV is
``http://<daemon>/plugins/raptor/raptor/products.csv``: the URL to give Raptor (Raptor pulls it without a password,
so expose only that path to the internet, e.g. through a reverse proxy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from hub_plugins.raptor.feed import MEDIA_TYPES, encode, product_rows
from hub_plugins.raptor.settings import FeedSettings, RaptorSettings

if TYPE_CHECKING:
    from hub.app import Hub

CONNECTOR_TYPE = "raptor"


def feed_path(connector: str, feed: FeedSettings) -> str:
    """The feed's path below the plugin's mount point."""
    return f"/{connector}/products.{feed.format}"


def feed_routes(hub: Hub) -> list[BaseRoute]:
    """One route per enabled ``raptor`` connector; the database is read only when the feed is requested."""
    routes: list[BaseRoute] = []
    for name, connector in hub.config.connectors.items():
        if connector.plugin != CONNECTOR_TYPE or not connector.enabled:
            continue
        assert isinstance(connector.settings, RaptorSettings)
        feed = connector.settings.feed
        routes.append(Route(feed_path(name, feed), _feed_endpoint(hub, feed), methods=["GET"]))
    return routes


def _feed_endpoint(hub: Hub, feed: FeedSettings) -> Callable[[Request], Response]:
    def serve_feed(request: Request) -> Response:
        # A sync iterator: Starlette pulls it on its thread pool, so the database reads never block the loop.
        return StreamingResponse(encode(product_rows(hub.engine, feed), feed), media_type=MEDIA_TYPES[feed.format])

    return serve_feed
