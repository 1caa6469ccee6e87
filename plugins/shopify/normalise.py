"""One raw record shape per stream, whether it came from a GraphQL read (camelCase, gids) or a webhook (REST JSON).

The shape is Shopify's REST resource (snake_case, numeric ids as text, money as text), because webhooks send
exactly that and it is what the demo's web shop exports look like; GraphQL nodes are rewritten into it, so one
mapping (``mappings/shopify_*.yaml``) serves both paths. What the rewrite adds, and why:

- ``id`` is the numeric id as text (``"450789469"``), ``admin_graphql_api_id`` the gid, on every record.
- Consent objects get ``decided_state``: the state when it is a decision (``subscribed``, ``unsubscribed``,
  ``redacted``), absent otherwise. ``not_subscribed`` means "never asked" and ``pending`` "awaiting
  confirmation": neither may override an opt-in another system holds, so the mapping's consent block is
  ``when: ...decided_state`` and says in YAML which decision is which status.
- Refund line items carry ``refund_id``, so the mapping can hang them under their return (a refund becomes a
  return order of its own: ``is_return``, ``original_order_external_id``).
- Checkouts get ``status`` (``open``, or ``closed`` once completed), the filter vocabulary of Shopify's own API.
- Inventory items get ``stock``: the SKU, the available quantity over all locations and per location (the
  payload of the ``stock_level`` product event the mapping makes).
- ``tags`` is a list (REST sends ``"a, b"``).

A node that cannot be rewritten (a missing field, an ``updatedAt`` that is no timestamp) becomes an error record,
``{"_error", "_raw", "id"}``, which the engine files as a reject with the payload exactly as received.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

Raw = dict[str, Any]
_DECISIONS = frozenset({"subscribed", "unsubscribed", "redacted"})


def legacy_id(value: Any) -> str | None:
    """``"gid://shopify/Order/450789469"`` or ``450789469`` -> ``"450789469"``; None stays None."""
    if value is None:
        return None
    text = str(value)
    return text.rsplit("/", 1)[-1] if text.startswith("gid://") else text


def timestamp(value: Any, field: str) -> str:
    """The ISO 8601 text of a change time the cursor relies on; ValueError when it is missing or not a time."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} is missing")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field} {value!r} is not an ISO 8601 timestamp") from None
    return value


def error_record(stream: str, node: Any, exc: Exception) -> Raw:
    """The reject-to-be for a node that cannot be read: why, the payload as received, and its id if it has one."""
    raw = orjson.dumps(node, default=str).decode()
    ident = legacy_id(node.get("id")) if isinstance(node, dict) else None
    where = f"{stream} {ident}" if ident else stream
    record: Raw = {"_error": f"{where}: {exc}", "_raw": raw}
    if ident is not None:
        record["id"] = ident
    return record


def guarded(stream: str, convert: Callable[[Raw], Raw], node: Any) -> Raw:
    """``convert(node)``, or an error record when the node does not have the shape Shopify documents."""
    try:
        return convert(node)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return error_record(stream, node, exc)


# ------------------------------------------------------------------------------------------------ GraphQL nodes


def _money(value: Any) -> str | None:
    if not value:
        return None
    return value["shopMoney"]["amount"]


def _currency(value: Any) -> str | None:
    if not value:
        return None
    return value["shopMoney"].get("currencyCode")


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else None


def _nodes(connection: Any) -> list[Raw]:
    if not connection:
        return []
    if "nodes" in connection:
        return list(connection["nodes"])
    return [edge["node"] for edge in connection.get("edges", [])]


def _consent(value: Any) -> Raw | None:
    if not value:
        return None
    state = _lower(value.get("marketingState"))
    consent: Raw = {
        "state": state,
        "opt_in_level": _lower(value.get("marketingOptInLevel")),
        "consent_updated_at": value.get("consentUpdatedAt"),
    }
    if "consentCollectedFrom" in value:
        consent["consent_collected_from"] = _lower(value.get("consentCollectedFrom"))
    return _decided(consent)


def _decided(consent: Raw) -> Raw:
    if consent.get("state") in _DECISIONS:
        consent["decided_state"] = consent["state"]
    else:
        consent.pop("decided_state", None)
    return consent


def _person(value: Any) -> Raw | None:
    if not value:
        return None
    return {
        "id": legacy_id(value.get("id")),
        "email": value.get("email"),
        "phone": value.get("phone"),
        "first_name": value.get("firstName"),
        "last_name": value.get("lastName"),
    }


