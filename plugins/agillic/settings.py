"""Settings of the ``agillic`` destination (the ``settings:`` block of a ``plugin: agillic`` connector)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    model_validator,
)

from hub.connectors import ConnectorSettings
from hub_plugins.agillic._formats import strftime_pattern
from hub_plugins.agillic.limits import MAX_PAYLOAD_BYTES

#: Agillic's Person Data fields, One-to-Many tables and their fields are UPPER_CASE names defined in its UI.
UpperName = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]
#: The hub keys a recipient id can come from (``_hub`` in every view); ``external_id`` needs ``external_id_source``.
RecipientKey = Literal["email", "phone", "member_no", "customer_id", "external_id"]


def _java_date(pattern: str) -> str:
    strftime_pattern(pattern)
    return pattern


DatePattern = Annotated[str, AfterValidator(_java_date)]


class SegmentField(BaseModel):
    """A segment pushed as a Person Data field: ``value`` while a member (cleared on leaving, unless another
    segment has set the field since), or, without ``value``, a BOOLEAN flag that is true while a member."""

    model_config = ConfigDict(extra="forbid")

    field: UpperName
    value: str | None = None


class AgillicSettings(ConnectorSettings):
    """Where the Agillic instance is, its credentials, and how hub's data fits the instance's own model."""

    base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("https://api-eu1.agillic.net"),
        description="the REST API root; the same for every customer (the instance is chosen by the credentials)",
    )
    client_id: str = Field(min_length=1, description="the instance's Developer Key (Integration > API Settings)")
    client_secret: SecretStr = Field(description="the Developer Secret that goes with the key")
    recipient_id_field: UpperName = Field(
        default="EMAIL", description="the instance's Recipient ID: the unique Person Data field recipients are keyed by"
    )
    recipient_id_key: RecipientKey = Field(
        default="email", description="which of hub's customer keys holds the Recipient ID's value"
    )
    external_id_source: str | None = Field(
        default=None, description="with recipient_id_key external_id: which connector's id it is (e.g. erp)"
    )
    date_format: DatePattern = Field(
        default="dd.MM.yyyy", description="the instance's date format (Java pattern) for DATE fields"
    )
    timestamp_format: DatePattern = Field(
        default="dd.MM.yyyy HH:mm:ss",
        description="the instance's format for TIMESTAMP fields, written in the hub's time zone",
    )
    purchases_table: UpperName = Field(
        default="PURCHASES", description="the One-to-Many table orders go to, one row per order line"
    )
    segment_mode: Literal["person_data", "target_group"] = Field(
        default="person_data",
        description="segments as Person Data fields (segment_fields) or as static target groups",
    )
    segment_fields: dict[str, SegmentField] = Field(
        default={},
        description="segment -> its field (and value); a segment not listed is a flag field named segment_prefix "
        "+ the segment in upper case",
    )
    segment_target_groups: dict[str, str] = Field(
        default={}, description="segment -> static target group; default segment_prefix + the segment in upper case"
    )
    segment_prefix: str = Field(default="HUB_", description="the prefix of the default field and group names")
    context_schema: str | None = Field(
        default=None,
        description="the context schema a trigger's data is sent with: events by :achieveWithContext, flows by "
        ":executeWithContext; none: events are achieved without context (flows need one)",
    )
    context_schemas: dict[str, str | None] = Field(
        default={},
        description="trigger id (as written in to:) -> its context schema, overriding context_schema; null: "
        "achieve that event without context",
    )
    max_request_bytes: int = Field(
        default=MAX_PAYLOAD_BYTES,
        gt=1024,
        le=MAX_PAYLOAD_BYTES,
        description="batch calls are split to stay under this many bytes (Agillic refuses more than 20 MB)",
    )
    token_margin: float = Field(
        default=300.0, ge=0, description="renew the 2-hour access token this many seconds before it expires"
    )

    @model_validator(mode="after")
    def _external_id_has_a_source(self) -> AgillicSettings:
        if self.recipient_id_key == "external_id" and not self.external_id_source:
            raise ValueError("recipient_id_key external_id needs external_id_source (the connector whose id it is)")
        return self

    def url(self) -> str:
        """The base URL without a trailing slash."""
        return str(self.base_url).rstrip("/")

    def segment_field(self, segment: str) -> SegmentField:
        return self.segment_fields.get(segment) or SegmentField(field=self.default_name(segment))

    def target_group(self, segment: str) -> str:
        return self.segment_target_groups.get(segment) or self.default_name(segment)

    def default_name(self, segment: str) -> str:
        """``tier_a`` -> ``HUB_TIER_A``."""
        cleaned = "".join(c if c.isalnum() else "_" for c in segment.upper())
        return f"{self.segment_prefix}{cleaned}"
