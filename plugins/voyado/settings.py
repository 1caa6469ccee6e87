"""Settings of the ``voyado`` destination (the ``settings:`` block of a ``plugin: voyado`` connector)."""

from __future__ import annotations

from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr

from hub.connectors import ConnectorSettings

#: How contacts are found in Engage, and the receipt ``matchKeyType`` that goes with each.
MatchKey = Literal["email", "mobilePhone", "externalId", "memberNumber"]


class VoyadoSettings(ConnectorSettings):
    """Where Engage is, how hub identifies itself, and how contacts and receipts are keyed."""

    base_url: AnyHttpUrl = Field(description="the tenant's API root, e.g. https://acme.voyado.com")
    api_key: SecretStr = Field(description="the API key of this integration (Config Hub > API connections)")
    user_agent: str = Field(default="hub/0.1", min_length=1, description="sent on every call; Engage requires it")
    contact_type: str = Field(default="Member", description="the contact type hub creates and matches receipts in")
    match_key: MatchKey = Field(
        default="email", description="the attribute contacts are looked up by (and receipts matched on)"
    )
    external_id_source: str | None = Field(
        default=None,
        description="with match_key externalId: which source's id (a key of the customer's external ids) it is",
    )
    source: str = Field(default="hub", description="the `source` header on contact creates and deletes")
    store_external_id: str | None = Field(default=None, description="receipt storeExternalId when an order has none")
    currency: str | None = Field(
        default=None, pattern=r"^[A-Z]{3}$", description="receipt currency when an order has none"
    )
    payment_method: str = Field(default="card", description="receipts' paymentMethods type (card, cash, swish...)")

    def url(self) -> str:
        """The base URL without a trailing slash."""
        return str(self.base_url).rstrip("/")
