"""What a default emulated Agillic instance defines: credentials, Person Data fields, the PURCHASES table, and
the events, flows and static target groups config/examples/agillic.yaml names (an admin makes these in the UI)."""

from __future__ import annotations

from typing import Literal

FieldType = Literal["STRING", "NUMBER", "BOOLEAN", "DATE", "TIMESTAMP"]

DEFAULT_CLIENT_ID = "emulator-client"
DEFAULT_CLIENT_SECRET = "emulator-secret"
#: Person Data fields of a default instance (an admin defines them in Agillic's UI).
DEFAULT_PERSON_DATA: dict[str, FieldType] = {
    "EMAIL": "STRING",
    "FIRSTNAME": "STRING",
    "LASTNAME": "STRING",
    "MOBILE": "STRING",
    "BIRTHDATE": "DATE",
    "GENDER": "STRING",
    "ADDRESS": "STRING",
    "ZIPCODE": "STRING",
    "CITY": "STRING",
    "COUNTRY": "STRING",
    "LANGUAGE": "STRING",
    "MEMBER_NO": "STRING",
    "CUSTOMER_NO": "STRING",
    "COMPANY": "STRING",
    "EMAIL_OPT_IN": "BOOLEAN",
    "SMS_OPT_IN": "BOOLEAN",
    "HUB_TIER": "STRING",
    "HUB_NEWSLETTER": "BOOLEAN",
    "HUB_RECENT_GRILL_BUYERS": "BOOLEAN",
    "HUB_LAPSING_REGULARS": "BOOLEAN",
}
#: The PURCHASES One-to-Many table hub writes order lines to; ``ID`` is its primary key.
PURCHASE_FIELDS: dict[str, FieldType] = {
    "ID": "STRING",
    "ORDER_ID": "STRING",
    "LINE_NO": "NUMBER",
    "SKU": "STRING",
    "PRODUCT_NAME": "STRING",
    "PRODUCT_GROUP": "STRING",
    "QUANTITY": "NUMBER",
    "UNIT_PRICE": "NUMBER",
    "DISCOUNT": "NUMBER",
    "LINE_TOTAL": "NUMBER",
    "CURRENCY": "STRING",
    "PURCHASE_DATE": "TIMESTAMP",
    "CHANNEL": "STRING",
    "STORE": "STRING",
    "IS_RETURN": "BOOLEAN",
}
DEFAULT_TABLES = {"PURCHASES": PURCHASE_FIELDS}
#: Events, flows and static target groups of a default instance: those config/examples/agillic.yaml names.
DEFAULT_EVENTS = frozenset(
    {"POST_PURCHASE_CARE_TIPS", "POST_PURCHASE_ACCESSORIES", "ABANDONED_CART", "BIRTHDAY", "WELCOME_TIER_A"}
)
DEFAULT_FLOWS = frozenset({"WIN_BACK", "POINTS_EXPIRING", "SALES_NEWSLETTER"})
DEFAULT_TARGET_GROUPS = frozenset({"HUB_TIER_A", "HUB_TIER_B", "HUB_TIER_C", "HUB_NEWSLETTER"})
