"""What each Odoo stream reads, how a row is judged and cleaned, and the cursor on ``(write_date, id)``.

Odoo writes an empty value as ``false`` whatever the field's type. Rows are yielded with ``false`` as ``null`` for
every field that is not a boolean, so a mapping sees a missing e-mail as missing, not as the text "False".
``write_date`` is naive UTC, ``"YYYY-MM-DD HH:MM:SS"``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hub.connectors import Stream

ODOO_TIME = "%Y-%m-%d %H:%M:%S"
_SECOND = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Model:
    """An Odoo model read as a stream: the fields read and which of them are booleans (their ``false`` is data)."""

    stream: str
    model: str
    fields: tuple[str, ...]
    booleans: frozenset[str]
    description: str

    def as_stream(self) -> Stream:
        return Stream(self.stream, key="id", cursor_field="write_date", description=self.description)


PARTNERS = Model(
    "partners",
    "res.partner",
    (
        "id", "name", "email", "phone", "street", "street2", "zip", "city", "country_code", "lang", "is_company",
        "parent_id", "commercial_company_name", "company_name", "ref", "vat", "type", "customer_rank", "active",
        "create_date", "write_date",
    ),
    frozenset({"is_company", "active"}),
    "res.partner: people and companies; a person with a parent company (parent_id) is B2B; archived = tombstone",
)  # fmt: skip
ORDERS = Model(
    "orders",
    "sale.order",
    (
        "id", "name", "partner_id", "date_order", "state", "amount_total", "amount_untaxed", "currency_id",
        "client_order_ref", "origin", "order_line", "company_id", "create_date", "write_date",
    ),
    frozenset(),
    "sale.order with its sale.order.line rows (lines, each with the product's SKU); quotations and cancelled "
    "orders are tombstones",
)  # fmt: skip
LINES = Model(
    "lines",
    "sale.order.line",
    (
        "id", "order_id", "sequence", "product_id", "name", "product_uom_qty", "price_unit", "discount",
        "price_subtotal", "price_total", "display_type", "write_date",
    ),
    frozenset(),
    "",
)  # fmt: skip
PRODUCTS = Model(
    "products",
    "product.product",
    (
        "id", "default_code", "name", "barcode", "list_price", "lst_price", "standard_price", "categ_id", "type",
        "sale_ok", "active", "product_tmpl_id", "write_date",
    ),
    frozenset({"active", "sale_ok"}),
    "product.product: default_code is the SKU, categ_id the category; archived = tombstone",
)  # fmt: skip
MODELS: dict[str, Model] = {m.stream: m for m in (PARTNERS, ORDERS, PRODUCTS)}


def clean(row: dict[str, Any], booleans: frozenset[str]) -> dict[str, Any]:
    """The row with Odoo's ``false`` for an empty non-boolean field as ``None``."""
    return {k: (None if v is False and k not in booleans else v) for k, v in row.items()}


def problem(model: Model, row: Any) -> str | None:
    """Why a row cannot be read (plain words), or None."""
    if not isinstance(row, dict):
        return f"a {model.model} entry is not a JSON object"
    key = row.get("id")
    if not isinstance(key, int) or isinstance(key, bool):
        return f"a {model.model} row has no id"
    stamp = row.get("write_date")
    if not isinstance(stamp, str) or parse_time(stamp) is None:
        return f"{model.model} {key} has no write_date, so it cannot be placed in an incremental read"
    if model is ORDERS and not isinstance(row.get("order_line"), list):
        return f"sale.order {key} came without its order_line"
    return None


def error_record(reason: str, row: Any) -> dict[str, Any]:
    return {"_error": reason, "_raw": json.dumps(row, ensure_ascii=False, default=str)}


def tombstone(row: dict[str, Any], why: str) -> dict[str, Any]:
    keep = ("id", "name", "default_code", "state", "active", "write_date")
    return {"_deleted": True, **{k: row[k] for k in keep if k in row}, "_why": why}


def parse_time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, ODOO_TIME)
    except ValueError:
        return None


def shift(stamp: str, delta: timedelta) -> str:
    moment = datetime.strptime(stamp, ODOO_TIME)
    return (moment + delta).strftime(ODOO_TIME) if moment + delta > datetime(1, 1, 2) else "0001-01-01 00:00:00"


@dataclass(slots=True)
class Position:
    """The last ``write_date`` second read and the ids read at it; ``broken``: rows of this read that were errors.

    Odoo keeps ``write_date`` to the microsecond but sends it to the second, so "after the last row" is: a later
    second, or the same second and not one of the ids already read.
    """

    second: str | None = None
    ids: set[int] = field(default_factory=set)
    broken: set[int] = field(default_factory=set)

    @classmethod
    def from_cursor(cls, cursor: Any) -> Position:
        if not isinstance(cursor, dict) or not cursor.get("write_date"):
            return cls()
        return cls(str(cursor["write_date"]), {int(i) for i in cursor.get("ids", ())})

    def cursor(self) -> dict[str, Any] | None:
        return None if self.second is None else {"write_date": self.second, "ids": sorted(self.ids)}

    def observe(self, stamp: str, key: int) -> None:
        if self.second is None or stamp > self.second:
            self.second, self.ids = stamp, {key}
        elif stamp == self.second:
            self.ids.add(key)

    def seen(self, stamp: str, key: int) -> bool:
        return stamp == self.second and key in self.ids

    def domain(self, lag: timedelta = timedelta(0)) -> list[Any]:
        """The terms that select what follows: ``write_date >= S`` and not an id read at ``S``; with ``lag``, from
        ``S - lag`` (rows in the window are read again)."""
        terms: list[Any] = []
        if self.second is not None:
            after = shift(self.second, _SECOND)
            if lag:
                terms += [["write_date", ">=", shift(self.second, -lag)], "|", "|"]
                terms += [
                    ["write_date", "<", self.second],
                    ["write_date", ">=", after],
                    ["id", "not in", sorted(self.ids)],
                ]
            else:
                terms += [["write_date", ">=", self.second], "|"]
                terms += [["write_date", ">=", after], ["id", "not in", sorted(self.ids)]]
        if self.broken:
            terms.append(["id", "not in", sorted(self.broken)])
        return terms


def ids_of(rows: Iterable[dict[str, Any]], name: str) -> list[int]:
    """Every id a relational field of ``rows`` names (a many2one's ``[id, "name"]`` or a one2many's id list)."""
    found: set[int] = set()
    for row in rows:
        value = row.get(name)
        if isinstance(value, list) and value and isinstance(value[0], int) and name.endswith("_id"):
            found.add(value[0])
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, int) and not isinstance(v, bool))
    return sorted(found)
