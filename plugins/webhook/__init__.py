"""Built-in plugin: the ``webhook`` source, records pushed by a shop (Shopify, WooCommerce) to ``hub run``.

The daemon's ``POST /webhooks/{connector}`` verifies each request with :meth:`WebhookSource.verify` and turns its
body into raw records with :meth:`WebhookSource.records`; they then go through the stream's mapping, identity
resolution and load exactly as a synced batch does. ``hub sync`` reads nothing from it: webhooks are push-only.
"""

from hub import hookimpl
from hub_plugins.webhook.source import WebhookSource


@hookimpl
def hub_connector_types() -> list[type[WebhookSource]]:
    return [WebhookSource]
