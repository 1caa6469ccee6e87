"""Built-in plugin: the WooCommerce source (``plugin: woocommerce``) and its REST API emulator (``hub sandbox``).

See ``plugins/woocommerce/README.md`` for the streams, their cursors, deletions and webhook topics.
"""

from __future__ import annotations

from hub import hookimpl
from hub.sandbox import Emulator
from hub_plugins.woocommerce.emulator import EMULATOR
from hub_plugins.woocommerce.source import WooCommerceSource


@hookimpl
def hub_connector_types() -> list[type[WooCommerceSource]]:
    return [WooCommerceSource]


@hookimpl
def hub_emulators() -> list[Emulator]:
    return [EMULATOR]
