"""Body validation of the emulator's receipt and v2 order endpoints, with the field named in every error.

Missing or malformed fields are 400 (``MissingRequiredField`` / ``InvalidFieldValue``); totals that do not add up
are 422 (``TotalsDoNotAddUp``). Engage documents "400 or 422 with an error code"; which check gives which status,
and the codes' names, are this emulator's choice (see the plugin README).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from hub_plugins.voyado._state import ApiError, VoyadoState

#: matchKeyType (case-insensitive, SDK enum or the docs' lower camel case) -> contact lookup parameter.
MATCH_KEY_TYPES = {
    "email": "email",
    "mobilephone": "mobilePhone",
    "socialsecuritynumber": "socialSecurityNumber",
    "membernumber": "memberNumber",
    "externalid": "externalId",
    "cardid": "cardId",
    "membernumberwithcardnumberasfallback": "memberNumberOrCardId",
    "contactid": "contactId",
}
RECEIPT_REQUIRED = (
    "contact",
    "uniqueReceiptId",
    "createdDate",
    "storeExternalId",
    "currency",
    "totalGrossPrice",
    "paymentMethods",
    "items",
)
ORDER_REQUIRED = (
    "contact",
    "orderNumber",
    "createdDate",
    "orderStatus",
    "paymentStatus",
    "language",
    "storeId",
    "currency",
    "totalGrossPrice",
    "items",
)
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_CENT = Decimal("0.01")


def _missing(field: str) -> ApiError:
    return ApiError(400, "MissingRequiredField", f"'{field}' is required", field=field)


def _invalid(field: str, why: str) -> ApiError:
    return ApiError(400, "InvalidFieldValue", f"'{field}' {why}", field=field)


def _require(body: dict[str, Any], fields: tuple[str, ...]) -> None:
    for field in fields:
        if body.get(field) in (None, "", []):
            raise _missing(field)


def _decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _invalid(field, "must be a number")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise _invalid(field, "must be a number") from None


def _check_date(value: Any, field: str) -> None:
    """Engage wants local time with its UTC offset; a date-time without an offset is refused."""
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise _invalid(field, "must be an ISO 8601 date-time with a UTC offset, e.g. 2021-11-12T10:14:00+01:00")


def _check_common(body: dict[str, Any]) -> None:
    _check_date(body["createdDate"], "createdDate")
    if not isinstance(body["currency"], str) or not _CURRENCY.match(body["currency"]):
        raise _invalid("currency", "must be an ISO 4217 code such as SEK")
    if not isinstance(body["items"], list):
        raise _invalid("items", "must be a list")


def _items_total(items: list[Any], kinds: tuple[str, ...], *, sku_for: tuple[str, ...]) -> Decimal:
    total = Decimal(0)
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if not isinstance(item, dict):
            raise _invalid(where, "must be an object")
        for field in ("type", "quantity", "grossPaidPrice"):
            if item.get(field) in (None, ""):
                raise _missing(f"{where}.{field}")
        if item["type"] not in kinds:
            raise _invalid(f"{where}.type", f"must be one of {', '.join(kinds)}")
        if item["type"] in sku_for and not item.get("sku"):
            raise _missing(f"{where}.sku")
        if isinstance(item["quantity"], bool) or not isinstance(item["quantity"], int):
            raise _invalid(f"{where}.quantity", "must be an integer")
        price = _decimal(item["grossPaidPrice"], f"{where}.grossPaidPrice")
        if item["type"] == "RETURN" and price > 0:
            raise _invalid(f"{where}.grossPaidPrice", "must be zero or negative on a RETURN row")
        total += price
    return total


def _adds_up(expected: Decimal, actual: Decimal, field: str, what: str) -> None:
    if abs(expected - actual) > _CENT:
        raise ApiError(422, "TotalsDoNotAddUp", f"'{field}' is {expected} but {what} add up to {actual}", field=field)


def resolve_contact(state: VoyadoState, contact: Any) -> str:
    """The contact id a receipt's or order's ``contact: {matchKey, matchKeyType, contactType?}`` points at."""
    if not isinstance(contact, dict):
        raise _invalid("contact", "must be an object")
    for field in ("matchKey", "matchKeyType"):
        if contact.get(field) in (None, ""):
            raise _missing(f"contact.{field}")
    param = MATCH_KEY_TYPES.get(str(contact["matchKeyType"]).lower())
    if param is None:
        raise _invalid("contact.matchKeyType", f"must be one of {', '.join(sorted(MATCH_KEY_TYPES))}")
    key = str(contact["matchKey"])
    if param == "contactId":
        return state.contact(key)["id"]
    return state.find_one({param: key}, contact.get("contactType") or "Member")


def validate_receipt(body: Any) -> dict[str, Any]:
    """A receipt that passes Engage's mandatory-field and totals checks, else :class:`ApiError`."""
    if not isinstance(body, dict):
        raise _invalid("receipt", "must be a JSON object")
    _require(body, RECEIPT_REQUIRED)
    _check_common(body)
    if not isinstance(body["uniqueReceiptId"], str):
        raise _invalid("uniqueReceiptId", "must be a string")
    if not isinstance(body["paymentMethods"], list):
        raise _invalid("paymentMethods", "must be a list")
    total = _decimal(body["totalGrossPrice"], "totalGrossPrice")
    items = _items_total(body["items"], ("PURCHASE", "RETURN", "ADJUSTMENT"), sku_for=("PURCHASE", "RETURN"))
    paid = Decimal(0)
    for index, method in enumerate(body["paymentMethods"]):
        where = f"paymentMethods[{index}]"
        if not isinstance(method, dict):
            raise _invalid(where, "must be an object")
        for field in ("type", "value"):
            if method.get(field) in (None, ""):
                raise _missing(f"{where}.{field}")
        paid += _decimal(method["value"], f"{where}.value")
    _adds_up(total, items, "totalGrossPrice", "the items' grossPaidPrice")
    _adds_up(total, paid, "totalGrossPrice", "the paymentMethods' values")
    return body


def validate_order(body: Any) -> dict[str, Any]:
    """A v2 order that passes the mandatory-field and totals checks (items plus fees), else :class:`ApiError`."""
    if not isinstance(body, dict):
        raise _invalid("order", "must be a JSON object")
    _require(body, ORDER_REQUIRED)
    _check_common(body)
    total = _decimal(body["totalGrossPrice"], "totalGrossPrice")
    summed = _items_total(body["items"], ("PURCHASE", "RETURN"), sku_for=("PURCHASE", "RETURN"))
    for fee in ("freightFee", "handlingFee", "totalRoundOff"):
        if isinstance(body.get(fee), dict) and body[fee].get("value") is not None:
            summed += _decimal(body[fee]["value"], f"{fee}.value")
    _adds_up(total, summed, "totalGrossPrice", "the items and fees")
    return body
