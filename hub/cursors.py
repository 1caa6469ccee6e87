"""Reusable incremental cursors for source plugins: "what changed since last time", without loss.

:class:`IncrementalCursor` follows a field that grows as records change (``updated_at``, ``modified``), like
dlt's incremental: ``start_value`` is where this run reads from, ``last_value`` is the highest value seen so
far, ``lag`` re-reads a window below ``start_value`` to catch records written late, and the *boundary keys*
(the keys of the records exactly at the highest value) let the next run skip those records without losing
others that share their timestamp. The rule, per record::

    value <  start_value - lag                       -> skip (seen in an earlier run)
    value == start_value and key in boundary keys    -> skip (seen, exactly at the boundary)
    otherwise                                        -> read it; observe(value, key)

Values compare as timezone-aware datetimes (``kind="datetime"``: ISO 8601 strings or datetimes; a naive value
is in the connector's timezone) or, when a source says so, as plain strings (``kind="string"``, for fields
whose text order is their time order; ``lag`` must then be zero).

A run's state is saved with every batch, so it must resume mid-run: :meth:`IncrementalCursor.state` keeps
the ``start_value`` the run filters with *and* the running ``last_value``. Only
:meth:`IncrementalCursor.completed_state`, saved once a run has read everything, moves ``start_value`` up to
``last_value``. Records are not assumed to arrive in value order (files and APIs rarely promise it), which is
why the filter must not move during a run.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Annotated, Any, Literal

import orjson
from pydantic import AfterValidator, BeforeValidator

ValueKind = Literal["datetime", "string"]
#: The comparable form of a value: microseconds since the Unix epoch (UTC) for datetimes, else the text.
Comparable = int | str

_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_ZERO = timedelta(0)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|w|d|h|m|s)")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds", "ms": "milliseconds"}


def parse_duration(value: Any) -> Any:
    """``"10m"``, ``"1h30m"``, ``"2d"``, ``"45s"``, ``"600"`` (seconds) -> timedelta.

    Used as a pydantic ``BeforeValidator`` (see :data:`Duration`): ISO 8601 text (``PT10M``), numbers and
    timedeltas are left to pydantic's own timedelta parsing.
    """
    if not isinstance(value, str):
        return value
    text = value.strip().lower().replace(" ", "")
    if text and _DURATION.sub("", text) == "":
        parts = (timedelta(**{_UNITS[unit]: float(amount)}) for amount, unit in _DURATION.findall(text))
        return sum(parts, timedelta(0))
    if text.startswith("p"):  # ISO 8601, which pydantic parses
        return value
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        raise ValueError(f"{value!r} is not a duration; write e.g. 10m, 1h30m, 2d or 45s") from None


def _non_negative(value: timedelta) -> timedelta:
    if value < timedelta(0):
        raise ValueError("must not be negative")
    return value


#: A settings field for a duration such as ``lag: 10m``: units w, d, h, m, s, ms; or ISO 8601; or seconds.
Duration = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_non_negative)]


def record_digest(record: Mapping[str, Any]) -> str:
    """A short, stable digest of a record's content: the boundary key of a record without a key of its own."""
    payload = orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    return hashlib.blake2b(payload, digest_size=10).hexdigest()


def _padded_isoformat(raw: str) -> datetime:
    try:
        return datetime.fromisoformat(raw.strip())
    except ValueError:
        raise ValueError(f"{raw!r} is not an ISO 8601 timestamp") from None


