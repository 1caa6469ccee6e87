"""Settings of the ``actito`` destination (the ``settings:`` block of a ``plugin: actito`` connector)."""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, SecretStr, field_validator

from hub.connectors import ConnectorSettings

#: Where the value of the profiles' unique key comes from when the mapping does not give it: one of the
#: customer's own keys (``_hub``), or ``external_id:<system>`` for the id a source connector gave the customer.
KEY_SOURCES = ("email", "phone", "member_no", "customer_id")


class SegmentTarget(BaseModel):
    """Where one hub segment lands in Actito: a segmentation and the category a member is put in."""

    model_config = ConfigDict(extra="forbid")

    segmentation: str = Field(min_length=1, description="the segmentation's name in the profile table")
    category: str = Field(min_length=1, description="the category members of the hub segment get")


class ActitoSettings(ConnectorSettings):
    """Which licence, entity and tables; how profiles are keyed; when hub uses the bulk import."""

    base_url: AnyHttpUrl = Field(description="the licence's API host, e.g. https://api.actito.com (or api1, api3)")
    api_key: SecretStr = Field(description="the licence's API key; exchanged at GET /auth/token for 15-minute tokens")
    entity: str = Field(min_length=1, description="the entity (by name) that holds the tables")
    profile_table: str = Field(min_length=1, description="the profile table hub's customers go to")
    api_version: Literal["v4", "v5"] = Field(
        default="v5",
        description="one-by-one profile upserts: v5 PUT .../profiles with a key, or v4 POST .../profile?allowUpdate",
    )
    key_attribute: str = Field(
        default="emailAddress", min_length=1, description="the profile table's unique attribute profiles are keyed by"
    )
    key_from: str = Field(
        default="email",
        pattern=r"^(email|phone|member_no|customer_id|external_id:.+)$",
        description="the customer key that fills key_attribute when the mapping leaves it out "
        "(email, phone, member_no, customer_id, or external_id:<connector>)",
    )
    orders_table: str = Field(default="ORDERS", description="the INTERACTIONS custom table orders go to")
    order_lines_table: str = Field(default="ORDER_LINES", description="the INTERACTIONS custom table of order lines")
    segmentation: str = Field(
        default="HubSegments",
        description="the segmentation a hub segment goes to when `segments` does not name one; category = segment",
    )
    segments: dict[str, SegmentTarget] = Field(
        default={},
        description="hub segment -> segmentation and category, e.g. tier_a: {segmentation: Tier, category: A}",
    )
    bulk_threshold: PositiveInt = Field(
        default=500, description="a batch of at least this many messages goes as one bulk import while quota lasts"
    )
    imports_per_day: PositiveInt = Field(
        default=12, description="bulk imports a table may take per day (Actito's limit; more can be bought)"
    )
    one_by_one_max: PositiveInt = Field(
        default=500,
        description="with no import left today, at most this many messages of a large batch go one by one per "
        "send (about 5 minutes at 100 calls a minute); the rest wait for tomorrow's quota",
    )
    timezone: str = Field(
        default="Europe/Brussels",
        description="the licence's time zone: TIMESTAMP values are local time there, and the import quota's day",
    )
    poll_interval: PositiveFloat = Field(default=2.0, description="seconds between polls of a running import")
    poll_timeout: PositiveFloat = Field(default=600.0, description="give up waiting for an import after this long")
    source: str = Field(default="hub", min_length=1, description="dataCollection source on profiles hub writes")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}, e.g. Europe/Brussels") from None
        return value

    def url(self) -> str:
        """The base URL without a trailing slash."""
        return str(self.base_url).rstrip("/")

    def segment_target(self, segment: str) -> SegmentTarget:
        """The segmentation and category of hub segment ``segment``."""
        return self.segments.get(segment) or SegmentTarget(segmentation=self.segmentation, category=segment)
