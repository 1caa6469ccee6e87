"""Built-in plugin: the Microsoft Dynamics 365 Business Central source (``plugin: business_central``) and its API
v2.0 emulator (``hub sandbox``).

See ``plugins/business_central/README.md`` for the streams, their cursor, deletions and the B2B customers.
"""

from __future__ import annotations

from hub import hookimpl
from hub.sandbox import Emulator
from hub_plugins.business_central.emulator import EMULATOR
from hub_plugins.business_central.source import BusinessCentralSource


@hookimpl
def hub_connector_types() -> list[type[BusinessCentralSource]]:
    return [BusinessCentralSource]


@hookimpl
def hub_emulators() -> list[Emulator]:
    return [EMULATOR]
