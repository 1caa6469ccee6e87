"""The Voyado Engage emulator's in-memory tenant: contacts, receipts, orders, trigger calls, and their rules.

Everything here is plain Python so tests can seed and inspect it in-process (``app.state.voyado``); the HTTP layer
in :mod:`hub_plugins.voyado.emulator` only translates requests into these calls and :class:`ApiError` into
Voyado's status codes and ``{"errorCode": ..., "message": ...}`` bodies.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

#: Contact attributes a default tenant knows; unknown fields in a body are silently ignored, as Engage does.
DEFAULT_ATTRIBUTES = frozenset(
    {
        "firstName",
        "lastName",
        "email",
        "mobilePhone",
        "socialSecurityNumber",
        "externalId",
        "memberNumber",
        "cardId",
        "street",
        "careOf",
        "zipCode",
        "city",
        "countryCode",
        "birthDay",
        "gender",
        "lang",
    }
)
#: Contact type -> its key attribute (a tenant configures these; Member always exists).
DEFAULT_CONTACT_TYPES = {"Member": "email", "Contact": "email"}
PREFERENCES = ("acceptsEmail", "acceptsSms", "acceptsPostal")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_PHONE = re.compile(r"^\+?\d{7,15}$")
_PHONE_NOISE = re.compile(r"[\s\-().]")


class ApiError(Exception):
    """A Voyado error response: status, string error code, message, and extra body fields."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"errorCode": self.code, "message": self.message, **self.extra}


def valid_email(value: str) -> bool:
    return bool(_EMAIL.match(value))


