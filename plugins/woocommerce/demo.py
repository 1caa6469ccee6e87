"""The demo's web shop in the WooCommerce emulator: what ``hub sandbox`` serves, and config/examples/woocommerce.yaml
reads.

``hub demo-data`` writes the web shop's orders as Shopify-like JSON Lines (``var/demo/webshop/orders-*.jsonl``)
and the catalogue as ``var/demo/pim/products.jsonl``. Seeding turns them into what the same shop would hold in
WooCommerce: each registered shopper a customer (a WordPress user, with the checkout's newsletter box as
Mailchimp for WooCommerce keeps it), each order an order (``paid`` -> ``completed``, ``refunded`` ->
``refunded``) with its lines and refunds (negative quantities), each SKU a simple product. A guest keeps the
billing e-mail only, as a WooCommerce guest checkout does. Missing files seed nothing.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from hub_plugins.woocommerce._state import Item, ShopState, money, parse_time

DEMO_DIR = Path("var/demo")
_STATUS = {"paid": "completed", "partially_refunded": "completed", "refunded": "refunded", "pending": "pending"}


def _lines(path: str) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                row = json.loads(line)
            except ValueError:  # the demo plants a few broken lines
                continue
            if isinstance(row, dict):
                yield row


def seed_demo(state: ShopState, demo_dir: Path = DEMO_DIR) -> dict[str, int]:
    """Add the demo's products, customers and orders to ``state``; how many of each."""
    counts = {"products": 0, "customers": 0, "orders": 0}
    with state.lock:
        for row in _lines(str(demo_dir / "pim" / "products.jsonl")) if (demo_dir / "pim").is_dir() else ():
            _product(state, row)
            counts["products"] += 1
        users: dict[Any, int] = {}
        for path in sorted(glob.glob(str(demo_dir / "webshop" / "orders-*.jsonl"))):
            for row in _lines(path):
                if _order(state, row, users):
                    counts["orders"] += 1
        counts["customers"] = len(users)
    return counts


def _product(state: ShopState, row: dict[str, Any]) -> None:
    ident = next(state._posts)
    record = state._product(ident)
    stamp = parse_time(str(row.get("updated_at") or "2024-01-01T00:00:00Z"))
    group = str(row.get("product_group") or "")
    record.update(
        name=row.get("name") or record["name"],
        sku=row.get("sku") or "",
        price=str(row.get("price") or record["price"]),
        regular_price=str(row.get("price") or record["price"]),
        categories=[{"id": 15, "name": row.get("category") or group, "slug": group}],
        brands=[{"id": 40, "name": row.get("brand") or "", "slug": str(row.get("brand") or "").lower()}],
    )
    state.items["products"][ident] = state.skus[record["sku"]] = Item(record, stamp, stamp)


def _customer(state: ShopState, row: dict[str, Any], users: dict[Any, int], at: datetime) -> int:
    person = row.get("customer") or {}
    key = person.get("id")
    if key is None:
        return 0
    if key in users:
        return users[key]
    ident = users[key] = next(state._users)
    record = state._customer(ident)
    email = str(person.get("email") or record["email"])
    first, last = person.get("first_name") or "", person.get("last_name") or ""
    record.update(email=email, first_name=first, last_name=last, username=email.split("@")[0])
    record["billing"].update(email=email, first_name=first, last_name=last, phone=person.get("phone") or "")
    consent = person.get("accepts_marketing")
    if consent is not None:
        record["meta_data"] = [
            {"id": ident, "key": "mailchimp_woocommerce_is_subscribed", "value": "1" if consent else "0"}
        ]
    state.items["customers"][ident] = Item(record, at, at)
    return ident


def _order(state: ShopState, row: dict[str, Any], users: dict[Any, int]) -> bool:
    try:
        created = parse_time(str(row["created_at"]))
        updated = parse_time(str(row.get("updated_at") or row["created_at"]))
    except (KeyError, ValueError):
        return False
    customer_id = _customer(state, row, users, created)
    ident = next(state._posts)
    lines = [
        {"sku": line.get("sku"), "quantity": int(line.get("quantity") or 1), "price": line.get("price") or "0"}
        for line in row.get("line_items") or []
    ]
    record = state._order(ident, {"customer_id": customer_id, "line_items": lines}, created)
    email = (row.get("customer") or {}).get("email")
    if email:
        record["billing"]["email"] = email
    record.update(
        status=_STATUS.get(str(row.get("financial_status")), "processing"), currency=row.get("currency") or "NOK"
    )
    item = Item(record, created, updated)
    state.items["orders"][ident] = item
    for refund in row.get("refunds") or []:
        wanted = [
            {"sku": (line.get("line_item") or {}).get("sku"), "quantity": int(line.get("quantity") or 1)}
            for line in refund.get("refund_line_items") or []
        ]
        refunded = parse_time(str(refund.get("created_at") or row["created_at"]))
        state._refund(item, [{"line_items": wanted}], refunded)
        item.modified = max(item.modified, refunded)  # a refund saves its order
    record["total"] = money(sum((Decimal(str(line["total"])) for line in record["line_items"]), Decimal(0)))
    record["status"] = _STATUS.get(str(row.get("financial_status")), "processing")
    return True
