"""Buy events: an order view becomes one set of tracking parameters per order line, built once when enqueued.

Raptor's tracking parameters are positional (``p1``..``p999``), their meaning set per account under
Integrations > Live tracking; :class:`~hub_plugins.raptor.settings.RaptorSettings.parameters` says which
position carries what. ``ProductId`` (the SKU) must equal the feed's, so the master id comes from the same rule
the feed uses (:func:`master_id`).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from hub.delivery.outcomes import InvalidMessage
from hub_plugins.raptor.settings import RaptorSettings


@lru_cache(maxsize=32)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def master_id(sku: str, pattern: str | None) -> str:
    """The master (product) id of a SKU: the first group of ``pattern`` where it matches, else the SKU itself."""
    if pattern:
        found = _pattern(pattern).search(sku)
        if found and found.group(1):
            return found.group(1)
    return sku


def ruid(keys: Mapping[str, Any], settings: RaptorSettings) -> str | None:
    """Raptor's user id for a customer: the first of ``settings.user_keys`` it has, base64 (or plain) text."""
    for key in settings.user_keys:
        value = keys.get(key)
        if value not in (None, ""):
            text = str(value).strip()
            if key == "email":
                text = text.lower()
            if settings.ruid_encoding == "plain":
                return text
            return base64.b64encode(text.encode("utf-8")).decode("ascii")
    return None


def _decimal_text(value: Any) -> str | None:
    """Tracking values are plain numbers with a dot (Raptor parses them, it does not show them)."""
    if value in (None, ""):
        return None
    try:
        return format(Decimal(str(value)).normalize(), "f")
    except InvalidOperation:
        return None


def buy_events(view: Mapping[str, Any], settings: RaptorSettings) -> dict[str, Any]:
    """The ``order`` payload: the order's number and a parameter set per line that Raptor counts as a buy.

    Lines without a SKU or with a quantity of zero or less (returns, corrections) are left out; an order with no
    line left, a return, or one of a channel not in ``settings.channels`` gets ``skip`` and a reason instead.
    """
    keys = view.get("_hub") or {}
    order = view.get("order") or {}
    user = ruid(keys, settings)
    if user is None:
        wanted = " or ".join(settings.user_keys)
        raise InvalidMessage(f"the order's customer has no {wanted}, which Raptor's ruid is built from")
    number = str(order.get("external_id") or "")
    if not number:
        raise InvalidMessage("the order has no external id to send as Raptor's order id")
    order_id = f"{order.get('source')}:{number}" if settings.order_id == "source_external_id" else number
    payload: dict[str, Any] = {"order_id": order_id, "ruid": user, "lines": []}
    channel = order.get("channel")
    if order.get("is_return"):
        return {**payload, "skip": "a return is not a buy"}
    if settings.channels is not None and channel not in settings.channels:
        return {**payload, "skip": f"channel {channel!r} is not in settings.channels"}
    for line in view.get("lines") or []:
        sku = line.get("sku")
        quantity = _decimal_text(line.get("quantity"))
        if not sku or (quantity is not None and Decimal(quantity) <= 0):
            continue
        values: dict[str, str | None] = {
            "event": "buy",
            "sku": str(sku),
            "master_id": master_id(str(sku), settings.feed.master_id_pattern),
            "order_id": order_id,
            "quantity": quantity,
            "unit_price": _decimal_text(line.get("unit_price")),
            "line_total": _decimal_text(line.get("line_total")),
            "currency": order.get("currency"),
            "product_name": line.get("product_name"),
            "product_group": line.get("product_group"),
            "channel": channel,
            "store": order.get("store_external_id"),
        }
        params = {
            position: str(values[field])
            for position, field in settings.parameters.items()
            if values[field] not in (None, "")
        }
        payload["lines"].append({"line_no": line.get("line_no"), "params": params})
    if not payload["lines"]:
        payload["skip"] = "no line with a SKU and a positive quantity"
    return payload