def normal_phone(value: str) -> str | None:
    """The phone number without spaces, dashes and brackets, or None when it is not a phone number."""
    compact = _PHONE_NOISE.sub("", value)
    return compact if _PHONE.match(compact) else None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class VoyadoState:
    """One emulated tenant. All mutation goes through methods that hold ``lock``: the server thread writes while a
    test thread reads."""

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = ("emulator-key",),
        rate_limit: float | None = 200,
        contact_types: dict[str, str] | None = None,
        attributes: Iterable[str] = DEFAULT_ATTRIBUTES,
    ) -> None:
        self.lock = threading.RLock()
        self.api_keys = set(api_keys)
        self.rate_limit = rate_limit
        self.contact_types = dict(contact_types or DEFAULT_CONTACT_TYPES)
        self.attributes = frozenset(attributes)
        self.reset()

    def reset(self) -> None:
        """Forget every contact, receipt, order, trigger call and request count; keep keys, limits and types."""
        with self.lock:
            self.contacts: dict[str, dict[str, Any]] = {}
            # attribute -> lower-cased value -> contact ids (an ordered set): lookups stay O(1) at any tenant size
            self._by_value: dict[str, dict[str, dict[str, None]]] = {}
            self.deleted = 0
            self.receipts: dict[str, dict[str, Any]] = {}
            self.receipt_duplicates = 0
            self.orders: list[dict[str, Any]] = []
            self.triggers: list[dict[str, Any]] = []
            self.requests = 0
            self.throttled = 0
            self._windows: dict[str, deque[float]] = {}

    # -- gate ---------------------------------------------------------------------------------------------------

    def admit(self, api_key: str) -> bool:
        """Count a request against the key's one-second window; False when it is over ``rate_limit``."""
        with self.lock:
            self.requests += 1
            if self.rate_limit is None:
                return True
            now = time.monotonic()
            window = self._windows.setdefault(api_key, deque())
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= self.rate_limit:
                self.throttled += 1
                return False
            window.append(now)
            return True

    # -- contacts -----------------------------------------------------------------------------------------------

    def _key_of(self, contact_type: str) -> str:
        try:
            return self.contact_types[contact_type]
        except KeyError:
            raise ApiError(400, "InvalidContactType", f"Contact type '{contact_type}' does not exist") from None

    def contact_type_named(self, contact_type: str | None) -> str | None:
        """The contact type as the tenant spells it (lookups are case-insensitive), or None for all types."""
        if contact_type is None:
            return None
        for name in self.contact_types:
            if name.lower() == contact_type.lower():
                return name
        raise ApiError(400, "InvalidContactType", f"Contact type '{contact_type}' does not exist")

    def _clean_attributes(self, body: dict[str, Any]) -> dict[str, Any]:
        """Known attributes of ``body`` with formats checked; ``""`` and null are kept (they overwrite)."""
        attributes = {name: value for name, value in body.items() if name in self.attributes}
        email = attributes.get("email")
        if email and (not isinstance(email, str) or not valid_email(email)):
            raise ApiError(400, "InvalidEmailAddress", f"'{email}' is not a valid email address")
        phone = attributes.get("mobilePhone")
        if phone:
            normal = normal_phone(phone) if isinstance(phone, str) else None
            if normal is None:
                raise ApiError(400, "InvalidPhoneNumber", f"'{phone}' is not a valid phone number")
            attributes["mobilePhone"] = normal
        return attributes

    @staticmethod
    def _clean_preferences(body: dict[str, Any]) -> dict[str, bool | None]:
        preferences = body.get("preferences")
        if preferences is None:
            return {}
        if not isinstance(preferences, dict):
            raise ApiError(400, "InvalidPreferences", "preferences must be an object")
        clean = {name: value for name, value in preferences.items() if name in PREFERENCES}
        for name, value in clean.items():
            if value is not None and not isinstance(value, bool):
                raise ApiError(400, "InvalidPreferences", f"preferences.{name} must be true, false or null")
        return clean

    @staticmethod
    def _clean_consents(body: dict[str, Any]) -> list[dict[str, Any]]:
        consents = body.get("consents")
        if consents is None:
            return []
        if not isinstance(consents, list):
            raise ApiError(400, "InvalidConsents", "consents must be a list")
        for consent in consents:
            if not isinstance(consent, dict) or not isinstance(consent.get("id"), str):
                raise ApiError(400, "InvalidConsents", "each consent needs an id")
            if consent.get("value") is not None and not isinstance(consent["value"], bool):
                raise ApiError(400, "InvalidConsents", f"consent '{consent['id']}' value must be true or false")
        return consents

    @staticmethod
    def _apply_consents(contact: dict[str, Any], consents: list[dict[str, Any]]) -> None:
        """Yes and No may flip; a set consent never goes back to not set (a null value is ignored)."""
        for consent in consents:
            if consent.get("value") is None:
                continue
            contact["consents"][consent["id"]] = {
                "id": consent["id"],
                "value": consent["value"],
                "date": consent.get("date") or _now(),
                "source": consent.get("source"),
                "comment": consent.get("comment"),
            }

    def _index(self, contact: dict[str, Any], *, remove: bool = False) -> None:
        for name, value in contact["attributes"].items():
            if isinstance(value, str) and value:
                ids = self._by_value.setdefault(name, {}).setdefault(value.lower(), {})
                if remove:
                    ids.pop(contact["id"], None)
                else:
                    ids[contact["id"]] = None

    def _with_value(self, name: str, value: str) -> list[str]:
        return list(self._by_value.get(name, {}).get(value.lower(), {}))

    def _holder_of(self, contact_type: str, key: str, value: Any, *, other_than: str | None = None) -> str | None:
        if value in (None, ""):
            return None
        if isinstance(value, str):
            for contact_id in self._with_value(key, value):
                if contact_id != other_than and self.contacts[contact_id]["contactType"] == contact_type:
                    return contact_id
            return None
        wanted = value
        for contact in self.contacts.values():
            if contact["contactType"] != contact_type or contact["id"] == other_than:
                continue
            held = contact["attributes"].get(key)
            if (held.lower() if isinstance(held, str) else held) == wanted:
                return contact["id"]
        return None

    def create_contact(self, body: dict[str, Any], meta: dict[str, Any] | None = None) -> tuple[dict[str, Any], bool]:
        """Create a contact; returns (contact, created). An existing key value returns that contact, not created."""
        with self.lock:
            contact_type = self.contact_type_named(body.get("contactType") or "Member") or "Member"
            key = self._key_of(contact_type)
            attributes = self._clean_attributes(body)
            if attributes.get(key) in (None, ""):
                raise ApiError(400, "MissingKeyAttribute", f"'{key}' is required for contact type {contact_type}")
            preferences = self._clean_preferences(body)
            consents = self._clean_consents(body)
            existing = self._holder_of(contact_type, key, attributes[key])
            if existing:
                return self.contacts[existing], False
            stamp = _now()
            contact: dict[str, Any] = {
                "id": str(uuid.uuid4()),
                "seq": len(self.contacts) + self.deleted,
                "contactType": contact_type,
                "attributes": attributes,
                "preferences": {name: preferences.get(name) for name in PREFERENCES},
                "consents": {},
                "meta": {"createdOn": stamp, "modifiedOn": stamp, **(meta or {})},
            }
            self._apply_consents(contact, consents)
            self.contacts[contact["id"]] = contact
            self._index(contact)
            return contact, True

    def contact(self, contact_id: str) -> dict[str, Any]:
        with self.lock:
            try:
                return self.contacts[contact_id]
            except KeyError:
                raise ApiError(404, "ContactNotFound", f"No contact with id '{contact_id}'") from None

    def update_contact(self, contact_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Fields present overwrite (``""`` and null included); unknown fields and ``contactType`` are ignored."""
        with self.lock:
            contact = self.contact(contact_id)
            key = self._key_of(contact["contactType"])
            attributes = self._clean_attributes(body)
            if key in attributes:
                if attributes[key] in (None, ""):
                    raise ApiError(400, "MissingKeyAttribute", f"'{key}' cannot be emptied: it is the contact's key")
                if self._holder_of(contact["contactType"], key, attributes[key], other_than=contact_id):
                    raise ApiError(409, "DuplicateKeyValue", f"Another contact already has this {key}")
            preferences = self._clean_preferences(body)
            consents = self._clean_consents(body)
            self._index(contact, remove=True)
            contact["attributes"].update(attributes)
            self._index(contact)
            contact["preferences"].update(preferences)
            self._apply_consents(contact, consents)
            contact["meta"]["modifiedOn"] = _now()
            return contact

    def set_preference(self, contact_id: str, name: str, value: Any) -> dict[str, Any]:
        if name not in PREFERENCES:
            raise ApiError(404, "NotFound", f"No preference '{name}'")
        return self.update_contact(contact_id, {"preferences": {name: value}})

    def delete_contact(self, contact_id: str) -> None:
        with self.lock:
            self._index(self.contact(contact_id), remove=True)
            del self.contacts[contact_id]
            self.deleted += 1

    def change_contact_type(self, contact_id: str, contact_type: str | None) -> dict[str, Any]:
        with self.lock:
            contact = self.contact(contact_id)
            target = self.contact_type_named(contact_type) if contact_type else None
            if target is None:
                raise ApiError(400, "InvalidContactType", "contactTypeId is required")
            key = self._key_of(target)
            value = contact["attributes"].get(key)
            if value in (None, ""):
                raise ApiError(400, "MissingKeyAttribute", f"'{key}' is required for contact type {target}")
            if self._holder_of(target, key, value, other_than=contact_id):
                raise ApiError(409, "DuplicateKeyValue", f"A {target} with this {key} already exists")
            contact["contactType"] = target
            contact["meta"]["modifiedOn"] = _now()
            return contact

    def find(self, params: dict[str, str], contact_type: str | None = None) -> list[str]:
        """Ids of contacts matching the lookup parameters (``email``, ``mobilePhone``, ``socialSecurityNumber``,
        ``customKey``, ``externalId``, ``memberNumber``, ``any``), after Engage's format checks."""
        with self.lock:
            kind = self.contact_type_named(contact_type)
            searches = self._searches(params)
            found: dict[str, None] = {}
            for names, value in searches:
                for name in names:
                    found.update(dict.fromkeys(self._with_value(name, value)))
            return sorted(
                (i for i in found if not kind or self.contacts[i]["contactType"] == kind),
                key=lambda i: self.contacts[i]["seq"],
            )

    @staticmethod
    def _searches(params: dict[str, str]) -> list[tuple[tuple[str, ...], str]]:
        if "any" in params:
            value = params["any"]
            if valid_email(value):
                return [(("email",), value)]
            if normal_phone(value):
                return [(("mobilePhone",), normal_phone(value) or value)]
            return [(("memberNumber", "externalId"), value)]
        if "email" in params:
            if not valid_email(params["email"]):
                raise ApiError(400, "InvalidEmailAddress", f"'{params['email']}' is not a valid email address")
            return [(("email",), params["email"])]
        if "mobilePhone" in params:
            phone = normal_phone(params["mobilePhone"])
            if phone is None:
                raise ApiError(400, "InvalidPhoneNumber", f"'{params['mobilePhone']}' is not a valid phone number")
            return [(("mobilePhone",), phone)]
        for name, attributes in (
            ("socialSecurityNumber", ("socialSecurityNumber",)),
            ("customKey", ("memberNumber", "externalId")),
            ("externalId", ("externalId",)),
            ("memberNumber", ("memberNumber",)),
            ("cardId", ("cardId",)),
            ("memberNumberOrCardId", ("memberNumber", "cardId")),
        ):
            if params.get(name):
                return [(attributes, params[name])]
        raise ApiError(400, "InvalidSearchQuery", "Give one of email, mobilePhone, socialSecurityNumber, customKey")

    def find_one(self, params: dict[str, str], contact_type: str | None = None) -> str:
        """The single matching id; 404 ContactNotFound, or 409 MultipleMatches with ``multipleMatchesFound``."""
        found = self.find(params, contact_type)
        if not found:
            raise ApiError(404, "ContactNotFound", "No contact matches the query")
        if len(found) > 1:
            raise ApiError(409, "MultipleMatches", "More than one contact matches", multipleMatchesFound=found)
        return found[0]

    # -- receipts, orders, triggers --------------------------------------------------------------------------------

    def add_receipt(self, receipt: dict[str, Any], contact_id: str) -> tuple[dict[str, Any], bool]:
        """Store a receipt; a known ``uniqueReceiptId`` is accepted but ignored (returns the first, False)."""
        with self.lock:
            existing = self.receipts.get(receipt["uniqueReceiptId"])
            if existing is not None:
                self.receipt_duplicates += 1
                return existing, False
            stored = {**receipt, "id": str(uuid.uuid4()), "contactId": contact_id, "receivedAt": _now()}
            self.receipts[receipt["uniqueReceiptId"]] = stored
            return stored, True

    def add_order(self, order: dict[str, Any], contact_id: str) -> dict[str, Any]:
        """v2 orders are stateless automation input: every call counts, duplicates included."""
        with self.lock:
            stored = {**order, "contactId": contact_id, "receivedAt": _now()}
            self.orders.append(stored)
            return stored

    def add_trigger(self, trigger_id: str, contact_id: str, data: dict[str, Any]) -> None:
        with self.lock:
            self.triggers.append({"triggerId": trigger_id, "contactId": contact_id, "data": data, "receivedAt": _now()})

    def trigger_count(self, trigger_id: str | None = None, contact_id: str | None = None) -> int:
        with self.lock:
            return sum(
                1
                for call in self.triggers
                if trigger_id in (None, call["triggerId"]) and contact_id in (None, call["contactId"])
            )

    # -- inspection -----------------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything the emulator holds and received, JSON-ready, for ``GET /_emulator/state``."""
        with self.lock:
            return {
                "contacts": [public_contact(contact) for contact in self.contacts.values()],
                "receipts": list(self.receipts.values()),
                "receipt_duplicates": self.receipt_duplicates,
                "orders": list(self.orders),
                "triggers": list(self.triggers),
                "trigger_counts": dict(Counter(call["triggerId"] for call in self.triggers)),
                "requests": self.requests,
                "throttled": self.throttled,
                "rate_limit": self.rate_limit,
            }


def public_contact(contact: dict[str, Any]) -> dict[str, Any]:
    """A contact as the API returns it (``IApiContact``: id, attributes, meta, preferences, consents)."""
    return {
        "id": contact["id"],
        "attributes": dict(contact["attributes"]),
        "meta": {**contact["meta"], "contactType": contact["contactType"]},
        "preferences": dict(contact["preferences"]),
        "consents": list(contact["consents"].values()),
    }
