"""Turn hub's views into Actito rows: orders and order lines, abandoned-cart interactions, mail parameters.

Rules, each for a reason:

- Every row's primary key is derived from hub's own stable ids (``<source>:<external id>``, ``<order>:<line>``,
  ``<trigger>:<cart>``), so a retry or a replay upserts the same row and never emits a second scenario event
  (INTERACTIONS tables emit on CREATE only).
- TIMESTAMP values are local time in the licence's zone, ``yyyy-MM-dd HH:mm:ss`` (Actito's format has no offset).
- Amounts and quantities go out as numbers; a missing value is left out rather than sent as null.
- Transactional-mail parameters are Actito's ``[{key, values: [text]}]``: nested objects join their keys with
  ``_``; a list of scalars is one key with several values; a list of objects is one key per field whose values
  line up by position (``accessories_sku: [A, B]``, ``accessories_name: [..., ...]``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from hub.delivery.outcomes import InvalidMessage

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
#: The CARTS row's ``data`` column holds the whole payload as JSON, cut to this many characters.
DATA_LIMIT = 8000


def timestamp(value: Any, zone: str, what: str = "placed_at") -> str:
    """An ISO 8601 instant (naive means UTC) as Actito's local ``yyyy-MM-dd HH:mm:ss`` in ``zone``."""
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise InvalidMessage(f"{what} is not an ISO 8601 date-time: {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(ZoneInfo(zone)).strftime(TIMESTAMP_FORMAT)


def number(value: Any, what: str) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(Decimal(str(value)))
    except InvalidOperation:
        raise InvalidMessage(f"{what} is not a number: {value!r}") from None


def _present(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if value is not None and value != ""}


def order_rows(view: Mapping[str, Any], link: Mapping[str, str], zone: str) -> dict[str, Any]:
    """``{"order": row, "lines": [row, ...]}`` for the ORDERS and ORDER_LINES tables; ``link`` is the profile key
    column and value every row carries."""
    order = view.get("order") or {}
    if not order.get("external_id"):
        raise InvalidMessage("the order has no external_id; Actito rows need a stable primary key")
    order_id = f"{order.get('source') or 'hub'}:{order['external_id']}"
    lines = []
    totals = []
    for line in view.get("lines") or []:
        where = f"order {order_id} line {line.get('line_no', '?')}"
        if not line.get("sku"):
            raise InvalidMessage(f"{where} has no sku")
        total = number(line.get("line_total"), f"{where} line_total")
        totals.append(total or 0.0)
        lines.append(
            _present(
                {
                    "lineId": f"{order_id}:{line.get('line_no', len(lines) + 1)}",
                    "orderId": order_id,
                    **link,
                    "lineNumber": line.get("line_no"),
                    "sku": str(line["sku"]),
                    "productName": line.get("product_name"),
                    "productGroup": line.get("product_group"),
                    "quantity": number(line.get("quantity"), f"{where} quantity"),
                    "unitPrice": number(line.get("unit_price"), f"{where} unit_price"),
                    "discount": number(line.get("discount"), f"{where} discount"),
                    "lineTotal": total,
                }
            )
        )
    total = number(order.get("total"), f"order {order_id} total")
    row = _present(
        {
            "orderId": order_id,
            **link,
            "orderMoment": timestamp(order.get("placed_at"), zone),
            "channel": order.get("channel"),
            "storeId": order.get("store_external_id"),
            "currency": order.get("currency"),
            "totalAmount": total if total is not None else (round(sum(totals), 2) if totals else None),
            "status": order.get("status"),
            "isReturn": bool(order.get("is_return")),
            "lineCount": len(lines),
        }
    )
    return {"order": row, "lines": lines}


def interaction_row(trigger_id: str, data: Mapping[str, Any], link: Mapping[str, str], zone: str) -> dict[str, Any]:
    """The INTERACTIONS row a table trigger inserts (an abandoned cart): its insert starts the scenario."""
    cart = data.get("cart") or {}
    event = data.get("event") or {}
    customer = data.get("customer") or {}
    anchor = cart.get("external_id") or cart.get("id")
    if anchor is None:
        anchor = f"{customer.get('id')}:{event.get('at')}"
    items = [item for item in cart.get("items") or [] if isinstance(item, Mapping)]
    accessories = [item for item in data.get("accessories") or [] if isinstance(item, Mapping)]
    fired = event.get("at")
    text = json.dumps(data, separators=(",", ":"), default=str)
    return _present(
        {
            "eventId": f"{data.get('trigger') or trigger_id}:{anchor}",
            **link,
            "trigger": data.get("trigger") or trigger_id,
            "firedMoment": timestamp(fired, zone, "event.at") if fired else None,
            "cartId": str(cart.get("external_id") or cart.get("id") or "") or None,
            "cartTotal": number(cart.get("total"), "cart total"),
            "currency": cart.get("currency"),
            "itemCount": len(items) if cart else None,
            "itemSkus": ",".join(str(item["sku"]) for item in items if item.get("sku")) or None,
            "accessorySkus": ",".join(str(item["sku"]) for item in accessories if item.get("sku")) or None,
            "data": text[:DATA_LIMIT],
        }
    )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def mail_parameters(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A trigger payload as transactional-mail parameters ``[{"key": ..., "values": [...]}]`` (nulls left out)."""
    found: dict[str, list[str]] = {}

    def walk(value: Any, key: str) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for name, inner in value.items():
                walk(inner, f"{key}_{name}" if key else str(name))
        elif isinstance(value, list | tuple):
            objects = [item for item in value if isinstance(item, Mapping)]
            if objects:
                fields = list(dict.fromkeys(name for item in objects for name in item))
                for name in fields:
                    column = [item.get(name) for item in objects]
                    if all(isinstance(v, Mapping | list | tuple) for v in column if v is not None):
                        continue  # deeper nesting has no place in a flat list of values
                    found.setdefault(f"{key}_{name}", []).extend("" if v is None else _text(v) for v in column)
            else:
                found.setdefault(key, []).extend(_text(item) for item in value if item is not None)
        else:
            found.setdefault(key, []).append(_text(value))

    walk(data, "")
    return [{"key": key, "values": values} for key, values in found.items()]
