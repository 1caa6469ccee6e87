"""Settings of the ``odoo`` source (the ``settings:`` block of a ``plugin: odoo`` connector)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator

from hub.connectors import ConnectorSettings
from hub.cursors import Duration

StreamName = Literal["partners", "orders", "products"]
STREAM_NAMES: tuple[StreamName, ...] = ("partners", "orders", "products")

#: Extra domain terms per stream unless ``domains`` says otherwise: people and companies (not their delivery or
#: invoice addresses), and products that have an internal reference (the SKU).
DEFAULT_DOMAINS: dict[str, list[Any]] = {
    "partners": [["type", "=", "contact"]],
    "products": [["default_code", "!=", False]],
}


class OdooSettings(ConnectorSettings):
    """Where Odoo is, how to talk to it (JSON-2 on 19+, JSON-RPC on older servers), and what to read."""

    base_url: AnyHttpUrl = Field(description="the Odoo server, e.g. https://acme.odoo.com")
    protocol: Literal["json2", "jsonrpc"] = Field(
        default="json2",
        description="json2: POST /json/2/<model>/<method> with a bearer API key (Odoo 19+); jsonrpc: /jsonrpc "
        "execute_kw with login and API key (older servers, deprecated in 19)",
    )
    database: str | None = Field(
        default=None,
        description="the database; jsonrpc needs it, json2 sends it as X-Odoo-Database (needed on multi-db hosts)",
    )
    username: str | None = Field(default=None, description="the API user's login (jsonrpc)")
    api_key: SecretStr = Field(description="the API user's API key (Preferences > Account Security); jsonrpc also "
                               "takes the password")  # fmt: skip

    streams: list[StreamName] = Field(
        default_factory=lambda: list(STREAM_NAMES), min_length=1, description="the streams to read"
    )
    domains: dict[StreamName, list[Any]] = Field(
        default_factory=dict,
        validate_default=True,
        description="extra domain terms per stream, ANDed with the change filter, e.g. "
        '{partners: [["customer_rank", ">", 0]]}; a stream given here replaces its default (give [] for none)',
    )
    extra_fields: dict[StreamName, list[str]] = Field(
        default_factory=dict,
        description="more fields to read per stream (custom fields such as x_member_no); `false` reads as null",
    )
    order_states: list[str] = Field(
        default_factory=lambda: ["sale", "done"],
        min_length=1,
        description="sale.order states that are sales; orders in other states (quotations, cancelled) are tombstones",
    )
    page_size: int = Field(default=200, ge=1, le=10_000, description="records per search_read")
    lag: Duration = Field(
        default=timedelta(0),
        description="re-read changes this far below the cursor: Odoo stamps write_date at a transaction's start, so "
        "a long transaction's rows may appear after later ones were read",
    )
    rate_limit: float | None = Field(default=None, gt=0, description="requests per second at most; none: unpaced")
    timeout: float = Field(default=60.0, gt=0, description="seconds to wait for an answer")

    @field_validator("streams")
    @classmethod
    def _no_repeats(cls, streams: list[StreamName]) -> list[StreamName]:
        if len(set(streams)) != len(streams):
            raise ValueError("a stream is listed twice")
        return streams

    @field_validator("domains")
    @classmethod
    def _with_defaults(cls, domains: dict[StreamName, list[Any]]) -> dict[StreamName, list[Any]]:
        return {**{k: list(v) for k, v in DEFAULT_DOMAINS.items()}, **domains}  # type: ignore[dict-item]

    @model_validator(mode="after")
    def _jsonrpc_login(self) -> OdooSettings:
        if self.protocol == "jsonrpc" and (not self.database or not self.username):
            raise ValueError("protocol jsonrpc needs `database` and `username` (the API user's login)")
        return self

    def url(self) -> str:
        return str(self.base_url).rstrip("/")
