"""Settings of the ``shopify`` source (the ``settings:`` block of a ``plugin: shopify`` connector).

::

    settings:
      shop_url: https://acme.myshopify.com          # or the emulator: http://127.0.0.1:8770
      access_token: ${SHOPIFY_ACCESS_TOKEN}         # Admin API access token (shpat_...)
      api_version: "2025-07"                        # pinned: a new quarterly version is a deliberate change
      webhook_secret: ${SHOPIFY_WEBHOOK_SECRET}     # the app's client secret; only for hub run's /webhooks/<name>
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator

from hub import ConnectorSettings
from hub.cursors import Duration

StreamName = Literal["customers", "orders", "products", "checkouts", "inventory"]
ALL_STREAMS: tuple[StreamName, ...] = ("customers", "orders", "products", "checkouts", "inventory")

#: Webhook topic -> stream. ``refunds/create`` feeds ``orders``: the plugin reads the refunded order whole.
DEFAULT_TOPICS: dict[str, str] = {
    "orders/create": "orders",
    "orders/updated": "orders",
    "refunds/create": "orders",
    "customers/create": "customers",
    "customers/update": "customers",
    "checkouts/create": "checkouts",
    "checkouts/update": "checkouts",
}
DEFAULT_MAX_BODY = 5 * 1024 * 1024


class ShopifySettings(ConnectorSettings):
    """Where the shop is, the pinned API version, how it is read, and how its webhooks are checked."""

    shop_url: AnyHttpUrl = Field(description="the shop's admin origin, e.g. https://acme.myshopify.com")
    access_token: SecretStr = Field(description="Admin API access token, sent as X-Shopify-Access-Token")
    api_version: str = Field(
        default="2025-07",
        pattern=r"^\d{4}-(01|04|07|10)$",
        description="the Admin API version every request names (quarterly: YYYY-01, -04, -07, -10)",
    )
    streams: list[StreamName] = Field(
        default_factory=lambda: list(ALL_STREAMS),
        min_length=1,
        description="streams to read: customers, orders, products, checkouts, inventory",
    )
    first_load: Literal["bulk", "pages"] = Field(
        default="bulk",
        description="bulk: the first read of a stream is one bulk operation (JSONL); pages: paginated queries",
    )
    page_size: int | None = Field(
        default=None,
        ge=1,
        le=250,
        description="records per GraphQL page; default per stream, sized to stay under the 1000-point query cost",
    )
    lag: Duration = Field(
        default=timedelta(0),
        description="re-read changes up to this long before the cursor (clock skew between Shopify's servers)",
    )
    timeout: float = Field(default=30.0, gt=0, description="seconds to wait for an answer before retrying")
    bulk_poll_interval: float = Field(default=2.0, gt=0, description="seconds between polls of a bulk operation")
    bulk_timeout: Duration = Field(
        default=timedelta(hours=6), description="give up on a bulk operation (and read pages) after this long"
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="the app's client secret that signs webhooks (X-Shopify-Hmac-Sha256)"
    )
    topics: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_TOPICS),
        description="webhook topic -> stream, e.g. {orders/create: orders}",
    )
    webhook_memory: int = Field(
        default=50_000, ge=100, description="delivery ids and record versions remembered to drop duplicates"
    )
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY, gt=0, description="a larger webhook body is refused (413)")

    @field_validator("webhook_secret")
    @classmethod
    def _secret_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("the webhook secret is empty; set it or leave webhook_secret out")
        return value

    @field_validator("topics")
    @classmethod
    def _known_streams(cls, value: dict[str, str]) -> dict[str, str]:
        for topic, stream in value.items():
            if stream not in ALL_STREAMS:
                raise ValueError(f"topic {topic!r}: unknown stream {stream!r}; streams are {', '.join(ALL_STREAMS)}")
        return value

    def origin(self) -> str:
        """The shop URL without a trailing slash."""
        return str(self.shop_url).rstrip("/")

    def graphql_path(self) -> str:
        return f"/admin/api/{self.api_version}/graphql.json"
