"""From one ARTS POSLog ``<Transaction>`` element to a receipt record in the layout of the CSV POS export.

Records have the fields of the CSV POS layout (see ``mappings/pos_poslog.yaml``), with the lines nested::

    {"receipt_id": "1000000001",     # TransactionID, else "<store>-<workstation>-<business day>-<sequence>"
     "transaction_id": "1000000001", "store_id": "100", "register_id": "POS5", "sequence_no": "4711",
     "business_date": "2025-08-13", "timestamp": "2025-08-13T14:05:00",   # EndDateTime, else BeginDateTime or the day
     "operator_id": "John", "currency": "SEK", "loyalty_id": "7012345678", "customer_id": None,
     "is_return": False, "original_receipt_id": None, "tender_type": "Cash", "total": "4.89", "voided_lines": 0,
     "lines": [{"line_no": "1", "sku": "CA7865", "ean": None, "description": None, "item_type": "Stock",
                "qty": "3", "unit_price": "1.63", "line_discount": None, "line_total": "4.89",
                "is_return": False, "original_receipt_id": None}],
     "tenders": [{"line_no": "2", "tender_type": "Cash", "type_code": "Sale", "amount": "4.89", "change": None}]}

A return line has negative ``qty``, ``line_discount`` and ``line_total`` (as in the CSV layout) and the receipt
its ``TransactionLink`` names. Voided lines are left out (and counted); voided, cancelled, suspended and training
transactions, and other kinds of transaction (``ControlTransaction``, ``TenderControlTransaction``, ...), give no
record at all. Element and attribute names are matched without their namespace prefix, so vendor extensions such
as ``acs:LoyaltyID`` are read and unknown elements are skipped.

The element comes from :mod:`hub_plugins.files.poslog` with namespace prefixes removed. Where the notes on POSLog
are unsure (``DiscountAmount`` is taken as the line's whole discount; loyalty numbers are read from any
``LoyaltyAccountID``, ``LoyaltyID``, ``LoyaltyCardNumber`` or ``LoyaltyCardID`` element), the choice is made here.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree.ElementTree import Element

_NOT_SOLD = {"voided", "postvoided", "cancelled", "canceled", "suspended", "aborted", "training"}
_GTIN_TYPES = {"gtin", "ean", "ean13", "ean8", "upc", "upca", "upc-a", "upce", "upc-e"}
_LOYALTY_NAMES = ("LoyaltyAccountID", "LoyaltyID", "LoyaltyCardNumber", "LoyaltyCardID")
_MAX_MAGNITUDE = 15  # digits before the point: an amount beyond this is a broken export, not a price


class MalformedTransaction(ValueError):
    """A well-formed transaction that is not a receipt hub can read; the message says why."""


def receipt_record(transaction: Element) -> dict[str, Any] | None:
    """The receipt of one ``<Transaction>`` (tags without prefixes); None for what is not a completed sale.

    Raises :class:`MalformedTransaction` naming the first thing that makes it unreadable.
    """
    retail = transaction.find("RetailTransaction")
    if retail is None:
        if any(child.tag.endswith("Transaction") for child in transaction):
            return None  # ControlTransaction, TenderControlTransaction, ...: no sale
        raise MalformedTransaction("holds no RetailTransaction, nor any other kind of transaction")
    if _not_sold(transaction, retail):
        return None
    store = _text(transaction, "RetailStoreID") or _text(transaction, "BusinessUnit/UnitID")
    workstation = _text(transaction, "WorkstationID")
    business_day = _date(transaction, "BusinessDayDate")
    receipt_id = _receipt_id(transaction, store, workstation)
    if receipt_id is None:
        missing = [n for n, v in (("RetailStoreID", store), ("WorkstationID", workstation)) if not v]
        missing += [n for n in ("BusinessDayDate", "SequenceNumber") if not _text(transaction, n)]
        raise MalformedTransaction(f"no TransactionID, and no {', '.join(missing)} to name it by")
    lines: list[dict[str, Any]] = []
    tenders: list[dict[str, Any]] = []
    voided = 0
    numbers: set[str] = set()
    for position, item in enumerate(retail.findall("LineItem"), 1):
        line_no = _line_no(item, position)
        if line_no in numbers:  # as order lines they would overwrite each other
            raise MalformedTransaction(f"LineItem {line_no}: the SequenceNumber of an earlier line item")
        numbers.add(line_no)
        if _flag(item, "VoidFlag"):
            voided += 1
            continue
        for child in item:
            if child.tag in ("Sale", "Return"):
                lines.append(_item_line(child, line_no, store, workstation))
            elif child.tag == "Tender":
                tenders.append(_tender(child, line_no))
    if not lines:
        if voided:
            return None  # every line voided: a voided receipt
        raise MalformedTransaction("no Sale or Return line item")
    returns = [line for line in lines if line["is_return"]]
    return {
        "receipt_id": receipt_id,
        "transaction_id": _text(transaction, "TransactionID"),
        "store_id": store,
        "register_id": workstation,
        "sequence_no": _text(transaction, "SequenceNumber"),
        "business_date": business_day,
        "timestamp": _timestamp(transaction) or business_day,
        "operator_id": _text(transaction, "OperatorID"),
        "currency": _text(transaction, "CurrencyCode"),
        "loyalty_id": _loyalty_id(transaction),
        "customer_id": _text(retail, "Customer/CustomerID"),
        "is_return": len(returns) == len(lines),
        "original_receipt_id": next((r["original_receipt_id"] for r in returns if r["original_receipt_id"]), None),
        "tender_type": tenders[0]["tender_type"] if tenders else None,
        "total": _plain(_number(retail, "Total[@TotalType='TransactionGrandAmount']", "Total")),
        "voided_lines": voided,
        "lines": lines,
        "tenders": tenders,
    }


def _not_sold(transaction: Element, retail: Element) -> bool:
    if any(_flag(transaction, name) for name in ("CancelFlag", "VoidFlag", "TrainingModeFlag")):
        return True
    return (retail.get("TransactionStatus") or "").strip().lower() in _NOT_SOLD


def _receipt_id(element: Element, store: str | None, workstation: str | None) -> str | None:
    """TransactionID, else store, workstation, business day and sequence number joined by ``-``."""
    transaction_id = _text(element, "TransactionID")
    if transaction_id:
        return transaction_id
    day, sequence = _text(element, "BusinessDayDate"), _text(element, "SequenceNumber")
    if store and workstation and day and sequence:
        return f"{store}-{workstation}-{day}-{sequence}"
    return None


def _item_line(item: Element, line_no: str, store: str | None, workstation: str | None) -> dict[str, Any]:
    where = f"LineItem {line_no}: {item.tag}"
    sku, ean = _item_ids(item)
    if not (sku or ean):
        raise MalformedTransaction(f"{where} has no ItemID or POSIdentity/POSItemID")
    sign = Decimal(-1) if item.tag == "Return" else Decimal(1)
    quantity = _number(item, "Quantity", where)
    extended = _number(item, "ExtendedAmount", where)
    discount = _number(item, "DiscountAmount", where)
    if discount is None:
        modifiers = [_number(m, "Amount", where) for m in item.findall("RetailPriceModifier")]
        discount = sum((m for m in modifiers if m is not None), Decimal(0)) if modifiers else None
    unit_price = _first(_number(item, "RegularSalesUnitPrice", where), _number(item, "ActualSalesUnitPrice", where))
    total = None if extended is None else extended - (discount or 0)
    link = item.find("TransactionLink")
    original = None
    if link is not None:
        store = _text(link, "RetailStoreID") or _text(link, "BusinessUnit/UnitID") or store
        original = _receipt_id(link, store, _text(link, "WorkstationID") or workstation)
    return {
        "line_no": line_no,
        "sku": sku or ean,
        "ean": ean,
        "description": _text(item, "Description"),
        "item_type": item.get("ItemType"),
        "qty": _signed(quantity if quantity is not None else Decimal(1), sign),
        "unit_price": _plain(unit_price),
        "line_discount": _signed(discount, sign),
        "line_total": _signed(total, sign),
        "is_return": item.tag == "Return",
        "original_receipt_id": original,
    }


def _item_ids(item: Element) -> tuple[str | None, str | None]:
    """(sku, ean): ItemID unless typed as a GTIN, else the untyped POSIdentity; a GTIN-typed id is the EAN."""
    sku = ean = None
    item_id = item.find("ItemID")
    if item_id is not None and (item_id.text or "").strip():
        if (item_id.get("Type") or "").strip().lower() in _GTIN_TYPES:
            ean = (item_id.text or "").strip()
        else:
            sku = (item_id.text or "").strip()
    for identity in item.findall("POSIdentity"):
        kind = (identity.get("POSIDType") or "").strip().lower()
        value = _text(identity, "POSItemID")
        if value and not kind and sku is None:
            sku = value
        elif value and kind in _GTIN_TYPES and ean is None:
            ean = value
    return sku, ean


def _tender(tender: Element, line_no: str) -> dict[str, Any]:
    where = f"LineItem {line_no}: Tender"
    return {
        "line_no": line_no,
        "tender_type": tender.get("TenderType"),
        "type_code": tender.get("TypeCode"),
        "amount": _plain(_number(tender, "Amount", where)),
        "change": _plain(_first(_number(tender, "TenderChange/Amount", where), _number(tender, "TenderChange", where))),
    }


def _loyalty_id(transaction: Element) -> str | None:
    for element in transaction.iter():
        if element.tag in _LOYALTY_NAMES and (element.text or "").strip():
            return (element.text or "").strip()
    return None


def _line_no(item: Element, position: int) -> str:
    text = _text(item, "SequenceNumber")
    if text is None:
        return str(position)
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise MalformedTransaction(f"LineItem {position}: SequenceNumber {text!r} is not a whole number")
    return str(int(text))


def _date(element: Element, path: str) -> str | None:
    text = _text(element, path)
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        raise MalformedTransaction(f"{path} {text!r} is not a date (YYYY-MM-DD)") from None


def _timestamp(transaction: Element) -> str | None:
    for path in ("EndDateTime", "BeginDateTime"):
        text = _text(transaction, path)
        if text is not None:
            try:
                datetime.fromisoformat(text)
            except ValueError:
                raise MalformedTransaction(f"{path} {text!r} is not an ISO 8601 date-time") from None
            return text
    return None


def _number(element: Element, path: str, where: str) -> Decimal | None:
    text = _text(element, path)
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise MalformedTransaction(f"{where} {path} {text!r} is not a number") from None
    if not value.is_finite() or value.adjusted() >= _MAX_MAGNITUDE or int(value.as_tuple().exponent) < -_MAX_MAGNITUDE:
        raise MalformedTransaction(f"{where} {path} {text!r} is not a usable number")
    return value


def _first(*values: Decimal | None) -> Decimal | None:
    return next((value for value in values if value is not None), None)


def _signed(value: Decimal | None, sign: Decimal) -> str | None:
    return None if value is None else _plain(value * sign if value else value)


def _plain(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:f}"


def _text(element: Element, path: str) -> str | None:
    found = element.find(path)
    text = None if found is None or found.text is None else found.text.strip()
    return text or None


def _flag(element: Element, name: str) -> bool:
    value = element.get(name) or _text(element, name) or ""
    return value.strip().lower() in ("true", "1")


def label(transaction: Element) -> str:
    for path in ("TransactionID", "SequenceNumber"):
        text = _text(transaction, path)
        if text:
            return f"{path} {text[:40]!r}"
    return "without an id"
