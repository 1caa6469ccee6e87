"""Built-in plugin: the Agillic destination (``plugin: agillic``) and its emulator (``hub sandbox``).

See ``plugins/agillic/README.md`` for what each message kind sends, its delivery guarantee, the settings, and how
the emulator differs from the real API.
"""

from __future__ import annotations

from hub import hookimpl
from hub.sandbox import Emulator
from hub_plugins.agillic import emulator
from hub_plugins.agillic.destination import AgillicDestination


@hookimpl
def hub_connector_types() -> list[type[AgillicDestination]]:
    return [AgillicDestination]


def emulator_settings(base_url: str) -> dict[str, str]:
    """Connector settings that point a configuration at an emulator serving ``base_url``."""
    return {
        "base_url": base_url,
        "client_id": emulator.DEFAULT_CLIENT_ID,
        "client_secret": emulator.DEFAULT_CLIENT_SECRET,
    }


@hookimpl
def hub_emulators() -> list[Emulator]:
    return [
        Emulator(
            name="agillic",
            connector_type="agillic",
            app=emulator.app,
            settings=emulator_settings,
            default_port=emulator.DEFAULT_PORT,
            description="Agillic REST API: OAuth2, recipients, One-to-Many PURCHASES, events, flows, target groups",
        )
    ]
