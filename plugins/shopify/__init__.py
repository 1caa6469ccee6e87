"""Built-in plugin: the Shopify source (``plugin: shopify``) and its GraphQL Admin API emulator (``hub sandbox``).

See ``plugins/shopify/README.md`` for the streams, their cursors, deletions and webhook topics. ``hub sandbox``
serves the emulator seeded with the demo's web shop (``hub_plugins.shopify.demo``); ``demo.BLANK`` is the same
emulator empty, for tests.
"""

from __future__ import annotations

from hub import hookimpl
from hub.sandbox import Emulator
from hub_plugins.shopify.demo import EMULATOR
from hub_plugins.shopify.source import ShopifySource


@hookimpl
def hub_connector_types() -> list[type[ShopifySource]]:
    return [ShopifySource]


@hookimpl
def hub_emulators() -> list[Emulator]:
    return [EMULATOR]
