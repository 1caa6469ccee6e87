"""The emulated shop's state: records, deletion events, the cost bucket, bulk operations and webhook subscriptions.

Everything the HTTP layer and the GraphQL resolvers touch goes through :class:`ShopState` under its lock. A
record change replaces the record's dict, so readers holding the old one (a bulk snapshot) stay consistent.
"""

from __future__ import annotations

import itertools
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hub_plugins.shopify import _records as rec
from hub_plugins.shopify._sender import WebhookSender

STREAMS = ("customers", "orders", "products", "checkouts", "inventory")
GID_TYPES = {
    "customers": "Customer",
    "orders": "Order",
    "products": "Product",
    "checkouts": "AbandonedCheckout",
    "inventory": "InventoryItem",
}
#: What a control-API change of a stream's record sends, when a webhook subscription asks for it.
TOPICS = {
    ("customers", "create"): "customers/create",
    ("customers", "update"): "customers/update",
    ("orders", "create"): "orders/create",
    ("orders", "update"): "orders/updated",
    ("checkouts", "create"): "checkouts/create",
    ("checkouts", "update"): "checkouts/update",
}


class ControlError(Exception):
    """A control-API request the emulator cannot do: ``status`` 404 (unknown stream or key) or 422 (bad body)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class BulkOp:
    number: int
    query: str
    created_at: datetime
    base_url: str
    status: str = "CREATED"
    completed_at: datetime | None = None
    lines: list[bytes] = field(default_factory=list)
    root_count: int = 0
    error_code: str | None = None
    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    expires: float = 0.0  # monotonic deadline of the result URL

    @property
    def gid(self) -> str:
        return f"gid://shopify/BulkOperation/{self.number}"


def now_utc() -> datetime:
    """Shopify's clock: UTC, whole seconds."""
    return datetime.now(UTC).replace(microsecond=0)


def parse_at(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise ControlError(422, f"{what} must be an ISO 8601 time, e.g. 2025-01-06T09:00:00Z")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ControlError(422, f"{what} {value!r} is not an ISO 8601 time") from None
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).replace(microsecond=0)


