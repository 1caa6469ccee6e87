"""Turn hub's order view into a Voyado Engage receipt (``POST /api/v2/receipts``).

Rules, each for a reason Engage gives:

- ``uniqueReceiptId`` is ``<source>:<external_id>``: stable across retries and replays, so Engage ignores a
  receipt it already has and an ``order`` message is safe to send twice.
- ``createdDate`` is local time with its offset in the hub's time zone (Engage asks for local time, not UTC).
- A line with a negative quantity, or any line of a return order, is a ``RETURN`` row: positive ``quantity``,
  zero or negative ``grossPaidPrice``.
- Totals add up: ``totalGrossPrice`` is the order total when it has one, and any difference to the sum of the
  lines (shipping, rounding, a discount on the whole order) becomes one ``ADJUSTMENT`` row; the single payment
  row carries the same total.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from hub.delivery.outcomes import InvalidMessage

_CENT = Decimal("0.01")


def _money(value: Any, what: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value)).quantize(_CENT, ROUND_HALF_UP)
    except InvalidOperation:
        raise InvalidMessage(f"{what} is not a number: {value!r}") from None


def local_time(value: Any, timezone: str) -> str:
    """An ISO 8601 instant (UTC or any offset; naive means UTC) as local time with offset in ``timezone``."""
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidMessage(f"placed_at is not an ISO 8601 date-time: {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(ZoneInfo(timezone)).isoformat(timespec="seconds")


def _item(line: dict[str, Any], is_return: bool) -> tuple[dict[str, Any], Decimal]:
    where = f"line {line.get('line_no', '?')}"
    if not line.get("sku"):
        raise InvalidMessage(f"{where} has no sku")
    try:
        quantity = Decimal(str(line.get("quantity") if line.get("quantity") is not None else 1))
    except InvalidOperation:
        raise InvalidMessage(f"{where}: quantity is not a number: {line.get('quantity')!r}") from None
    total = _money(line.get("line_total"), f"{where} line_total")
    if total is None:
        unit = _money(line.get("unit_price"), f"{where} unit_price")
        if unit is None:
            raise InvalidMessage(f"{where} has neither line_total nor unit_price")
        discount = _money(line.get("discount"), f"{where} discount") or Decimal(0)
        total = (unit * quantity - discount).quantize(_CENT, ROUND_HALF_UP)
    returned = is_return or quantity < 0
    total = -abs(total) if returned else total
    count = abs(quantity)
    item: dict[str, Any] = {
        "type": "RETURN" if returned else "PURCHASE",
        "sku": str(line["sku"]),
        "quantity": int(count) if count == count.to_integral_value() and count else 1,
        "grossPaidPrice": float(total),
    }
    if item["quantity"] != count:
        item["extraData"] = [{"name": "quantity", "value": str(count)}]
    if line.get("product_name"):
        item["articleName"] = str(line["product_name"])
    if line.get("product_group"):
        item["articleGroup"] = str(line["product_group"])
    discount = _money(line.get("discount"), f"{where} discount")
    if discount:
        item["discounts"] = [{"value": float(discount), "type": "discount", "description": "line discount"}]
    return item, total


def build_receipt(
    view: dict[str, Any],
    contact: dict[str, Any],
    *,
    timezone: str,
    store_external_id: str | None,
    currency: str | None,
    payment_method: str,
) -> dict[str, Any]:
    """The receipt body for one order view; ``contact`` is the ``{matchKey, matchKeyType, contactType}`` block."""
    order = view.get("order") or {}
    external_id = order.get("external_id") or order.get("id")
    if external_id in (None, ""):
        raise InvalidMessage("the order has no external_id")
    if not order.get("placed_at"):
        raise InvalidMessage(f"order {external_id} has no placed_at")
    store = order.get("store_external_id") or store_external_id
    if not store:
        raise InvalidMessage(f"order {external_id} has no store and the connector sets no store_external_id")
    money = order.get("currency") or currency
    if not money:
        raise InvalidMessage(f"order {external_id} has no currency and the connector sets no currency")
    lines = view.get("lines") or []
    if not lines:
        raise InvalidMessage(f"order {external_id} has no lines; a receipt needs at least one item")
    is_return = bool(order.get("is_return"))
    items, summed = [], Decimal(0)
    for line in sorted(lines, key=lambda line: line.get("line_no") or 0):
        item, value = _item(line, is_return)
        items.append(item)
        summed += value
    total = _money(order.get("total"), "the order total")
    if total is None:
        total = summed
    elif is_return:
        total = -abs(total)
    if total != summed:
        items.append(
            {"type": "ADJUSTMENT", "sku": "ADJUSTMENT", "quantity": 1, "grossPaidPrice": float(total - summed)}
        )
    extra = [{"name": "source", "value": str(order.get("source") or "")}]
    if order.get("channel"):
        extra.append({"name": "channel", "value": str(order["channel"])})
    if order.get("original_order_external_id"):
        extra.append({"name": "originalReceipt", "value": str(order["original_order_external_id"])})
    return {
        "contact": contact,
        "uniqueReceiptId": f"{order.get('source') or 'hub'}:{external_id}",
        "receiptNumber": str(external_id),
        "createdDate": local_time(order["placed_at"], timezone),
        "storeExternalId": str(store),
        "currency": str(money).upper(),
        "totalGrossPrice": float(total),
        "paymentMethods": [{"type": payment_method, "description": payment_method, "value": float(total)}],
        "items": items,
        "extraData": extra,
    }
