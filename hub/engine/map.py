"""Map: raw records of a batch to unified rows through the stream's compiled mapping; failures become rejects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hub.engine.rejects import RejectRow
from hub.mapping import CompiledMapping
from hub.records import Mapped


@dataclass(slots=True)
class MapResult:
    mapped: list[Mapped]
    raws: list[dict[str, Any]]  # aligned with ``mapped``: the payload to keep if a later step rejects the record
    rejects: list[RejectRow] = field(default_factory=list)
    unknown_fields: set[str] = field(default_factory=set)


def map_batch(mapping: CompiledMapping, records: Sequence[dict[str, Any]]) -> MapResult:
    """Map a batch. A source marks a record it could not parse with ``_error`` (e.g. a broken JSONL line)."""
    good: list[dict[str, Any]] = []
    rejects: list[RejectRow] = []
    seen_fields: set[str] = set()
    for raw in records:
        if "_error" in raw:
            rejects.append(RejectRow(stage="read", errors=[str(raw["_error"])], payload=raw))
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
    return MapResult(mapped=mapped, raws=raws, rejects=rejects, unknown_fields=unknown)
