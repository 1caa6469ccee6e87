"""Settings of the ``business_central`` source (the ``settings:`` block of a ``plugin: business_central`` connector)."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator

from hub.connectors import ConnectorSettings
from hub.cursors import Duration

StreamName = Literal["customers", "contacts", "items", "salesInvoices", "salesCreditMemos"]
#: Every stream, in the order a sync reads them (customers before the documents that name them).
STREAM_NAMES: tuple[StreamName, ...] = ("customers", "contacts", "items", "salesInvoices", "salesCreditMemos")

DEFAULT_BASE_URL = "https://api.businesscentral.dynamics.com"
DEFAULT_TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
DEFAULT_SCOPE = "https://api.businesscentral.dynamics.com/.default"


class BusinessCentralSettings(ConnectorSettings):
    """Which tenant, environment and company to read, the Entra ID app that reads it, and how fast."""

    tenant: str = Field(
        min_length=1, description="the Entra ID tenant: its id (a GUID) or domain (acme.onmicrosoft.com)"
    )
    environment: str = Field(default="production", min_length=1, description="the BC environment's name")
    company: str = Field(min_length=1, description="the company to read: its id (GUID) or its name as BC shows it")
    client_id: str = Field(min_length=1, description="the app registration's application (client) id")
    client_secret: SecretStr = Field(description="a client secret of that app registration (its value, not its id)")

    base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl(DEFAULT_BASE_URL),
        description="the API host; the path /v2.0/{tenant}/{environment}/api/v2.0 follows",
    )
    token_url: str = Field(
        default=DEFAULT_TOKEN_URL,
        description="the OAuth2 token endpoint; {tenant} is replaced by the tenant",
    )
    scope: str = Field(default=DEFAULT_SCOPE, description="the client-credentials scope")

    streams: list[StreamName] = Field(
        default_factory=lambda: list(STREAM_NAMES),
        min_length=1,
        description="the streams to read; each needs a mapping in hub.yaml",
    )
    include_drafts: bool = Field(
        default=False,
        description=(
            "read draft (unposted) sales invoices and credit memos as documents; by default a draft is read as a "
            "tombstone, so a quote is never counted as a purchase"
        ),
    )
    page_size: int = Field(
        default=1000, ge=1, le=20_000, description="records per page, asked with Prefer: odata.maxpagesize"
    )
    lag: Duration = Field(
        default=timedelta(0),
        description="re-read changes this far below the cursor, for records a long transaction wrote late",
    )
    rate_limit: float | None = Field(
        default=15.0,
        gt=0,
        description="requests per second at most (BC allows 6,000 per 5 minutes, 20/s); none: unpaced",
    )
    timeout: float = Field(default=60.0, gt=0, description="seconds to wait for an answer")

    @field_validator("streams")
    @classmethod
    def _no_repeats(cls, streams: list[StreamName]) -> list[StreamName]:
        if len(set(streams)) != len(streams):
            raise ValueError("a stream is listed twice")
        return streams

    @field_validator("token_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(
                "must be an http(s) URL, e.g. https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
            )
        return value

    def api_root(self) -> str:
        """``{base_url}/v2.0/{tenant}/{environment}/api/v2.0``, without a trailing slash."""
        return f"{str(self.base_url).rstrip('/')}/v2.0/{self.tenant}/{self.environment}/api/v2.0"

    def token_endpoint(self) -> str:
        return self.token_url.replace("{tenant}", self.tenant)
