"""Built-in plugin: the Odoo source (``plugin: odoo``, JSON-2 or JSON-RPC) and its emulator (``hub sandbox``).

See ``plugins/odoo/README.md`` for the streams, their cursor, deletions and the B2B partners.
"""

from __future__ import annotations

from hub import hookimpl
from hub.sandbox import Emulator
from hub_plugins.odoo.emulator import EMULATOR
from hub_plugins.odoo.source import OdooSource


@hookimpl
def hub_connector_types() -> list[type[OdooSource]]:
    return [OdooSource]


@hookimpl
def hub_emulators() -> list[Emulator]:
    return [EMULATOR]
