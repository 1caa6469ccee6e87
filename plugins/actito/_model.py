"""The emulated licence's data model: attribute types, profile and custom table structures, and their defaults.

A real licence defines these in Actito's data-model screens; the defaults here are the structure the plugin
README asks a licence to have (a profile table keyed by e-mail, three INTERACTIONS tables for orders, order lines
and abandoned carts), so the emulator and the plugin agree out of the box.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

#: Actito's value types as the emulator checks them.
VALUE_TYPES = ("STRING", "EMAIL", "PHONE", "DATE", "TIMESTAMP", "LONG", "NUMBER", "BOOLEAN")
#: Technical profile attributes: set by Actito, refused in a request.
TECHNICAL = frozenset({"profileId", "creationMoment", "updateMoment"})
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_PHONE = re.compile(r"^\+\d{7,15}$")


class ApiError(Exception):
    """An Actito error answer: HTTP status, a code and a message (the JSON envelope is inferred, see README)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"status": self.status, "code": self.code, "message": self.message, **self.extra}


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute of a table: its type, and whether it is unique or mandatory."""

    name: str
    value_type: str = "STRING"
    unique: bool = False
    mandatory: bool = False
    accepted: tuple[str, ...] = ()
    max_length: int = 255

    def clean(self, value: Any) -> Any:
        """``value`` as stored, or :class:`ApiError` 400 saying why it does not fit. None stays None."""
        if value is None:
            if self.mandatory:
                raise _invalid(self.name, "is mandatory")
            return None
        kind = self.value_type
        if kind == "BOOLEAN":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise _invalid(self.name, f"must be true or false, not {value!r}")
        if kind in ("LONG", "NUMBER"):
            if isinstance(value, bool):
                raise _invalid(self.name, f"must be a number, not {value!r}")
            try:
                number = int(value) if kind == "LONG" else float(value)
            except (TypeError, ValueError):
                raise _invalid(self.name, f"must be a {kind.lower()}, not {value!r}") from None
            if kind == "LONG" and isinstance(value, float) and value != int(value):
                raise _invalid(self.name, f"must be a whole number, not {value!r}")
            return number
        if not isinstance(value, str):
            raise _invalid(self.name, f"must be text, not {value!r}")
        if len(value) > self.max_length:
            raise _invalid(self.name, f"is longer than {self.max_length} characters")
        if kind == "EMAIL" and not _EMAIL.match(value):
            raise _invalid(self.name, f"{value!r} is not a valid e-mail address", code="INVALID_EMAIL_ADDRESS")
        if kind == "PHONE" and not _PHONE.match(value):
            raise _invalid(self.name, f"{value!r} is not an international phone number (+3247...)")
        if kind == "DATE":
            try:
                date.fromisoformat(value)
            except ValueError:
                raise _invalid(self.name, f"{value!r} is not a date (yyyy-MM-dd)") from None
        if kind == "TIMESTAMP":
            try:
                datetime.strptime(value, TIMESTAMP_FORMAT)
            except ValueError:
                raise _invalid(self.name, f"{value!r} is not a timestamp (yyyy-MM-dd HH:mm:ss)") from None
        if self.accepted and value not in self.accepted:
            raise _invalid(self.name, f"{value!r} is not one of {', '.join(self.accepted)}")
        return value


def _invalid(name: str, problem: str, *, code: str = "INVALID_ATTRIBUTE_VALUE") -> ApiError:
    return ApiError(400, code, f"attribute '{name}' {problem}", attribute=name)


@dataclass(slots=True)
class CustomTable:
    """A custom table. ``profile_link`` is the attribute referencing the profile key; ``parent`` an
    integrity constraint on another custom table (a line needs its order); ``events`` fire on each CREATE."""

    name: str
    primary_key: str
    attributes: dict[str, Attribute]
    kind: str = "INTERACTIONS"
    profile_link: str | None = None
    parent: tuple[str, str] | None = None
    events: tuple[str, ...] = ()
    id: int = 0

    def structure(self) -> dict[str, Any]:
        """The table as ``GET .../custom-tables/{id}`` describes it (v5 shape, trimmed)."""
        return {
            "id": self.id,
            "name": self.name,
            "type": self.kind,
            "primaryKeyAttribute": self.primary_key,
            "attributes": [
                {"name": a.name, "valueType": a.value_type, "mandatory": a.mandatory, "unique": a.unique}
                for a in self.attributes.values()
            ],
            "eventsToTrigger": [{"name": name, "triggerRules": [{"onOperation": "CREATE"}]} for name in self.events],
        }


def attributes(*specs: Attribute) -> dict[str, Attribute]:
    return {spec.name: spec for spec in specs}


DEFAULT_PROFILE_ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("emailAddress", "EMAIL", unique=True),
    Attribute("customerId", unique=True),
    Attribute("memberNumber", unique=True),
    Attribute("firstName"),
    Attribute("lastName"),
    Attribute("birthDate", "DATE"),
    Attribute("sex", accepted=("M", "F")),
    Attribute("motherLanguage", accepted=("FR", "NL", "EN", "DE", "NO", "SV", "DA")),
    Attribute("gsmNumber", "PHONE"),
    Attribute("addressStreet"),
    Attribute("addressPostalCode"),
    Attribute("addressLocality"),
    Attribute("addressCountry", max_length=2),
)
DEFAULT_SUBSCRIPTIONS = ("Newsletter", "Promotions", "SMS")
#: Segmentation -> exclusive (a profile is in at most one of its categories).
DEFAULT_SEGMENTATIONS = {"HubSegments": False, "Tier": True}


def default_tables(profile_key: str = "emailAddress") -> dict[str, CustomTable]:
    """ORDERS, ORDER_LINES and CARTS, each linked to profiles by ``profile_key`` (the profiles' unique key)."""
    link = Attribute(profile_key, mandatory=True)
    tables = [
        CustomTable(
            "ORDERS",
            "orderId",
            attributes(
                Attribute("orderId", mandatory=True, unique=True),
                link,
                Attribute("orderMoment", "TIMESTAMP", mandatory=True),
                Attribute("channel"),
                Attribute("storeId"),
                Attribute("currency", max_length=3),
                Attribute("totalAmount", "NUMBER"),
                Attribute("status"),
                Attribute("isReturn", "BOOLEAN"),
                Attribute("lineCount", "LONG"),
            ),
            profile_link=profile_key,
            events=("order_created",),
        ),
        CustomTable(
            "ORDER_LINES",
            "lineId",
            attributes(
                Attribute("lineId", mandatory=True, unique=True),
                Attribute("orderId", mandatory=True),
                link,
                Attribute("lineNumber", "LONG"),
                Attribute("sku", mandatory=True),
                Attribute("productName"),
                Attribute("productGroup"),
                Attribute("quantity", "NUMBER"),
                Attribute("unitPrice", "NUMBER"),
                Attribute("discount", "NUMBER"),
                Attribute("lineTotal", "NUMBER"),
            ),
            profile_link=profile_key,
            parent=("ORDERS", "orderId"),
        ),
        CustomTable(
            "CARTS",
            "eventId",
            attributes(
                Attribute("eventId", mandatory=True, unique=True),
                link,
                Attribute("trigger"),
                Attribute("firedMoment", "TIMESTAMP"),
                Attribute("cartId"),
                Attribute("cartTotal", "NUMBER"),
                Attribute("currency", max_length=3),
                Attribute("itemCount", "LONG"),
                Attribute("itemSkus", max_length=2000),
                Attribute("accessorySkus", max_length=2000),
                Attribute("data", max_length=8000),
            ),
            profile_link=profile_key,
            events=("cart_abandoned",),
        ),
    ]
    for number, table in enumerate(tables, 1):
        table.id = number
    return {table.name: table for table in tables}


def named(items: Iterable[Attribute]) -> dict[str, Attribute]:
    return {item.name: item for item in items}


@dataclass(slots=True)
class Import:
    """One bulk import: accepted at once, RUNNING for a while, then FINISHED with its report."""

    id: int
    table: str
    day: str
    ready_at: float
    total: int = 0
    created: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def status(self, now: float) -> str:
        return "FINISHED" if now >= self.ready_at else "RUNNING"

    def public(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        body: dict[str, Any] = {"id": self.id, "table": self.table, "status": status}
        if status == "FINISHED":
            body["result"] = {
                "totalLines": self.total,
                "createdLines": self.created,
                "updatedLines": self.updated,
                "rejectedLines": len(self.errors),
            }
        return body