def customer_node(node: Raw) -> Raw:
    address = node.get("defaultAddress") or None
    return {
        "id": legacy_id(node["id"]),
        "admin_graphql_api_id": node["id"],
        "email": node.get("email"),
        "phone": node.get("phone"),
        "first_name": node.get("firstName"),
        "last_name": node.get("lastName"),
        "state": _lower(node.get("state")),
        "tags": list(node.get("tags") or []),
        "locale": node.get("locale"),
        "created_at": node.get("createdAt"),
        "updated_at": timestamp(node.get("updatedAt"), "updatedAt"),
        "email_marketing_consent": _consent(node.get("emailMarketingConsent")),
        "sms_marketing_consent": _consent(node.get("smsMarketingConsent")),
        "default_address": None
        if address is None
        else {
            "address1": address.get("address1"),
            "city": address.get("city"),
            "zip": address.get("zip"),
            "country_code": address.get("countryCodeV2"),
        },
    }


def _order_line(line: Raw) -> Raw:
    return {
        "id": legacy_id(line["id"]),
        "sku": line.get("sku"),
        "title": line.get("title"),
        "quantity": line["quantity"],
        "price": _money(line.get("originalUnitPriceSet")),
        "total_discount": _money(line.get("totalDiscountSet")),
        "variant_id": legacy_id((line.get("variant") or {}).get("id")),
        "product_id": legacy_id((line.get("product") or {}).get("id")),
    }


def _refund_line(line: Raw, refund_id: str) -> Raw:
    item = line.get("lineItem") or {}
    subtotal = _money(line.get("subtotalSet"))
    price = None
    if subtotal is not None and line["quantity"]:
        price = str((Decimal(subtotal) / line["quantity"]).quantize(Decimal("0.01")))
    return {
        "id": legacy_id(line["id"]),
        "refund_id": refund_id,
        "line_item_id": legacy_id(item.get("id")),
        "quantity": line["quantity"],
        "subtotal": subtotal,
        "line_item": {"id": legacy_id(item.get("id")), "sku": item.get("sku"), "price": price},
    }


def refund_node(refund: Raw, order_id: str | None) -> Raw:
    refund_id = legacy_id(refund["id"]) or ""
    return {
        "id": refund_id,
        "order_id": order_id,
        "created_at": refund.get("createdAt"),
        "refund_line_items": [_refund_line(line, refund_id) for line in _nodes(refund.get("refundLineItems"))],
    }


def order_node(node: Raw) -> Raw:
    order_id = legacy_id(node["id"])
    return {
        "id": order_id,
        "admin_graphql_api_id": node["id"],
        "name": node.get("name"),
        "email": node.get("email"),
        "phone": node.get("phone"),
        "created_at": node.get("createdAt"),
        "updated_at": timestamp(node.get("updatedAt"), "updatedAt"),
        "processed_at": node.get("processedAt"),
        "cancelled_at": node.get("cancelledAt"),
        "currency": node.get("currencyCode"),
        "financial_status": _lower(node.get("displayFinancialStatus")),
        "total_price": _money(node.get("totalPriceSet")),
        "current_total_price": _money(node.get("currentTotalPriceSet")),
        "total_discounts": _money(node.get("totalDiscountsSet")),
        "discount_codes": [{"code": code} for code in node.get("discountCodes") or []],
        "source_name": node.get("sourceName"),
        "customer": _person(node.get("customer")),
        "line_items": [_order_line(line) for line in _nodes(node.get("lineItems"))],
        "refunds": [refund_node(refund, order_id) for refund in node.get("refunds") or []],
    }


def product_node(node: Raw) -> Raw:
    return {
        "id": legacy_id(node["id"]),
        "admin_graphql_api_id": node["id"],
        "title": node.get("title"),
        "handle": node.get("handle"),
        "product_type": node.get("productType") or None,
        "vendor": node.get("vendor") or None,
        "tags": list(node.get("tags") or []),
        "status": _lower(node.get("status")),
        "created_at": node.get("createdAt"),
        "updated_at": timestamp(node.get("updatedAt"), "updatedAt"),
        "variants": [
            {
                "id": legacy_id(variant["id"]),
                "sku": variant.get("sku") or None,
                "title": variant.get("title"),
                "price": variant.get("price"),
                "barcode": variant.get("barcode"),
                "inventory_item_id": legacy_id((variant.get("inventoryItem") or {}).get("id")),
                "updated_at": variant.get("updatedAt"),
            }
            for variant in _nodes(node.get("variants"))
        ],
    }


