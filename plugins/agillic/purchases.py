"""Orders as rows of Agillic's One-to-Many purchases table: one row per order line, keyed so a resend replaces it."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from hub.delivery.outcomes import InvalidMessage
from hub_plugins.agillic._formats import to_agillic


def purchase_rows(
    view: Mapping[str, Any], *, date_format: str, timestamp_format: str, zone: ZoneInfo
) -> list[dict[str, Any]]:
    """The rows of an ``order`` view. ``ID`` is ``<source>:<order>:<line>``: the same on every retry and replay
    (the primary key ``:batchUpdateRecords`` replaces by). Empty values are left out."""
    order, lines = view.get("order") or {}, view.get("lines") or []
    if not lines:
        raise InvalidMessage(f"order {order.get('external_id')} has no lines; Agillic purchases are its lines")
    placed = to_agillic(order.get("placed_at"), date_format=date_format, timestamp_format=timestamp_format, zone=zone)
    rows = []
    for line in lines:
        row = {
            "ID": f"{order.get('source')}:{order.get('external_id')}:{line.get('line_no')}",
            "ORDER_ID": order.get("external_id"),
            "LINE_NO": line.get("line_no"),
            "SKU": line.get("sku"),
            "PRODUCT_NAME": line.get("product_name"),
            "PRODUCT_GROUP": line.get("product_group"),
            "QUANTITY": _number(line.get("quantity")),
            "UNIT_PRICE": _number(line.get("unit_price")),
            "DISCOUNT": _number(line.get("discount")),
            "LINE_TOTAL": _number(line.get("line_total")),
            "CURRENCY": order.get("currency"),
            "PURCHASE_DATE": placed,
            "CHANNEL": order.get("channel"),
            "STORE": order.get("store_external_id"),
            "IS_RETURN": bool(order.get("is_return")),
        }
        rows.append({name: value for name, value in row.items() if value is not None})
    return rows


def _number(value: Any) -> int | float | None:
    """Decimal text (hub's JSON-ready money and quantities) as a JSON number: whole numbers as integers."""
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return int(number) if number == number.to_integral_value() else float(number)
