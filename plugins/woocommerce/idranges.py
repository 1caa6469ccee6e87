"""Sets of integer ids as sorted ranges, ``[[first, last], ...]``: the customer ids one full read saw, kept in the
cursor so the next full read can tell which customers are gone. Customer ids are mostly consecutive (WordPress
user ids, with gaps where staff accounts are), so 100,000 customers are typically a few hundred ranges."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

Ranges = list[list[int]]

#: Past this many ranges a set is not kept (the cursor would grow too large); deletions are then not detected.
MAX_RANGES = 5_000


def add(ranges: Ranges, ident: int) -> None:
    """Add an id no smaller than every id in ``ranges`` (a list read in id order); a repeat changes nothing."""
    if ranges and ident <= ranges[-1][1]:
        if ident >= ranges[-1][0]:
            return
        raise ValueError(f"id {ident} arrived out of order (after {ranges[-1][1]})")
    if ranges and ident == ranges[-1][1] + 1:
        ranges[-1][1] = ident
    else:
        ranges.append([ident, ident])


def ids(ranges: Sequence[Sequence[int]]) -> Iterator[int]:
    for first, last in ranges:
        yield from range(first, last + 1)


def missing(before: Sequence[Sequence[int]], now: Sequence[Sequence[int]]) -> list[int]:
    """The ids in ``before`` that are not in ``now``, ascending."""
    present = set(ids(now))
    return [ident for ident in ids(before) if ident not in present]
