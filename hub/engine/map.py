"""Map: raw records of a batch to unified rows through the stream's compiled mapping; failures become rejects.

Tombstones (``{"_deleted": true, <key>: ...}``, a deletion the source reports) are set aside, never mapped: they
lack the fields a mapping requires. With the stream's :class:`~hub.engine.deletions.DeletionKeys` each gets the
keys of what it deletes, which :func:`hub.engine.run.load_mapped` applies after the batch's records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.engine.deletions import DeletionKeys, Tombstone
from hub.engine.rejects import RejectRow
from hub.mapping import CompiledMapping
from hub.records import Mapped


@dataclass(slots=True)
class MapResult:
    mapped: list[Mapped]
    raws: list[dict[str, Any]]  # aligned with ``mapped``: the payload to keep if a later step rejects the record
    rejects: list[RejectRow] = field(default_factory=list)
    unknown_fields: set[str] = field(default_factory=set)
    tombstones: list[Tombstone] = field(default_factory=list)
    deletions: DeletionKeys | None = None  # how the tombstones' keys were read; None: they cannot be applied


def map_batch(
    mapping: CompiledMapping, records: Sequence[dict[str, Any]], deletions: DeletionKeys | None = None
) -> MapResult:
    """Map a batch. A source marks a record it could not parse with ``_error`` (e.g. a broken JSONL line) and a
    deletion with ``_deleted``; ``deletions`` reads the tombstones' keys (without it they are kept, keyless)."""
    good: list[dict[str, Any]] = []
    rejects: list[RejectRow] = []
    seen_fields: set[str] = set()
    set_aside: list[tuple[int, dict[str, Any]]] = []
    for position, raw in enumerate(records):
        if "_error" in raw:
            rejects.append(RejectRow(stage="read", errors=[str(raw["_error"])], payload=raw))
            continue
        if isinstance(raw, dict) and raw.get("_deleted"):
            set_aside.append((position, raw))
            continue
        seen_fields.update(raw)
        good.append(raw)
    mapped, failed = mapping.map_batch(good)
    if failed:
        failed_ids = {id(f.raw) for f in failed}
        raws = [raw for raw in good if id(raw) not in failed_ids]
        rejects.extend(RejectRow(stage="map", errors=f.errors, payload=f.raw, record_key=f.key) for f in failed)
    else:
        raws = good
    unknown = {f for f in seen_fields - mapping.source_fields if not f.startswith("_")}
    result = MapResult(mapped=mapped, raws=raws, rejects=rejects, unknown_fields=unknown, deletions=deletions)
    if set_aside:
        if deletions is None:
            result.tombstones = [Tombstone(raw, []) for _, raw in set_aside]
        else:
            where = {id(raw): position for position, raw in enumerate(records)}
            loaded = [(where[id(raw)], m) for raw, m in zip(raws, mapped, strict=True)]
            result.tombstones = deletions.tombstones(set_aside, loaded)
    return result
