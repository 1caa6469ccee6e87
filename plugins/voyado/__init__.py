"""Built-in plugin: the Voyado Engage destination (``plugin: voyado``) and its emulator (``hub sandbox``).

See ``plugins/voyado/README.md`` for each message kind's delivery guarantee, the settings, and how the emulator
differs from the real API.
"""

from __future__ import annotations

import functools

from hub import hookimpl
from hub.sandbox import Emulator
from hub_plugins.voyado import emulator
from hub_plugins.voyado.destination import VoyadoDestination


@hookimpl
def hub_connector_types() -> list[type[VoyadoDestination]]:
    return [VoyadoDestination]


@hookimpl
def hub_emulators() -> list[Emulator]:
    return [
        Emulator(
            name="voyado",
            connector_type="voyado",
            # No rate limit by default, so a demo or a trial delivers at full speed; turn Engage's 200 requests/s
            # on with POST /_emulator/config {"rate_limit": 200}, or throttle with --faults rate_429=...
            app=functools.partial(emulator.app, rate_limit=None),
            settings=lambda base_url: {"base_url": base_url, "api_key": emulator.DEFAULT_API_KEY},
            default_port=emulator.DEFAULT_PORT,
            description="Voyado Engage API v2/v3: contacts, receipts, v2 orders, custom triggers (in memory)",
        )
    ]