class IncrementalCursor:
    """The state of one incremental field across runs. Build it with :meth:`from_state`; see the module doc.

    Per record: ``value = cursor.parse(raw)``; None means the record has no value (read it: it cannot be
    placed); else ``if cursor.accepts(value, key): cursor.observe(value, key)`` and keep the record.
    ``parse`` returns the value's comparable form (microseconds since the epoch for datetimes, which compare
    several times faster than datetimes in the hot loop); ``start_value`` and ``last_value`` give it back as
    a datetime or string.
    """

    __slots__ = ("_floor", "_last", "_last_keys", "_start", "_start_keys", "kind", "lag", "timezone")

    def __init__(
        self,
        *,
        start_value: Any = None,
        start_keys: Iterable[str] = (),
        last_value: Any = None,
        last_keys: Iterable[str] = (),
        lag: timedelta = timedelta(0),
        kind: ValueKind = "datetime",
        timezone: tzinfo = UTC,
    ) -> None:
        if lag < timedelta(0):
            raise ValueError("lag must not be negative")
        if kind == "string" and lag:
            raise ValueError("lag needs datetime values; a string cursor compares text and takes no lag")
        self.kind: ValueKind = kind
        self.lag = lag
        self.timezone = timezone
        self._start = self.parse(start_value)
        self._start_keys = frozenset(start_keys)
        self._last = self.parse(last_value)
        self._last_keys = set(last_keys)
        self._floor = self._start
        if isinstance(self._start, int):
            self._floor = self._start - lag // _MICROSECOND

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any] | None,
        *,
        lag: timedelta = timedelta(0),
        kind: ValueKind = "datetime",
        timezone: tzinfo = UTC,
        initial_value: Any = None,
    ) -> IncrementalCursor:
        """Rebuild a cursor from what :meth:`state` or :meth:`completed_state` returned (None: the first run).

        ``initial_value`` is where a first run starts (records before it are skipped); it is ignored once the
        state holds a value.
        """
        state = state or {}
        last, last_keys = state.get("last_value"), state.get("last_keys", ())
        if "start_value" in state:
            start, start_keys = state["start_value"], state.get("start_keys", ())
        else:
            start, start_keys = last, last_keys
        if start is None and last is None:
            start = initial_value
        return cls(
            start_value=start,
            start_keys=start_keys,
            last_value=last,
            last_keys=last_keys,
            lag=lag,
            kind=kind,
            timezone=timezone,
        )

    @property
    def start_value(self) -> datetime | str | None:
        """The value this run reads from (before ``lag`` is taken off)."""
        return self._public(self._start)

    @property
    def last_value(self) -> datetime | str | None:
        """The highest value observed, including earlier runs."""
        return self._public(self._last)

    @property
    def boundary_keys(self) -> frozenset[str]:
        """Keys of the records observed exactly at ``last_value``."""
        return frozenset(self._last_keys)

    def parse(self, raw: Any) -> Comparable | None:
        """A raw value in comparable form; None when missing or empty. Raises ValueError when invalid."""
        if raw is None or raw == "":
            return None
        if self.kind == "string":
            return raw if isinstance(raw, str) else str(raw)
        if isinstance(raw, str):
            try:
                moment = datetime.fromisoformat(raw)
            except ValueError:
                moment = _padded_isoformat(raw)
        elif isinstance(raw, datetime):
            moment = raw
        elif isinstance(raw, date):
            moment = datetime(raw.year, raw.month, raw.day)
        else:
            raise ValueError(f"{raw!r} is not an ISO 8601 timestamp")
        if moment.tzinfo is None:
            offset = self.timezone.utcoffset(moment)
            return (moment - (offset or _ZERO) - _EPOCH) // _MICROSECOND
        return (moment - _EPOCH_UTC) // _MICROSECOND

    def accepts(self, value: Comparable, key: str) -> bool:
        """Whether a record with this (parsed) value and key is new to this run's starting point."""
        if self._floor is None:
            return True
        if value < self._floor:  # type: ignore[operator]  # one kind per cursor
            return False
        return not (value == self._start and key in self._start_keys)

    def observe(self, value: Comparable, key: str) -> None:
        """Record that a record was read, moving ``last_value`` and the boundary keys."""
        last = self._last
        if last is None or value > last:  # type: ignore[operator]  # one kind per cursor
            self._last = value
            self._last_keys = {key}
        elif value == last:
            self._last_keys.add(key)

    def state(self) -> dict[str, Any]:
        """JSON-ready state that resumes *this* run: the same starting point, the progress so far."""
        out = self._last_state()
        if self._start != self._last or self._start_keys != self._last_keys:
            out["start_value"] = self._dump(self._start)
            out["start_keys"] = sorted(self._start_keys)
        return out

    def completed_state(self) -> dict[str, Any]:
        """JSON-ready state for after a run that read everything: the next run starts at ``last_value``."""
        if self._last is None and self._start is not None:
            return self.state()
        return self._last_state()

    def _last_state(self) -> dict[str, Any]:
        if self._last is None:
            return {}
        return {"last_value": self._dump(self._last), "last_keys": sorted(self._last_keys)}

    @staticmethod
    def _public(value: Comparable | None) -> datetime | str | None:
        return _EPOCH_UTC + value * _MICROSECOND if isinstance(value, int) else value

    def _dump(self, value: Comparable | None) -> str | None:
        public = self._public(value)
        return public.isoformat() if isinstance(public, datetime) else public
