"""Settings of the ``akeneo`` source (the ``settings:`` block of a ``plugin: akeneo`` connector)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator

from hub.connectors import ConnectorSettings
from hub.cursors import Duration

#: The relation kinds of hub's unified model (``product_relation.kind``).
RelationKind = Literal["accessory", "cross_sell", "replacement"]


class AkeneoSettings(ConnectorSettings):
    """Where the PIM is, the API connection's credentials, and how Akeneo's catalogue becomes hub's products."""

    base_url: AnyHttpUrl = Field(description="the PIM's address, e.g. https://acme.cloud.akeneo.com")
    client_id: str = Field(min_length=1, description="the connection's client ID (Connect > Connection settings)")
    secret: SecretStr = Field(description="the connection's secret")
    username: str = Field(min_length=1, description="the connection's API user")
    password: SecretStr = Field(description="the API user's password")

    locale: str = Field(default="en_US", description="the locale of names and labels (nb_NO, sv_SE, en_US...)")
    fallback_locale: str | None = Field(
        default="en_US", description="used when a name or label has no value in `locale`; then the code is used"
    )
    scope: str | None = Field(default=None, description="the channel of scopable values (ecommerce, print...)")
    identifier_attribute: str = Field(default="sku", description="the identifier attribute that holds the SKU")
    name_attribute: str = Field(default="name", description="the attribute that holds the product name")
    brand_attribute: str | None = Field(
        default="brand", description="the attribute that holds the brand: a simple select gives its option label"
    )
    price_attribute: str | None = Field(default="price", description="a price collection attribute")
    currency: str = Field(default="NOK", pattern=r"^[A-Z]{3}$", description="the price of this currency is read")
    accessory_attribute: str | None = Field(
        default=None, description="a yes/no attribute that marks accessories (is_accessory); none: never set"
    )
    group_from: Literal["family", "category"] = Field(
        default="family", description="product_group is the product's family, or its first category"
    )
    group_as: Literal["code", "label"] = Field(
        default="code", description="product_group is the family's (or category's) code, or its label in `locale`"
    )
    associations: dict[str, RelationKind] = Field(
        default_factory=lambda: {"ACCESSORIES": "accessory"},
        min_length=1,
        description="association type code -> relation kind; e.g. {ACCESSORIES: accessory, X_SELL: cross_sell}",
    )

    page_size: int = Field(default=100, ge=1, le=100, description="products per request; Akeneo allows 100")
    settle: Duration = Field(
        default=timedelta(seconds=10),
        description=(
            "products changed this close to a read's start do not move the cursor, so a change made during the "
            "read, or one Akeneo's search index has not caught up with, is read again next time"
        ),
    )
    server_timezone: str = Field(
        default="UTC", description="the PIM server's time zone, in which `updated` filters are written (SaaS: UTC)"
    )
    rate_limit: float | None = Field(default=None, gt=0, description="requests per second at most; none: unpaced")
    timeout: float = Field(default=30.0, gt=0, description="seconds to wait for an answer")

    @field_validator("server_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone such as UTC or Europe/Oslo") from None
        return value

    def url(self) -> str:
        """The base URL without a trailing slash."""
        return str(self.base_url).rstrip("/")