class ShopState:
    """One shop. ``tokens`` are the accepted access tokens; the bucket is ``bucket_max`` points, ``restore_rate``/s."""

    def __init__(
        self,
        *,
        tokens: tuple[str, ...],
        shop_domain: str = "hub-emulator.myshopify.com",
        bucket_max: float = 1000.0,
        restore_rate: float = 50.0,
        seed: int = 7,
    ) -> None:
        self.lock = threading.RLock()
        self.tokens = set(tokens)
        self.shop_domain = shop_domain
        self.records: dict[str, dict[int, dict[str, Any]]] = {s: {} for s in STREAMS}
        self.malformed: set[tuple[str, int]] = set()
        self.deletions: list[dict[str, Any]] = []
        self.bucket_max = bucket_max
        self.restore_rate = restore_rate
        self.available = bucket_max
        self._bucket_at = time.monotonic()
        self.forced_throttles: list[float] = []
        self.bulk_ops: dict[int, BulkOp] = {}
        self.bulk_url_ttl = 7 * 24 * 3600.0
        self.bulk_fail_next = False
        self.bulk_delay = 0.0
        self.requests = 0
        self.throttled = 0
        self.rng = random.Random(seed)
        self._ids = itertools.count(5_000_000_001)
        self._numbers = itertools.count(1)
        self.webhooks = WebhookSender(shop_domain)

    def next_id(self) -> int:
        return next(self._ids)

    # ------------------------------------------------------------------------------------------ records

    def record(self, stream: str, key: Any) -> dict[str, Any]:
        try:
            return self.records[self._stream(stream)][int(key)]
        except (KeyError, ValueError, TypeError):
            raise ControlError(404, f"no {stream} record {key!r}") from None

    def put(self, stream: str, items: Any, updated_at: Any = None) -> list[str]:
        """Create or change records (``_key`` names one to change); every one gets ``updated_at`` (or now)."""
        self._stream(stream)
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise ControlError(422, "records must be a list of objects")
        at = parse_at(updated_at, "updated_at") if updated_at is not None else now_utc()
        keys = []
        with self.lock:
            for item in items:
                fields = dict(item)
                key = fields.pop("_key", None)
                record = self._change(stream, key, fields, at) if key is not None else self._create(stream, fields, at)
                keys.append(str(record["id"]))
        return keys

    def delete(self, stream: str, key: Any, at: Any = None) -> None:
        moment = parse_at(at, "at") if at is not None else now_utc()
        with self.lock:
            record = self.record(stream, key)
            del self.records[stream][record["id"]]
            if stream == "products":
                self.deletions.append(
                    {"subject_id": f"gid://shopify/Product/{record['id']}", "type": "PRODUCT", "occurred_at": moment}
                )

    def set_malformed(self, stream: str, key: Any) -> None:
        with self.lock:
            record = self.record(stream, key)
            self.malformed.add((stream, record["id"]))

    def is_malformed(self, stream: str, ident: int) -> bool:
        return (stream, ident) in self.malformed

    def customer_of(self, record: dict[str, Any]) -> dict[str, Any] | None:
        ident = record.get("customer_id")
        return None if ident is None else self.records["customers"].get(ident)

    def _stream(self, stream: str) -> str:
        if stream not in self.records:
            raise ControlError(404, f"no stream {stream!r}; streams: {', '.join(STREAMS)}")
        return stream

    def _create(self, stream: str, fields: dict[str, Any], at: datetime) -> dict[str, Any]:
        n = next(self._numbers)
        base: dict[str, Any]
        if stream == "customers":
            base = rec.default_customer(n, self.rng)
        elif stream == "orders":
            base = self._default_order(n)
        elif stream == "products":
            base = rec.default_product(n, self.rng, self.next_id)
        elif stream == "checkouts":
            base = self._default_checkout(n)
        else:
            base = rec.default_inventory(n, self.rng, self.next_id)
        record = {**base, **fields, "id": self.next_id(), "created_at": fields.get("created_at", at), "updated_at": at}
        if "total_price" in fields:
            record.pop("_derived_total", None)
        self._complete(stream, record, at)
        self.records[stream][record["id"]] = record
        self._emit(stream, "create", record)
        return record

    def _change(self, stream: str, key: Any, fields: dict[str, Any], at: datetime) -> dict[str, Any]:
        old = self.record(stream, key)
        record = {**old, **fields, "id": old["id"], "updated_at": at}
        self._complete(stream, record, at)
        self.records[stream][record["id"]] = record
        self._emit(stream, "update", record)
        if stream == "orders":
            known = {refund["id"] for refund in old.get("refunds") or []}
            for refund in record.get("refunds") or []:
                if refund["id"] not in known and self.webhooks.subscriptions:
                    self.webhooks.emit("refunds/create", rec.rest_refund(refund, record))
        return record

    def _complete(self, stream: str, record: dict[str, Any], at: datetime) -> None:
        """Give nested items ids and fill what Shopify derives (order totals, refund times, level times)."""
        if stream in ("orders", "checkouts"):
            for line in record.get("line_items") or []:
                line.setdefault("id", self.next_id())
                line.setdefault("title", line.get("sku") or "Item")
                line.setdefault("quantity", 1)
                line.setdefault("price", "100.00")
                line.setdefault("total_discount", "0.00")
            if "total_price" not in record or record.get("_derived_total"):
                total = sum(Decimal(str(line["price"])) * line["quantity"] for line in record.get("line_items") or [])
                record["total_price"] = rec.money(total)
        if stream == "orders":
            record.setdefault("current_total_price", record["total_price"])
            for refund in record.get("refunds") or []:
                refund.setdefault("id", self.next_id())
                refund.setdefault("created_at", at)
                for item in refund.get("refund_line_items") or []:
                    item.setdefault("id", self.next_id())
        if stream == "inventory":
            for level in record.get("levels") or []:
                level.setdefault("id", self.next_id())
                level.setdefault("updated_at", at)
        if stream == "products":
            for variant in record.get("variants") or []:
                variant.setdefault("id", self.next_id())
                variant.setdefault("inventory_item_id", self.next_id())
                variant.setdefault("updated_at", at)

    def _default_order(self, n: int) -> dict[str, Any]:
        customers = list(self.records["customers"].values())
        customer = customers[n % len(customers)] if customers else None
        return {
            "name": f"#{1000 + n}",
            "email": customer["email"] if customer else f"guest{n}@online.no",
            "phone": None,
            "processed_at": None,
            "cancelled_at": None,
            "currency": "NOK",
            "financial_status": "paid",
            "total_discounts": "0.00",
            "discount_codes": [],
            "source_name": "web",
            "customer_id": customer["id"] if customer else None,
            "line_items": rec.default_lines(self.rng, self.next_id),
            "refunds": [],
            "_derived_total": True,
        }

    def _default_checkout(self, n: int) -> dict[str, Any]:
        customers = list(self.records["customers"].values())
        customer = customers[n % len(customers)] if customers else None
        token = secrets.token_hex(16)
        return {
            "name": f"#C{n}",
            "token": token,
            "email": customer["email"] if customer else f"shopper{n}@online.no",
            "completed_at": None,
            "currency": "NOK",
            "customer_id": customer["id"] if customer else None,
            "abandoned_checkout_url": f"https://{self.shop_domain}/checkouts/{token}/recover",
            "line_items": rec.default_lines(self.rng, self.next_id),
            "_derived_total": True,
        }

    def _emit(self, stream: str, change: str, record: dict[str, Any]) -> None:
        topic = TOPICS.get((stream, change))
        if topic is None or not self.webhooks.subscriptions:
            return
        self.webhooks.emit(topic, self.rest(stream, record))

    def rest(self, stream: str, record: dict[str, Any]) -> dict[str, Any]:
        """The record's REST JSON (webhook payloads); a malformed record keeps its bad change time."""
        clean = {k: v for k, v in record.items() if not k.startswith("_")}
        if self.is_malformed(stream, record["id"]):
            clean["updated_at"] = "not a timestamp"
        if stream == "customers":
            return rec.rest_customer(clean)
        if stream == "orders":
            return rec.rest_order(clean, self.customer_of(record))
        if stream == "checkouts":
            return rec.rest_checkout(clean, self.customer_of(record))
        return {k: rec.iso(v) for k, v in clean.items()}

    # ------------------------------------------------------------------------------------------ the cost bucket

    def charge(self, requested: int) -> tuple[bool, dict[str, Any]]:
        """Take ``requested`` points if the bucket holds them; ``(ran, throttleStatus)``. Forced throttles first."""
        with self.lock:
            self.requests += 1
            now = time.monotonic()
            self.available = min(self.bucket_max, self.available + (now - self._bucket_at) * self.restore_rate)
            self._bucket_at = now
            if self.forced_throttles:
                wait = self.forced_throttles.pop(0)
                self.throttled += 1
                rate = requested / wait if wait > 0 else self.restore_rate
                available = 0.0 if wait > 0 else float(requested)
                return False, self._status(available, rate)
            if requested > self.available:
                self.throttled += 1
                return False, self._status(self.available, self.restore_rate)
            self.available -= requested
            return True, self._status(self.available, self.restore_rate)

    def refund(self, points: float) -> dict[str, Any]:
        """Give back what a query was charged beyond its actual cost; the throttleStatus after it."""
        with self.lock:
            self.available = min(self.bucket_max, self.available + max(0.0, points))
            return self._status(self.available, self.restore_rate)

    def _status(self, available: float, rate: float) -> dict[str, Any]:
        return {
            "maximumAvailable": float(self.bucket_max),
            "currentlyAvailable": int(available),
            "restoreRate": float(rate),
        }

    def force_throttle(self, count: int, retry_after: float) -> None:
        with self.lock:
            self.forced_throttles.extend([float(retry_after)] * count)

    # ------------------------------------------------------------------------------------------ bulk

    def new_bulk(self, query: str, base_url: str) -> BulkOp:
        with self.lock:
            op = BulkOp(number=next(self._numbers), query=query, created_at=now_utc(), base_url=base_url)
            self.bulk_ops[op.number] = op
            return op

    def running_bulk(self) -> BulkOp | None:
        with self.lock:
            return next((op for op in self.bulk_ops.values() if op.status in ("CREATED", "RUNNING")), None)

    def current_bulk(self) -> BulkOp | None:
        with self.lock:
            return max(self.bulk_ops.values(), key=lambda op: op.number, default=None)

    def snapshot(self, stream: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.records[stream].values())

    def counts(self) -> dict[str, Any]:
        with self.lock:
            return {
                "records": {stream: len(records) for stream, records in self.records.items()},
                "deletions": len(self.deletions),
                "malformed": len(self.malformed),
                "requests": self.requests,
                "throttled": self.throttled,
                "bucket": {"maximum": self.bucket_max, "available": self.available, "restore_rate": self.restore_rate},
                "bulk_operations": {op.gid: op.status for op in self.bulk_ops.values()},
                "webhooks": {
                    "subscriptions": len(self.webhooks.subscriptions),
                    "deliveries": len(self.webhooks.deliveries),
                    "delivered": sum(1 for d in self.webhooks.deliveries.values() if d.delivered),
                },
            }