def checkout_node(node: Raw) -> Raw:
    customer = _person(node.get("customer"))
    return {
        "id": legacy_id(node["id"]),
        "admin_graphql_api_id": node["id"],
        "name": node.get("name"),
        "email": customer["email"] if customer else None,
        "created_at": node.get("createdAt"),
        "updated_at": timestamp(node.get("updatedAt"), "updatedAt"),
        "completed_at": node.get("completedAt"),
        "status": "closed" if node.get("completedAt") else "open",
        "abandoned_checkout_url": node.get("abandonedCheckoutUrl"),
        "currency": _currency(node.get("totalPriceSet")),
        "total_price": _money(node.get("totalPriceSet")),
        "customer": customer,
        "line_items": [
            {
                "id": legacy_id(line["id"]),
                "sku": line.get("sku"),
                "title": line.get("title"),
                "quantity": line["quantity"],
                "price": _money(line.get("originalUnitPriceSet")),
                "variant_id": legacy_id((line.get("variant") or {}).get("id")),
                "product_id": legacy_id((line.get("product") or {}).get("id")),
            }
            for line in _nodes(node.get("lineItems"))
        ],
    }


def inventory_node(node: Raw) -> Raw:
    levels = []
    for level in _nodes(node.get("inventoryLevels")):
        quantities = {q["name"]: q["quantity"] for q in level.get("quantities") or []}
        location = level.get("location") or {}
        levels.append(
            {
                "location_id": legacy_id(location.get("id")),
                "location_name": location.get("name"),
                "available": quantities.get("available"),
                "updated_at": level.get("updatedAt"),
            }
        )
    known = [level["available"] for level in levels if isinstance(level["available"], int)]
    sku = node.get("sku") or None
    return {
        "id": legacy_id(node["id"]),
        "admin_graphql_api_id": node["id"],
        "sku": sku,
        "variant_id": legacy_id((node.get("variant") or {}).get("id")),
        "updated_at": timestamp(node.get("updatedAt"), "updatedAt"),
        "stock": {"sku": sku, "available": sum(known) if known else None, "levels": levels},
    }


NODE_CONVERTERS: dict[str, Callable[[Raw], Raw]] = {
    "customers": customer_node,
    "orders": order_node,
    "products": product_node,
    "checkouts": checkout_node,
    "inventory": inventory_node,
}


# ------------------------------------------------------------------------------------------------ webhooks (REST)


def _tags(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(tag) for tag in value]
    if isinstance(value, str):
        return [tag.strip() for tag in value.split(",") if tag.strip()]
    return []


def _ids(record: Raw, *fields: str) -> None:
    for field in fields:
        if record.get(field) is not None:
            record[field] = str(record[field])


def _rest_person(value: Any) -> Raw | None:
    if not isinstance(value, dict):
        return None
    person = dict(value)
    _ids(person, "id")
    return person


def rest_customer(body: Raw) -> Raw:
    record = dict(body)
    _ids(record, "id")
    record["updated_at"] = timestamp(record.get("updated_at"), "updated_at")
    record["tags"] = _tags(record.get("tags"))
    for key in ("email_marketing_consent", "sms_marketing_consent"):
        if isinstance(record.get(key), dict):
            record[key] = _decided(dict(record[key]))
    return record


def rest_refund(body: Raw) -> Raw:
    refund = dict(body)
    _ids(refund, "id", "order_id")
    lines = []
    for line in refund.get("refund_line_items") or []:
        line = dict(line)
        _ids(line, "id", "line_item_id")
        line["refund_id"] = refund["id"]
        item = dict(line.get("line_item") or {})
        _ids(item, "id")
        line["line_item"] = item
        lines.append(line)
    refund["refund_line_items"] = lines
    return refund


def rest_order(body: Raw) -> Raw:
    record = dict(body)
    _ids(record, "id")
    record["updated_at"] = timestamp(record.get("updated_at"), "updated_at")
    record["customer"] = _rest_person(record.get("customer"))
    lines = []
    for line in record.get("line_items") or []:
        line = dict(line)
        _ids(line, "id", "variant_id", "product_id")
        lines.append(line)
    record["line_items"] = lines
    record["refunds"] = [rest_refund(refund) for refund in record.get("refunds") or []]
    return record


def rest_checkout(body: Raw) -> Raw:
    record = dict(body)
    _ids(record, "id")
    record["updated_at"] = timestamp(record.get("updated_at"), "updated_at")
    record["customer"] = _rest_person(record.get("customer"))
    if not record.get("email") and record["customer"]:
        record["email"] = record["customer"].get("email")
    record["status"] = "closed" if record.get("completed_at") else "open"
    lines = []
    for line in record.get("line_items") or []:
        line = dict(line)
        _ids(line, "id", "variant_id", "product_id")
        lines.append(line)
    record["line_items"] = lines
    return record


REST_CONVERTERS: dict[str, Callable[[Raw], Raw]] = {
    "customers": rest_customer,
    "orders": rest_order,
    "checkouts": rest_checkout,
}
