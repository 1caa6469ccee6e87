"""Where a stream's next read starts: an update time and the ids already read at exactly that time.

Every cursor the Shopify source saves has the shape ``{"updated_at": "<ISO>", "ids": ["<id>", ...]}`` (plus
``"run"`` or ``"bulk"`` while a read is under way, and ``"deleted"`` for products). The next read asks Shopify
for ``updated_at:>='<updated_at - lag>'`` and skips the records in ``ids`` that still have that very time, so
records sharing the boundary second are neither lost nor read twice.

Two ways to move it:

- :class:`Ordered`, for reads sorted by ``UPDATED_AT`` (customers, orders, products): every record read moves the
  cursor to itself, so each batch's cursor is exact and a killed read resumes right after its last batch. A
  record changed during the read moves behind the read's position and is read again, later in the same read.
- :class:`Unordered`, for reads Shopify cannot sort by update time (abandoned checkouts, inventory items, a bulk
  result): the cursor moves only when the read ends, to the newest time read, but never past the time the read
  *started* (the server's clock): a record changed while the read ran has a later time, so the next read gets it
  even if the read had already passed its place.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def parse_time(value: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime (a naive one is taken as UTC, as Shopify writes UTC)."""
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """Shopify's own format: UTC, whole seconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Boundary:
    """A saved start: the time and the ids read at it. ``accepts`` says whether a record is new to it."""

    def __init__(self, state: dict[str, Any] | None, lag: timedelta = timedelta(0)) -> None:
        state = state or {}
        raw = state.get("updated_at")
        self.value: datetime | None = parse_time(raw) if raw else None
        self.ids: frozenset[str] = frozenset(str(i) for i in state.get("ids", ()))
        self.lag = lag

    def search(self) -> str | None:
        """The ``query:`` filter of the read, or None to read everything."""
        if self.value is None:
            return None
        return f"updated_at:>='{format_time(self.value - self.lag)}'"

    def accepts(self, value: datetime, key: str) -> bool:
        if self.value is None:
            return True
        if value < self.value - self.lag:
            return False
        return not (value == self.value and key in self.ids)

    def state(self) -> dict[str, Any]:
        if self.value is None:
            return {}
        return {"updated_at": format_time(self.value), "ids": sorted(self.ids)}


class Ordered:
    """The cursor of a read sorted by update time: after each record, the newest time and the ids at it."""

    def __init__(self, start: Boundary) -> None:
        self.value = start.value
        self.ids = set(start.ids)

    def observe(self, value: datetime, key: str) -> None:
        if self.value is None or value > self.value:
            self.value, self.ids = value, {key}
        elif value == self.value:
            self.ids.add(key)

    def state(self) -> dict[str, Any]:
        if self.value is None:
            return {}
        return {"updated_at": format_time(self.value), "ids": sorted(self.ids)}


class Unordered:
    """The cursor of a read in no time order: the newest time read, capped by the time the read started.

    ``run`` is the part saved with each batch so a killed read can resume (the page cursor is the caller's).
    """

    def __init__(self, start: Boundary, run: dict[str, Any] | None = None) -> None:
        run = run or {}
        self.start = start
        self.started: datetime | None = parse_time(run["started"]) if run.get("started") else None
        # The saved start counts as read: its ids stay skipped when nothing newer comes.
        self.newest: datetime | None = parse_time(run["newest"]) if run.get("newest") else start.value
        self.newest_ids: set[str] = set(run["newest_ids"]) if run.get("newest") else set(start.ids)
        self.started_ids: set[str] = set(run.get("started_ids", ()))

    def begin(self, server_time: datetime) -> None:
        """Set the read's start (once): the server's clock at its first answer, less the lag."""
        if self.started is None:
            self.started = server_time.replace(microsecond=0) - self.start.lag
            if self.started == self.start.value:
                self.started_ids |= self.start.ids

    def observe(self, value: datetime, key: str) -> None:
        if self.newest is None or value > self.newest:
            self.newest, self.newest_ids = value, {key}
        elif value == self.newest:
            self.newest_ids.add(key)
        if value == self.started:
            self.started_ids.add(key)

    def run(self) -> dict[str, Any]:
        return {
            "started": format_time(self.started) if self.started else None,
            "newest": format_time(self.newest) if self.newest else None,
            "newest_ids": sorted(self.newest_ids),
            "started_ids": sorted(self.started_ids),
        }

    def final(self) -> dict[str, Any]:
        """Where the next read starts once this one has read everything."""
        if self.newest is None:
            return {}
        if self.started is None or self.newest <= self.started:
            return {"updated_at": format_time(self.newest), "ids": sorted(self.newest_ids)}
        return {"updated_at": format_time(self.started), "ids": sorted(self.started_ids)}
