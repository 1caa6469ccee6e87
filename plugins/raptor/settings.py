"""Settings of the ``raptor`` connector (the ``settings:`` block of a ``plugin: raptor`` connector).

Three blocks besides the account: how purchases become tracking parameters (top level), how the product feed is
written (``feed:``) and how recommendations are fetched (``recommend:``).
"""

from __future__ import annotations

import re
from typing import Literal

from babel import Locale, UnknownLocaleError
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from hub.connectors import ConnectorSettings

#: What a positional tracking parameter can carry, per order line.
LineField = Literal[
    "event",
    "sku",
    "master_id",
    "order_id",
    "quantity",
    "unit_price",
    "line_total",
    "currency",
    "product_name",
    "product_group",
    "channel",
    "store",
]
#: Which customer key becomes ``ruid``; the first one a customer has is used.
UserKey = Literal["email", "member_no"]
#: Every positional parameter a buy event must carry (the event type, the product, the order).
REQUIRED_FIELDS: tuple[LineField, ...] = ("event", "sku", "order_id")
_POSITION = re.compile(r"^p[1-9]\d{0,2}$")
_RESERVED = {"ruid", "coid", "sid", "xuid", "reaid"}


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeedSettings(_Block):
    """The nightly product feed Raptor pulls: format, culture of the prices, and what the product table lacks."""

    format: Literal["csv", "json", "xml"] = Field(default="csv", description="the feed's format")
    culture: str = Field(
        default="en", description="the culture prices are written in, as Raptor's feed setting says (nb-NO, da-DK)"
    )
    price_pattern: str = Field(default="#,##0.00", description="a CLDR number pattern for prices")
    group_separator: str | None = Field(
        default=None,
        description="replaces the culture's thousands separator (nb-NO's is U+00A0); '' drops it; null keeps it",
    )
    csv_separator: str = Field(default=";", min_length=1, max_length=1, description="CSV column separator")
    master_id_pattern: str | None = Field(
        default=None,
        description="a regular expression whose first group, matched on the SKU, is the master id (variants of one "
        "product share it); without it every SKU is its own master",
    )
    in_stock: bool = Field(
        default=True,
        description="StockStatus of every product: hub's product table has no stock level (yet)",
    )
    batch_size: int = Field(default=2000, ge=1, description="products read per database round-trip")

    @field_validator("culture")
    @classmethod
    def _known_culture(cls, culture: str) -> str:
        try:
            Locale.parse(culture.replace("-", "_"))
        except (UnknownLocaleError, ValueError) as exc:
            raise ValueError(f"unknown culture {culture!r} (e.g. en, nb-NO, da-DK)") from exc
        return culture

    @field_validator("master_id_pattern")
    @classmethod
    def _one_group(cls, pattern: str | None) -> str | None:
        if pattern is None:
            return None
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        if compiled.groups < 1:
            raise ValueError("the pattern needs a group: its first group is the master id")
        return pattern


class RecommendSettings(_Block):
    """Raptor's recommendations API: which module answers for a customer and which for a product.

    Module method names are configured per account in Raptor's control panel; the defaults are the one seen in
    partner code (``GetUserRecommendations``) and an assumed product module.
    """

    user_method: str = Field(
        default="GetUserRecommendations", pattern=r"^[A-Za-z0-9_]+$", description="the module asked for a customer"
    )
    user_parameter: str = Field(default="UserIdentifier", min_length=1, description="its parameter (the ruid)")
    product_method: str = Field(
        default="GetOtherCustomersAlsoBought",
        pattern=r"^[A-Za-z0-9_]+$",
        description="the module asked for a product",
    )
    product_parameter: str = Field(default="ProductId", min_length=1, description="its parameter (the SKU)")
    fetch: int = Field(default=20, ge=1, le=100, description="how many to ask Raptor for (then exclude and cut)")
    max_products: int = Field(default=3, ge=1, description="products of one request asked about, at most")
    cache_ttl: float = Field(default=900.0, ge=0, description="seconds an answer is reused; 0 turns the cache off")
    cache_size: int = Field(default=10_000, ge=1, description="answers kept at most")
    cooldown: float = Field(
        default=30.0, ge=0, description="seconds no request is made after Raptor failed or was slow"
    )


class RaptorSettings(ConnectorSettings):
    """Which Raptor account, how buy events are built, and the feed and recommendation blocks."""

    customer_id: str = Field(
        pattern=r"^[A-Za-z0-9_-]+$", description="the Raptor account id, the {customerId} in tracking URLs"
    )
    tracking_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://t.raptorsmartadvisor.com"), description="the tracking host"
    )
    api_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://api.raptorsmartadvisor.com"), description="the recommendations API host"
    )
    api_key: SecretStr | None = Field(default=None, description="the recommendations API key (sent in the path)")
    user_agent: str = Field(default="hub/0.1", min_length=1, description="the User-Agent of every request")
    parameters: dict[str, LineField] = Field(
        default_factory=lambda: {"p1": "event", "p2": "sku", "p21": "order_id"},
        description="positional parameter -> what it carries, as mapped under Integrations > Live tracking",
    )
    static_parameters: dict[str, str] = Field(
        default_factory=lambda: {"source": "webhook"}, description="sent unchanged with every event"
    )
    user_keys: list[UserKey] = Field(
        default_factory=lambda: ["email", "member_no"],
        min_length=1,
        description="customer keys tried in order for ruid; a customer with none of them is not sent",
    )
    ruid_encoding: Literal["base64", "plain"] = Field(default="base64", description="how ruid is written")
    order_id: Literal["external_id", "source_external_id"] = Field(
        default="external_id",
        description="the order id sent: the order's own number, or `<source>:<number>` when sources' numbers clash",
    )
    channels: list[str] | None = Field(
        default=None,
        description="only orders of these channels (e.g. [store] when the web shop already tracks its own buys); "
        "null: every channel",
    )
    line_attempts: int = Field(
        default=8,
        ge=1,
        le=30,
        description="attempts per line once an order's first line may have landed (see the README: why inline)",
    )
    line_backoff_max: float = Field(default=5.0, gt=0, description="longest wait between two attempts of a line")
    feed: FeedSettings = Field(default_factory=FeedSettings, description="the product feed Raptor pulls nightly")
    recommend: RecommendSettings = Field(
        default_factory=RecommendSettings, description="which recommendation modules answer, cache and cool-down"
    )

    @field_validator("parameters")
    @classmethod
    def _positions(cls, parameters: dict[str, LineField]) -> dict[str, LineField]:
        bad = [name for name in parameters if not _POSITION.match(name)]
        if bad:
            raise ValueError(f"{', '.join(bad)}: positional parameters are p1 to p999")
        missing = [name for name in REQUIRED_FIELDS if name not in parameters.values()]
        if missing:
            raise ValueError(f"no parameter carries {', '.join(missing)}; a buy event needs event, sku and order_id")
        return parameters

    @model_validator(mode="after")
    def _no_clash(self) -> RaptorSettings:
        clash = sorted((set(self.static_parameters) & set(self.parameters)) | (set(self.static_parameters) & _RESERVED))
        if clash:
            raise ValueError(f"static_parameters may not set {', '.join(clash)}: hub sets them per line")
        return self

    def tracking(self) -> str:
        return str(self.tracking_url).rstrip("/")

    def api(self) -> str:
        return str(self.api_url).rstrip("/")
