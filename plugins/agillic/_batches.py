"""Split a batch call's entries so that no call exceeds Agillic's entry limit or its payload limit."""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any


def encode(value: Any) -> bytes:
    """Compact UTF-8 JSON, as sent: the size a call is measured in."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


@dataclass(frozen=True, slots=True)
class Chunk:
    """Positions (into the entries) that one call carries; ``oversize`` when one entry alone is too large."""

    positions: list[int]
    oversize: bool = False


def chunks(
    entries: Sequence[bytes],
    *,
    max_entries: int,
    max_bytes: int,
    keys: Sequence[Hashable] | None = None,
) -> list[Chunk]:
    """Consecutive runs of ``entries`` whose JSON array (``[a,b,...]``) fits ``max_bytes`` with at most
    ``max_entries`` each; a run also ends before a repeated key (so two writes of one recipient never share a call,
    whose order within it the API does not promise). An entry larger than ``max_bytes`` alone is its own
    oversize chunk, never sent."""
    found: list[Chunk] = []
    current: list[int] = []
    size = 2
    seen: set[Hashable] = set()
    for position, entry in enumerate(entries):
        key = keys[position] if keys is not None else None
        if len(entry) + 2 > max_bytes:
            if current:
                found.append(Chunk(current))
            found.append(Chunk([position], oversize=True))
            current, size, seen = [], 2, set()
            continue
        extra = len(entry) + (1 if current else 0)
        if current and (len(current) >= max_entries or size + extra > max_bytes or (key is not None and key in seen)):
            found.append(Chunk(current))
            current, size, seen = [], 2, set()
            extra = len(entry)
        current.append(position)
        size += extra
        if key is not None:
            seen.add(key)
    if current:
        found.append(Chunk(current))
    return found


def array(entries: Sequence[bytes], positions: Sequence[int]) -> bytes:
    """The JSON array of the entries at ``positions``."""
    return b"[" + b",".join(entries[p] for p in positions) + b"]"
