"""Built-in plugin: the Raptor connector (``plugin: raptor``: buy events, product feed, recommendations), its
emulator (``hub sandbox``), ``hub raptor feed`` and the feed's route in ``hub run``'s HTTP server.

See ``plugins/raptor/README.md`` for what is sent, how, and the delivery guarantee.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from starlette.routing import BaseRoute

from hub import hookimpl
from hub.sandbox import Emulator
from hub_plugins.raptor import emulator
from hub_plugins.raptor.command import add_commands
from hub_plugins.raptor.connector import RaptorConnector
from hub_plugins.raptor.routes import feed_routes

if TYPE_CHECKING:
    from hub.app import Hub


@hookimpl
def hub_connector_types() -> list[type[RaptorConnector]]:
    return [RaptorConnector]


@hookimpl
def hub_emulators() -> list[Emulator]:
    return [
        Emulator(
            name="raptor",
            connector_type="raptor",
            app=emulator.app,
            settings=lambda base_url: {
                "customer_id": emulator.DEFAULT_CUSTOMER_ID,
                "tracking_url": base_url,
                "api_url": base_url,
                "api_key": emulator.DEFAULT_API_KEY,
            },
            default_port=emulator.DEFAULT_PORT,
            description="Raptor tracking (buy events) and recommendations API (in memory)",
        )
    ]


@hookimpl
def hub_commands(cli: typer.Typer) -> None:
    add_commands(cli)


@hookimpl
def hub_http_routes(hub: Hub) -> list[BaseRoute]:
    return feed_routes(hub)
