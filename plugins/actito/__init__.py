"""Built-in plugin: the Actito destination (``plugin: actito``) and its emulator (``hub sandbox``).

See ``plugins/actito/README.md`` for what each message kind sends and how, its delivery guarantee, when hub uses a
bulk import instead of one call per message, the settings, and how the emulator differs from the real API.
"""

from __future__ import annotations

import functools

from hub import hookimpl
from hub.sandbox import Emulator
from hub_plugins.actito import emulator
from hub_plugins.actito.destination import ActitoDestination


def emulator_settings(base_url: str) -> dict[str, str]:
    """Connector settings that point at an emulator served at ``base_url``."""
    return {
        "base_url": base_url,
        "api_key": emulator.DEFAULT_API_KEY,
        "entity": emulator.DEFAULT_ENTITY,
        "profile_table": emulator.DEFAULT_PROFILE_TABLE,
    }


@hookimpl
def hub_connector_types() -> list[type[ActitoDestination]]:
    return [ActitoDestination]


@hookimpl
def hub_emulators() -> list[Emulator]:
    return [
        Emulator(
            name="actito",
            connector_type="actito",
            # No call throttle by default, so a demo delivers at full speed; the concurrency cap and the import
            # quota stay on. Turn Actito's 100 calls a minute on with POST /_emulator/config
            # {"calls_per_minute": 100}.
            app=functools.partial(emulator.app, calls_per_minute=None),
            settings=emulator_settings,
            default_port=emulator.DEFAULT_PORT,
            description="Actito APIs: tokens, profiles, custom tables, bulk imports, transactional mail (in memory)",
        )
    ]
