"""Settings of the ``webhook`` source: the shared secret, where the signature and the topic are, and which topic
feeds which stream.

Shopify (the defaults)::

    settings:
      secret: ${SHOPIFY_WEBHOOK_SECRET}     # the app's client secret, or the notification key of the shop admin
      topics: {orders/create: orders, orders/updated: orders, carts/update: carts}

WooCommerce::

    settings:
      secret: ${WOO_WEBHOOK_SECRET}         # the "Secret" of each webhook (WooCommerce > Settings > Advanced)
      signature_header: X-WC-Webhook-Signature
      topic_header: X-WC-Webhook-Topic
      topics: {order.created: orders, order.updated: orders}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from hub import ConnectorSettings

DEFAULT_MAX_BODY = 5 * 1024 * 1024


class WebhookSettings(ConnectorSettings):
    """How a pushed request is authenticated and routed to a stream."""

    secret: SecretStr = Field(description="the shared secret the sender signs each body with (use ${VAR})")
    signature_header: str = Field(
        default="X-Shopify-Hmac-Sha256",
        min_length=1,
        description="the header holding the HMAC-SHA256 of the raw body (WooCommerce: X-WC-Webhook-Signature)",
    )
    encoding: Literal["base64", "hex"] = Field(
        default="base64", description="how the signature is written: base64 (Shopify, WooCommerce) or hex"
    )
    signature_prefix: str = Field(
        default="", description="text before the signature in its header, e.g. 'sha256=' (GitHub-style senders)"
    )
    topic_header: str = Field(
        default="X-Shopify-Topic",
        min_length=1,
        description="the header naming the event (WooCommerce: X-WC-Webhook-Topic)",
    )
    topics: dict[str, str] = Field(
        min_length=1,
        description="topic -> stream, e.g. {orders/create: orders}; the connector's mapping: applies per stream",
    )
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY, gt=0, description="a larger body is refused with 413 before it is read whole"
    )

    @field_validator("secret")
    @classmethod
    def _secret_not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            # An empty key would make every forged request verify: refuse to start rather than accept anything.
            raise ValueError("the webhook secret is empty; set it (e.g. secret: ${SHOPIFY_WEBHOOK_SECRET})")
        return value

    @field_validator("topics")
    @classmethod
    def _streams_named(cls, value: dict[str, str]) -> dict[str, str]:
        for topic, stream in value.items():
            if not topic.strip() or not str(stream).strip():
                raise ValueError(f"topic {topic!r}: both the topic and its stream must be named")
        return value
