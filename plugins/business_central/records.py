"""What each Business Central stream reads, and how a record read from it is judged before it is yielded."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hub.connectors import Stream

#: ``lastModifiedDateTime`` as BC sends it for a record never stamped (migrated data): a valid time, but no change
#: time; such a record is read on a full read and cannot move the cursor.
BLANK_TIME = "0001-01-01T00:00:00Z"
#: Document statuses that are not (yet) a sale: read as tombstones unless ``include_drafts``.
DRAFT_STATUSES = frozenset({"Draft", "In Review"})
EMPTY_GUID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True, slots=True)
class Entity:
    """An API v2.0 entity set read as one stream: its lines' navigation property, if a document."""

    name: str
    description: str
    lines: str | None = None

    def stream(self) -> Stream:
        return Stream(self.name, key="id", cursor_field="lastModifiedDateTime", description=self.description)


ENTITIES: dict[str, Entity] = {
    entity.name: entity
    for entity in (
        Entity("customers", "customers, Person or Company (type); Company customers are B2B"),
        Entity("contacts", "contacts: people with the company (companyNumber, companyName) they work for"),
        Entity("items", "items: number (the SKU), displayName, itemCategoryCode, unitPrice, gtin, inventory"),
        Entity("salesInvoices", "sales invoices with their salesInvoiceLines ($expand)", lines="salesInvoiceLines"),
        Entity(
            "salesCreditMemos",
            "sales credit memos (returns) with their salesCreditMemoLines",
            lines="salesCreditMemoLines",
        ),
    )
}


def problem(entity: Entity, record: Any) -> str | None:
    """Why a record cannot be read (plain words), or None when it can."""
    if not isinstance(record, dict):
        return f"a {entity.name} entry is not a JSON object"
    key = record.get("id")
    if not isinstance(key, str) or not key:
        return f"a {entity.name} record has no id"
    stamp = record.get("lastModifiedDateTime")
    if not isinstance(stamp, str) or not stamp:
        return f"{entity.name} {key} has no lastModifiedDateTime, so it cannot be placed in an incremental read"
    if entity.lines is not None:
        lines = record.get(entity.lines)
        if not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines):
            return f"{entity.name} {key} came without its {entity.lines}"
    return None


def error_record(reason: str, record: Any) -> dict[str, Any]:
    return {"_error": reason, "_raw": json.dumps(record, ensure_ascii=False, default=str)}


def is_draft(entity: Entity, record: dict[str, Any]) -> bool:
    return entity.lines is not None and record.get("status") in DRAFT_STATUSES


def tombstone(record: dict[str, Any], why: str) -> dict[str, Any]:
    """A record that must not (or no longer) count, e.g. a draft invoice; hub deletes what it loaded for it."""
    keep = ("id", "number", "status", "lastModifiedDateTime")
    return {"_deleted": True, **{k: record[k] for k in keep if k in record}, "_why": why}
