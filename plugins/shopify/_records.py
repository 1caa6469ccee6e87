"""The emulator's records: realistic defaults for new ones, and their REST JSON (what webhooks carry).

Records are stored as plain dicts in REST's snake_case with integer ids and aware datetimes; a change replaces the
dict (copy-on-write), so a bulk operation reading a snapshot never sees a record half changed.
"""

from __future__ import annotations

import random
from datetime import datetime
from decimal import Decimal
from typing import Any

Record = dict[str, Any]

FIRST_NAMES = ("Kari", "Ola", "Ingrid", "Lars", "Sofie", "Emil", "Nora", "Jonas", "Maja", "Henrik", "Ella", "Magnus")
LAST_NAMES = ("Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Berg", "Dahl", "Lie", "Haugen", "Bakken")
PRODUCTS = (
    ("Gas grill", "grills", "Weber", "2190.00"),
    ("Grill cover", "grill accessories", "Weber", "349.00"),
    ("Tent 3p", "tents", "Helsport", "2990.00"),
    ("Sleeping bag", "sleeping bags", "Bergans", "1490.00"),
    ("Headlamp", "lights", "Petzl", "499.00"),
    ("Hiking boots", "footwear", "Lowa", "2490.00"),
)
LOCATIONS = ((1001, "Oslo warehouse"), (1002, "Bergen store"))


def iso(value: Any) -> Any:
    """A datetime as Shopify writes it (UTC, whole seconds, ``Z``); anything else (a malformed value) as it is."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def money(value: Any) -> str:
    return f"{Decimal(str(value)):.2f}"


def default_customer(n: int, rng: random.Random) -> Record:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    subscribed = rng.random() < 0.5
    return {
        "email": f"{first}.{last}.{n}@online.no".lower(),
        "phone": f"+47{90000000 + n}",
        "first_name": first,
        "last_name": last,
        "state": "enabled",
        "tags": [],
        "locale": "nb",
        "email_marketing_consent": {
            "state": "subscribed" if subscribed else "not_subscribed",
            "opt_in_level": "single_opt_in" if subscribed else None,
            "consent_updated_at": None,
        },
        "sms_marketing_consent": {
            "state": "not_subscribed",
            "opt_in_level": "single_opt_in",
            "consent_updated_at": None,
            "consent_collected_from": "other",
        },
        "default_address": {"address1": f"Storgata {n % 90 + 1}", "city": "Oslo", "zip": "0155", "country_code": "NO"},
    }


def default_lines(rng: random.Random, next_id: Any, count: int | None = None) -> list[Record]:
    lines = []
    for _ in range(count if count is not None else rng.randint(1, 3)):
        title, _group, _vendor, price = rng.choice(PRODUCTS)
        index = PRODUCTS.index((title, _group, _vendor, price))
        lines.append(
            {
                "id": next_id(),
                "sku": f"SKU-{index + 1:04d}",
                "title": title,
                "quantity": rng.randint(1, 2),
                "price": price,
                "total_discount": "0.00",
                "variant_id": 40000 + index,
                "product_id": 30000 + index,
            }
        )
    return lines


def default_product(n: int, rng: random.Random, next_id: Any) -> Record:
    title, group, vendor, price = PRODUCTS[n % len(PRODUCTS)]
    return {
        "title": f"{title} {n}",
        "handle": f"{title.lower().replace(' ', '-')}-{n}",
        "product_type": group,
        "vendor": vendor,
        "tags": [group],
        "status": "active",
        "variants": [
            {
                "id": next_id(),
                "sku": f"P{n:05d}-{size}",
                "title": size,
                "price": price,
                "barcode": None,
                "inventory_item_id": next_id(),
            }
            for size in ("S", "L")[: rng.randint(1, 2)]
        ],
    }


def default_inventory(n: int, rng: random.Random, next_id: Any) -> Record:
    return {
        "sku": f"INV-{n:05d}",
        "variant_id": next_id(),
        "levels": [
            {"id": next_id(), "location_id": location, "location_name": name, "available": rng.randint(0, 20)}
            for location, name in LOCATIONS
        ],
    }


# ------------------------------------------------------------------------------------------------ REST JSON


def rest_customer(record: Record) -> Record:
    out = {k: iso(v) for k, v in record.items() if k not in ("email_marketing_consent", "sms_marketing_consent")}
    out["tags"] = ", ".join(record.get("tags") or [])
    for key in ("email_marketing_consent", "sms_marketing_consent"):
        consent = record.get(key)
        out[key] = None if consent is None else {k: iso(v) for k, v in consent.items()}
    out["admin_graphql_api_id"] = f"gid://shopify/Customer/{record['id']}"
    return out


def rest_refund(refund: Record, order: Record) -> Record:
    lines = {line["id"]: line for line in order.get("line_items") or []}
    return {
        "id": refund["id"],
        "order_id": order["id"],
        "created_at": iso(refund.get("created_at")),
        "restock": True,
        "refund_line_items": [
            {
                "id": item["id"],
                "line_item_id": item["line_item_id"],
                "quantity": item["quantity"],
                "subtotal": float(
                    Decimal(str(lines.get(item["line_item_id"], {}).get("price", "0"))) * item["quantity"]
                ),
                "total_tax": 0.0,
                "line_item": dict(lines.get(item["line_item_id"], {})),
            }
            for item in refund.get("refund_line_items") or []
        ],
        "transactions": [],
        "admin_graphql_api_id": f"gid://shopify/Refund/{refund['id']}",
    }


def rest_order(record: Record, customer: Record | None) -> Record:
    out = {k: iso(v) for k, v in record.items() if k not in ("refunds", "discount_codes", "customer_id")}
    out["discount_codes"] = [
        {"code": code, "amount": "0.00", "type": "fixed_amount"} for code in record["discount_codes"]
    ]
    out["customer"] = None if customer is None else rest_customer(customer)
    out["refunds"] = [rest_refund(refund, record) for refund in record.get("refunds") or []]
    out["admin_graphql_api_id"] = f"gid://shopify/Order/{record['id']}"
    return out


def rest_checkout(record: Record, customer: Record | None) -> Record:
    out = {k: iso(v) for k, v in record.items() if k != "customer_id"}
    out["customer"] = None if customer is None else rest_customer(customer)
    return out
