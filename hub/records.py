"""The unified records a mapping emits, before identity resolution and loading.

A compiled mapping turns one raw record into a :class:`Mapped`: unified rows grouped by entity. The entity names
and their fields below are the contract between mappings (``mappings/*.yaml``), identity resolution and the loader.
Values are already coerced: ``str``, ``int``, ``bool``, ``Decimal`` for money and quantities, timezone-aware
``datetime`` (any zone; the loader stores UTC), ``date``, or JSON-able ``dict``/``list`` for ``*_json`` fields.

The ``customer`` entity is special: at most one per raw record, it is the person the record is about. Its
identity keys (``external_id``, ``email``, ``phone``, ``member_no``) are resolved to one golden customer, and
every other row of the same raw record that has a ``customer_id`` column (order, consent, cart, event,
wishlist_item) is attached to that customer. A record without a ``customer`` row (an anonymous POS receipt)
attaches nobody.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Identity keys of the ``customer`` entity, in the order resolution tries them.
IDENTITY_KEYS: tuple[str, ...] = ("external_id", "member_no", "email", "phone")

#: Entity name -> the fields a mapping may set. ``required`` fields must be present for the row to load.
ENTITY_FIELDS: dict[str, dict[str, bool]] = {
    "customer": {
        "external_id": False,  # the source system's own id; the system is the connector's name
        "email": False,  # normalised by the mapping (``email`` transform)
        "phone": False,  # E.164 (``e164`` transform)
        "member_no": False,  # loyalty/member number
        "first_name": False,
        "last_name": False,
        "birth_date": False,  # date
        "gender": False,
        "street": False,
        "postcode": False,
        "city": False,
        "country": False,  # ISO 3166-1 alpha-2
        "language": False,
        "company_name": False,
        "is_b2b": False,  # bool
        "created_at": False,  # when the source created the customer
        "updated_at": False,  # when the source last changed it: the recency in survivorship
    },
    "consent": {
        "channel": True,  # email | sms | post | phone
        "status": True,  # opt_in | opt_out
        "at": False,  # when the person gave or withdrew it; without it an opt-in cannot override an opt-out
        "evidence": False,  # free text: form, store, double opt-in id...
    },
    "store": {
        "external_id": True,
        "name": False,
        "city": False,
        "region": False,
        "country": False,
        "opened_at": False,
    },
    "product": {
        "sku": True,
        "name": False,
        "product_group": False,
        "category": False,
        "brand": False,
        "price": False,  # Decimal
        "stock": False,  # Decimal: units available to sell (all locations)
        "in_stock": False,  # bool: the source's own in-stock flag
        "is_accessory": False,  # bool
        "updated_at": False,
    },
    "product_relation": {
        "sku": True,
        "related_sku": True,
        "kind": True,  # accessory | cross_sell | replacement
    },
    "order": {
        "external_id": True,  # unique per connector
        "placed_at": True,
        "channel": False,  # web | pos | erp | app
        "store_external_id": False,
        "currency": False,
        "total": False,  # Decimal; when absent the loader sums the lines
        "status": False,
        "is_return": False,
        "original_order_external_id": False,  # for a return receipt
        "campaign": False,  # the marketing campaign behind the order: a discount code, a UTM campaign
        "updated_at": False,
    },
    "order_line": {
        "order_external_id": True,
        "line_no": True,  # int, unique within the order
        "sku": False,
        "quantity": True,  # Decimal; negative = returned
        "unit_price": False,
        "discount": False,
        "line_total": False,  # Decimal; when absent quantity * unit_price - discount
    },
    "cart": {
        "external_id": True,
        "created_at": False,
        "updated_at": True,
        "currency": False,
        "total": False,
        "status": False,  # open | converted | abandoned
        "items_json": False,
    },
    "event": {
        "external_id": True,
        "type": True,
        "at": True,
        "payload_json": False,
    },
    "wishlist_item": {
        "external_id": True,  # unique per connector, e.g. "{customer}:{sku}"
        "sku": True,
        "added_at": True,
        "removed_at": False,  # the customer took it off the list
    },
}

#: Entity -> field -> the type the loader stores, for fields that are not text. A mapping field without ``type:``
#: gets this type, and a mapping that declares another type for it is a compile error.
FIELD_TYPES: dict[str, dict[str, str]] = {
    "customer": {"birth_date": "date", "is_b2b": "bool", "created_at": "datetime", "updated_at": "datetime"},
    "consent": {"at": "datetime"},
    "store": {"opened_at": "date"},
    "product": {
        "price": "decimal",
        "stock": "decimal",
        "in_stock": "bool",
        "is_accessory": "bool",
        "updated_at": "datetime",
    },
    "product_relation": {},
    "order": {"placed_at": "datetime", "total": "decimal", "is_return": "bool", "updated_at": "datetime"},
    "order_line": {
        "line_no": "int",
        "quantity": "decimal",
        "unit_price": "decimal",
        "discount": "decimal",
        "line_total": "decimal",
    },
    "cart": {"created_at": "datetime", "updated_at": "datetime", "total": "decimal", "items_json": "json"},
    "event": {"at": "datetime", "payload_json": "json"},
    "wishlist_item": {"added_at": "datetime", "removed_at": "datetime"},
}

ENTITIES: tuple[str, ...] = tuple(ENTITY_FIELDS)


@dataclass(slots=True)
class Mapped:
    """The unified rows produced from one raw record, by entity. ``key`` identifies the raw record in rejects."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    key: str | None = None

    @property
    def customer(self) -> dict[str, Any] | None:
        rows = self.rows.get("customer")
        return rows[0] if rows else None


@dataclass(slots=True)
class RejectedRecord:
    """A raw record that could not be mapped: every field error, and the payload exactly as it arrived."""

    raw: dict[str, Any]
    errors: list[str]
    key: str | None = None
