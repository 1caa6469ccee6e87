"""The emulated shop's memory: customers, orders (with refunds) and products, API keys, webhooks; and the control API.

Orders, refunds and products are WordPress posts and share one id sequence; customers are users (user 1 is the
site's admin). Times are kept in UTC, whole seconds, as WordPress stores them; the ``date_*`` fields are served in
the site's time zone without an offset and the ``*_gmt`` twins in UTC. A deleted order or product goes to the
trash (``status: trash``, its change time the deletion's), where ``status=trash`` lists it; a deleted customer is
gone for good, as WordPress deletes users.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hub_plugins.woocommerce._sender import Sender

STREAMS = ("customers", "orders", "products")
RESOURCE = {"customers": "customer", "orders": "order", "products": "product"}
DEFAULT_KEY = "ck_hub_sandbox_0000000000000000000000000000"
DEFAULT_SECRET = "cs_hub_sandbox_0000000000000000000000000000"
#: What a malformed record's change time is served as: MySQL's zero date, which a broken import leaves behind.
ZERO_DATE = "0000-00-00T00:00:00"
_FIRST = ("Kari", "Ola", "Ingrid", "Lars", "Sofie", "Jonas", "Emma", "Henrik", "Nora", "Magnus")
_LAST = ("Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Berg", "Haugen", "Dahl", "Lie", "Moen")
_PRODUCTS = (
    ("Regnjakke", "jakker", "Bergans", "1299.00"),
    ("Ullgenser", "gensere", "Devold", "899.00"),
    ("Turbukse", "bukser", "Norrona", "1499.00"),
    ("Lue", "tilbehor", "Devold", "249.00"),
    ("Votter", "tilbehor", "Bergans", "349.00"),
)


@dataclass(slots=True)
class ApiKey:
    """A REST API key: its secret, its permissions (read, write, read_write) and the nonces used (OAuth)."""

    secret: str
    permissions: str = "read_write"
    nonces: dict[str, int] = field(default_factory=dict)  # nonce -> timestamp


@dataclass(slots=True)
class Item:
    """One record as the emulator keeps it; :meth:`ShopState.serve` renders it as the API does."""

    record: dict[str, Any]
    created: datetime
    modified: datetime
    malformed: bool = False


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).replace(microsecond=0)


def money(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


class ShopState:
    """The shop in memory and :class:`hub.sources.emulator.EmulatorControl` on it."""

    def __init__(self, *, tls: bool = False, site_timezone: str = "Europe/Oslo") -> None:
        self.lock = threading.RLock()
        self.items: dict[str, dict[int, Item]] = {stream: {} for stream in STREAMS}
        self.refunds: dict[int, list[Item]] = {}  # order id -> its refunds
        self.skus: dict[str, Item] = {}  # product SKU -> product, for order lines
        self.keys: dict[str, ApiKey] = {DEFAULT_KEY: ApiKey(DEFAULT_SECRET)}
        self.tls = tls
        self.zone = ZoneInfo(site_timezone)
        self.throttled = 0
        self.retry_after = 1.0
        self.requests = 0
        self.sender = Sender()
        self._posts = itertools.count(100)
        self._users = itertools.count(2)
        self._order_items = itertools.count(1)  # order items have a table (and ids) of their own

    # ------------------------------------------------------------------------------------------ the control API

    def put(self, stream: str, records: Sequence[Mapping[str, Any]], *, updated_at: str | None = None) -> list[str]:
        table = self.items[stream]
        stamp = parse_time(updated_at) if updated_at else now()
        keys: list[str] = []
        events: list[tuple[str, int]] = []
        with self.lock:
            for given in records:
                fields = {k: copy.deepcopy(v) for k, v in given.items() if k != "_key"}
                if "_key" in given:
                    ident = _ident(given["_key"])
                    item = table[ident]
                    self._change(stream, item, fields, stamp)
                    events.append(("updated" if item.record.get("status") != "trash" else "restored", ident))
                else:
                    ident = next(self._users) if stream == "customers" else next(self._posts)
                    table[ident] = item = Item(self._create(stream, ident, fields, stamp), stamp, stamp)
                    events.append(("created", ident))
                if stream == "products" and item.record.get("sku"):
                    self.skus[str(item.record["sku"])] = item
                if stream == "orders":
                    self._total(item)
                keys.append(str(ident))
            payloads = [(event, self.serve(stream, table[ident])) for event, ident in events]
        for event, payload in payloads:
            self.sender.emit(f"{RESOURCE[stream]}.{event}", payload)
        return keys

    def delete(self, stream: str, key: str, *, at: str | None = None) -> None:
        ident = _ident(key)
        with self.lock:
            item = self.items[stream][ident]
            if stream == "customers":
                del self.items[stream][ident]
            else:
                item.record["status"] = "trash"
                item.modified = parse_time(at) if at else now()
        self.sender.emit(f"{RESOURCE[stream]}.deleted", {"id": ident})

    def malformed(self, stream: str, key: str) -> None:
        with self.lock:
            self.items[stream][_ident(key)].malformed = True

    def throttle(self, count: int, retry_after: float) -> None:
        with self.lock:
            self.throttled, self.retry_after = count, retry_after

    def take_throttle(self) -> float | None:
        """The wait to ask of this API request if it is throttled, else None; counts every API request."""
        with self.lock:
            self.requests += 1
            if self.throttled:
                self.throttled -= 1
                return self.retry_after
            return None

    # ------------------------------------------------------------------------------------------ serving

    def serve(self, stream: str, item: Item) -> dict[str, Any]:
        """The record as ``GET /wp-json/wc/v3/<stream>/<id>`` gives it."""
        body = copy.deepcopy(item.record)
        body.update(self._dates("date_created", item.created))
        body.update(self._dates("date_modified", item.modified))
        if item.malformed:
            body["date_modified_gmt"] = ZERO_DATE
        body["_links"] = {
            "self": [{"href": f"/wp-json/wc/v3/{stream}/{body['id']}"}],
            "collection": [{"href": f"/wp-json/wc/v3/{stream}"}],
        }
        return body

    def serve_refund(self, order_id: int, item: Item) -> dict[str, Any]:
        body = copy.deepcopy(item.record)
        body.update(self._dates("date_created", item.created))
        body["_links"] = {"up": [{"href": f"/wp-json/wc/v3/orders/{order_id}"}]}
        return body

    def _dates(self, name: str, moment: datetime) -> dict[str, str]:
        local = moment.astimezone(self.zone).replace(tzinfo=None)
        return {name: local.isoformat(timespec="seconds"), f"{name}_gmt": moment.strftime("%Y-%m-%dT%H:%M:%S")}

    # ------------------------------------------------------------------------------------------ records

    def _create(self, stream: str, ident: int, fields: dict[str, Any], stamp: datetime) -> dict[str, Any]:
        if stream == "customers":
            record = self._customer(ident)
        elif stream == "orders":
            record = self._order(ident, fields, stamp)
        else:
            record = self._product(ident)
        record.update(fields)
        return record

    def _change(self, stream: str, item: Item, fields: dict[str, Any], stamp: datetime) -> None:
        if stream == "orders" and "refunds" in fields:
            self._refund(item, fields.pop("refunds"), stamp)
        if stream == "orders" and "line_items" in fields:
            fields["line_items"] = [self._line(line) for line in fields["line_items"]]
        item.record.update(fields)
        item.modified = stamp

    def _customer(self, ident: int) -> dict[str, Any]:
        first, last = _FIRST[ident % len(_FIRST)], _LAST[(ident // len(_FIRST)) % len(_LAST)]
        email = f"{first}.{last}{ident}@example.no".lower()
        address = {
            "first_name": first,
            "last_name": last,
            "company": "",
            "address_1": f"Storgata {ident}",
            "address_2": "",
            "city": "Oslo",
            "postcode": "0155",
            "country": "NO",
            "state": "",
        }
        return {
            "id": ident,
            "email": email,
            "first_name": first,
            "last_name": last,
            "role": "customer",
            "username": email.split("@")[0],
            "billing": {**address, "email": email, "phone": f"9{ident:07d}"},
            "shipping": {**address, "phone": ""},
            "is_paying_customer": False,
            "avatar_url": "https://secure.gravatar.com/avatar/?s=96&d=mm&r=g",
            "meta_data": [],
        }

    def _product(self, ident: int) -> dict[str, Any]:
        name, category, brand, price = _PRODUCTS[ident % len(_PRODUCTS)]
        return {
            "id": ident,
            "name": f"{name} {ident}",
            "slug": f"{name.lower()}-{ident}",
            "type": "simple",
            "status": "publish",
            "sku": f"WC-{ident}",
            "price": price,
            "regular_price": price,
            "sale_price": "",
            "on_sale": False,
            "manage_stock": True,
            "stock_quantity": 10,
            "stock_status": "instock",
            "categories": [
                {"id": 15 + _PRODUCTS.index((name, category, brand, price)), "name": category.title(), "slug": category}
            ],
            "tags": [],
            "brands": [{"id": 40, "name": brand, "slug": brand.lower()}],
            "upsell_ids": [],
            "cross_sell_ids": [],
            "parent_id": 0,
            "variations": [],
            "meta_data": [],
        }

    def _order(self, ident: int, fields: dict[str, Any], stamp: datetime) -> dict[str, Any]:
        customer_id = int(fields.get("customer_id", 0) or 0)
        customer = self.items["customers"].get(customer_id)
        billing = (
            copy.deepcopy(customer.record["billing"])
            if customer
            else {
                "first_name": "Gjest",
                "last_name": f"Kunde {ident}",
                "company": "",
                "address_1": "",
                "address_2": "",
                "city": "Bergen",
                "postcode": "5003",
                "country": "NO",
                "state": "",
                "email": f"gjest{ident}@example.no",
                "phone": "",
            }
        )
        lines = fields.pop("line_items", None) or [
            {"sku": f"WC-{ident}-A", "quantity": 1 + ident % 2},
            {"sku": f"WC-{ident}-B", "quantity": 1},
        ]
        refunds = fields.pop("refunds", None)
        record = {
            "id": ident,
            "parent_id": 0,
            "number": str(ident),
            "order_key": f"wc_order_{ident:08d}",
            "created_via": "checkout",
            "version": "9.4.0",
            "status": "processing",
            "currency": "NOK",
            "prices_include_tax": True,
            "customer_id": customer_id,
            "billing": billing,
            "shipping": {k: v for k, v in billing.items() if k != "email"},
            "payment_method": "vipps",
            "payment_method_title": "Vipps",
            "customer_note": "",
            "meta_data": [],
            "line_items": [self._line(line) for line in lines],
            "tax_lines": [],
            "shipping_lines": [],
            "fee_lines": [],
            "coupon_lines": [],
            "refunds": [],
        }
        if refunds:
            self._refund(Item(record, stamp, stamp), refunds, stamp)
        return record

    def _line(self, given: Mapping[str, Any]) -> dict[str, Any]:
        sku = given.get("sku")
        product = self.skus.get(str(sku))
        quantity = int(given.get("quantity", 1))
        price = Decimal(str(given.get("price") or (product.record["price"] if product else "199.00")))
        total = price * quantity
        return {
            "id": next(self._order_items),
            "name": product.record["name"] if product else f"Vare {sku}",
            "product_id": product.record["id"] if product else 0,
            "variation_id": 0,
            "quantity": quantity,
            "tax_class": "",
            "subtotal": money(total),
            "subtotal_tax": "0.00",
            "total": money(total),
            "total_tax": "0.00",
            "taxes": [],
            "meta_data": [],
            "sku": sku,
            "price": float(price),
            "image": {"id": 0, "src": ""},
            "parent_name": None,
        }

    def _refund(self, order: Item, refunds: Sequence[Mapping[str, Any]], stamp: datetime) -> None:
        """Add refunds to an order: each ``{"amount"?, "reason"?, "line_items"?: [{"sku", "quantity"}]}``."""
        lines_by_sku = {line.get("sku"): line for line in order.record["line_items"]}
        held = self.refunds.setdefault(order.record["id"], [])
        for given in refunds:
            ident = next(self._posts)
            wanted = given.get("line_items") or [{"sku": order.record["line_items"][0]["sku"], "quantity": 1}]
            lines = []
            for line in wanted:
                sold = lines_by_sku.get(line.get("sku"), order.record["line_items"][0])
                quantity = abs(int(line.get("quantity", 1)))
                total = Decimal(str(sold["price"])) * quantity
                lines.append(
                    {
                        "id": next(self._order_items),
                        "name": sold["name"],
                        "product_id": sold["product_id"],
                        "variation_id": 0,
                        "quantity": -quantity,
                        "tax_class": "",
                        "subtotal": money(-total),
                        "subtotal_tax": "0.00",
                        "total": money(-total),
                        "total_tax": "0.00",
                        "taxes": [],
                        "meta_data": [{"id": 0, "key": "_refunded_item_id", "value": str(sold["id"])}],
                        "sku": sold["sku"],
                        "price": sold["price"],
                    }
                )
            amount = Decimal(str(given.get("amount") or -sum(Decimal(line["total"]) for line in lines)))
            record = {
                "id": ident,
                "amount": money(amount),
                "reason": str(given.get("reason", "")),
                "refunded_by": 1,
                "refunded_payment": False,
                "meta_data": [],
                "line_items": lines,
                "shipping_lines": [],
                "tax_lines": [],
                "fee_lines": [],
            }
            held.append(Item(record, stamp, stamp))
            order.record["refunds"].append({"id": ident, "reason": record["reason"], "total": money(-amount)})
        if refunds:
            order.record["status"] = "refunded" if len(held) and _refunded_all(order, held) else order.record["status"]

    def _total(self, item: Item) -> None:
        lines = item.record.get("line_items") or []
        total = sum((Decimal(str(line.get("total", "0"))) for line in lines), Decimal(0))
        item.record.setdefault("discount_total", "0.00")
        item.record.setdefault("shipping_total", "0.00")
        item.record["total"] = money(total)
        item.record.setdefault("total_tax", "0.00")


def _refunded_all(order: Item, refunds: list[Item]) -> bool:
    refunded = sum((Decimal(r.record["amount"]) for r in refunds), Decimal(0))
    total = sum((Decimal(str(line.get("total", "0"))) for line in order.record["line_items"]), Decimal(0))
    return refunded >= total


def _ident(key: Any) -> int:
    try:
        return int(str(key))
    except ValueError:
        raise KeyError(str(key)) from None
