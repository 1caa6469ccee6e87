"""Settings of the ``woocommerce`` source (the ``settings:`` block of a ``plugin: woocommerce`` connector).

::

    settings:
      base_url: https://shop.example.no            # the WordPress home URL; the API is <base_url>/wp-json/wc/v3
      consumer_key: ${WOO_CONSUMER_KEY}            # ck_... (WooCommerce > Settings > Advanced > REST API), read
      consumer_secret: ${WOO_CONSUMER_SECRET}      # cs_...
      webhook_secret: ${WOO_WEBHOOK_SECRET}        # the "Secret" of the webhooks; only for hub run's /webhooks/<name>
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator

from hub import ConnectorSettings
from hub.cursors import Duration
from hub_plugins.woocommerce.oauth import AuthMode, SignatureMethod

StreamName = Literal["customers", "orders", "products"]
ALL_STREAMS: tuple[StreamName, ...] = ("customers", "orders", "products")
DEFAULT_MAX_BODY = 5 * 1024 * 1024
#: Webhook topic -> stream. Orders and products can be trashed and restored; customers are deleted for good.
DEFAULT_TOPICS: dict[str, StreamName] = {
    **{f"customer.{event}": "customers" for event in ("created", "updated", "deleted")},
    **{f"order.{event}": "orders" for event in ("created", "updated", "deleted", "restored")},
    **{f"product.{event}": "products" for event in ("created", "updated", "deleted", "restored")},
}


class WooCommerceSettings(ConnectorSettings):
    """Where the shop is, how hub signs in, what it reads, and how the shop's webhooks are checked."""

    base_url: AnyHttpUrl = Field(description="the WordPress home URL, e.g. https://shop.example.no")
    consumer_key: str = Field(min_length=1, description="the REST API consumer key (ck_...); read access suffices")
    consumer_secret: SecretStr = Field(description="the REST API consumer secret (cs_...)")
    auth: AuthMode = Field(
        default="auto",
        description=(
            "auto: HTTP Basic over https, OAuth 1.0a signatures over plain http (WooCommerce accepts Basic only "
            "over TLS); basic; query (key and secret as query parameters over https, for servers that drop the "
            "Authorization header); oauth1"
        ),
    )
    signature_method: SignatureMethod = Field(
        default="HMAC-SHA256", description="OAuth 1.0a signature method: HMAC-SHA256 or HMAC-SHA1"
    )
    api_path: str = Field(
        default="/wp-json/wc/v3", pattern=r"^/.*[^/]$", description="the REST API's path under base_url"
    )
    streams: list[StreamName] = Field(
        default_factory=lambda: list(ALL_STREAMS), min_length=1, description="streams: customers, orders, products"
    )
    page_size: int = Field(default=100, ge=2, le=100, description="records per request (per_page; at most 100)")
    timeout: float = Field(default=30.0, gt=0, description="seconds to wait for one answer")
    rate_limit: float | None = Field(
        default=None, gt=0, description="requests per second at most (WooCommerce has no limit; hosts may)"
    )
    customer_role: str = Field(
        default="customer", min_length=1, description="the role customers are listed with ('all': every user)"
    )
    customer_scan_every: Duration = Field(
        default=timedelta(hours=6),
        description=(
            "how often the customers stream reads every customer (the API has no changed-since filter; webhooks "
            "carry changes in between); a sync before that reads nothing. 0: every sync"
        ),
    )
    refunds: bool = Field(
        default=True, description="read each refunded order's refunds (lines, dates) so refunds load as returns"
    )
    trash: bool = Field(
        default=True, description="read trashed orders and products after the live ones and load them as deletions"
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="the webhooks' secret, for hub run's POST /webhooks/<name> (use ${VAR})"
    )
    topics: dict[str, StreamName] = Field(
        default_factory=lambda: dict(DEFAULT_TOPICS),
        description="webhook topic -> stream (X-WC-Webhook-Topic); *.deleted bodies become deletions",
    )
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY, gt=0, description="a larger webhook body is refused (413)")
    webhook_memory: int = Field(
        default=10_000, ge=0, description="records whose last webhook version is remembered, to drop stale copies"
    )

    @field_validator("webhook_secret")
    @classmethod
    def _secret_not_blank(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            # A blank key would make every forged delivery verify: refuse rather than accept anything.
            raise ValueError("the webhook secret is empty; set it or leave webhook_secret out")
        return value

    def api_url(self) -> str:
        """The REST API's root, ``<base_url>/wp-json/wc/v3``."""
        return str(self.base_url).rstrip("/") + self.api_path
