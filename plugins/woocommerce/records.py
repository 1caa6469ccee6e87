"""Raw records as the mappings get them, from a read and from a webhook alike: WooCommerce's REST shape, plus:

- ``meta``: the record's ``meta_data`` list (``[{"id", "key", "value"}]``) as one object, ``{key: value}``, so a
  mapping can read a plugin's field (a newsletter opt-in) by its key: ``meta.mailchimp_woocommerce_is_subscribed``;
- orders: each entry of ``refunds`` (``{id, reason, total}``, total negative) completed with the refund itself
  from ``orders/<id>/refunds`` when the source read it (``date_created_gmt``, ``amount``, ``line_items`` with
  negative quantities, each given its ``refund_id``), so a refund loads as a return with its lines.

A record hub cannot place (a change time that is no timestamp, an object that is not one) becomes an error
record, ``{"_error", "_raw", "id"}``, which the engine files as a reject with its payload; the rest of its page
loads. A deletion is a tombstone, the record (or ``{"id": N}`` from a ``*.deleted`` webhook) with ``"_deleted":
true``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

Raw = dict[str, Any]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def parse_gmt(value: Any) -> datetime | None:
    """A ``*_gmt`` value (``2025-01-06T09:00:00``, no offset: UTC) as an aware datetime; None when missing.

    Raises ``ValueError`` for anything else, such as MySQL's zero date.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a timestamp")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a timestamp") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_gmt(moment: datetime) -> str:
    """The form WooCommerce takes for ``modified_after`` with ``dates_are_gmt=true``: UTC, whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def modified_key(row: Raw) -> list[int] | None:
    """The sort key of a list sorted by ``modified`` (ties by id): ``[microseconds since 1970, id]``."""
    try:
        moment = parse_gmt(row.get("date_modified_gmt"))
    except ValueError:
        return None
    ident = row.get("id")
    if moment is None or not isinstance(ident, int):
        return None
    return [(moment - _EPOCH) // _MICROSECOND, ident]


def id_key(row: Raw) -> list[int] | None:
    """The sort key of a list sorted by id."""
    ident = row.get("id")
    return [ident] if isinstance(ident, int) and not isinstance(ident, bool) else None


def error_record(row: Any, why: str) -> Raw:
    """An error record for the engine's rejects: why, the payload as received, and its id where it has one."""
    if isinstance(row, str):  # a body as received
        raw = row
    else:
        raw = orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS, default=str).decode("utf-8")
    record: Raw = {"_error": why, "_raw": raw}
    if isinstance(row, dict) and "id" in row:
        record["id"] = row["id"]
    return record


def check(row: Any) -> str | None:
    """Why a row cannot be loaded, or None: it must be an object with an integer id and a readable change time."""
    if not isinstance(row, dict) or "_not_an_object" in row:
        return "the API returned something that is not a record"
    ident = row.get("id")
    if not isinstance(ident, int) or isinstance(ident, bool):
        return f"id {ident!r} is not a number"
    try:
        parse_gmt(row.get("date_modified_gmt"))
    except ValueError as exc:
        return f"date_modified_gmt: {exc}"
    return None


def normalise(row: Raw, refunds: Mapping[int, Raw] | None = None) -> Raw:
    """The raw record of a REST row (see the module doc); ``refunds``: the order's refunds by id, if read."""
    record = dict(row)
    meta = record.get("meta_data")
    if isinstance(meta, list):
        record["meta"] = {
            m["key"]: m.get("value") for m in meta if isinstance(m, dict) and isinstance(m.get("key"), str)
        }
    if refunds and isinstance(record.get("refunds"), list):
        record["refunds"] = [
            _refund({**refunds.get(summary.get("id"), {}), **summary}) if isinstance(summary, dict) else summary
            for summary in record["refunds"]
        ]
    return record


def _refund(refund: Raw) -> Raw:
    """A refund whose line items name it (``refund_id``), so a mapping can hang them under the refund's return."""
    lines = refund.get("line_items")
    if isinstance(lines, list):
        refund["line_items"] = [
            {**line, "refund_id": refund.get("id")} if isinstance(line, dict) else line for line in lines
        ]
    return refund


def tombstone(row: Raw) -> Raw:
    """A deletion: the record as last served (its keys: id, SKU, refunds), marked ``_deleted``."""
    return {**normalise(row), "_deleted": True}
