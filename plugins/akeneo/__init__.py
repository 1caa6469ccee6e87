"""Built-in plugin: the Akeneo PIM source (``plugin: akeneo``) and its REST API emulator (``hub sandbox``).

See ``plugins/akeneo/README.md`` for the streams, their cursor, deletions and how associations become relations.
"""

from __future__ import annotations

from hub import hookimpl
from hub.sandbox import Emulator
from hub_plugins.akeneo.emulator import EMULATOR
from hub_plugins.akeneo.source import AkeneoSource


@hookimpl
def hub_connector_types() -> list[type[AkeneoSource]]:
    return [AkeneoSource]


@hookimpl
def hub_emulators() -> list[Emulator]:
    return [EMULATOR]
