"""Agillic's date formats: an instance stores DATE and TIMESTAMP Person Data in formats its admin configures
(Java patterns such as ``dd.MM.yyyy``), so hub's ISO values are rewritten before they leave, and the emulator
checks them the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

#: The Java pattern letters a format may use, longest first; anything else is a literal ('quoted' text too).
_TOKENS = re.compile(r"yyyy|yy|MM|dd|HH|mm|ss|'[^']*'")
_STRFTIME = {"yyyy": "%Y", "yy": "%y", "MM": "%m", "dd": "%d", "HH": "%H", "mm": "%M", "ss": "%S"}
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$")


def strftime_pattern(java: str) -> str:
    """``dd.MM.yyyy HH:mm`` -> ``%d.%m.%Y %H:%M``; ValueError when it has no year, month and day."""
    parts: list[str] = []
    seen: set[str] = set()
    position = 0
    for match in _TOKENS.finditer(java):
        parts.append(java[position : match.start()].replace("%", "%%"))
        token = match.group()
        if token.startswith("'"):
            parts.append(token[1:-1].replace("%", "%%"))
        else:
            parts.append(_STRFTIME[token])
            seen.add(token[0])
        position = match.end()
    parts.append(java[position:].replace("%", "%%"))
    if not {"y", "M", "d"} <= seen:
        raise ValueError(f"{java!r} needs a year (yyyy), a month (MM) and a day (dd)")
    return "".join(parts)


def matches(value: str, java: str) -> bool:
    """Whether ``value`` is written exactly in the Java pattern (zero-padded, nothing left over)."""
    pattern = strftime_pattern(java)
    try:
        return datetime.strptime(value, pattern).strftime(pattern) == value
    except ValueError:
        return False


def to_agillic(value: Any, *, date_format: str, timestamp_format: str, zone: ZoneInfo) -> Any:
    """An ISO date (``YYYY-MM-DD``) in ``date_format``, an ISO date-time in ``timestamp_format`` in local time
    (``zone``; naive values are taken as local already); any other value unchanged."""
    if isinstance(value, datetime):
        moment = value.astimezone(zone) if value.tzinfo is not None else value
        return moment.strftime(strftime_pattern(timestamp_format))
    if isinstance(value, date):
        return value.strftime(strftime_pattern(date_format))
    if not isinstance(value, str):
        return value
    if _ISO_DATE.match(value):
        return date.fromisoformat(value).strftime(strftime_pattern(date_format))
    if _ISO_DATETIME.match(value):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return to_agillic(moment, date_format=date_format, timestamp_format=timestamp_format, zone=zone)
    return value


def format_dates(
    fields: Mapping[str, Any], *, date_format: str, timestamp_format: str, zone: ZoneInfo
) -> dict[str, Any]:
    """Every value of ``fields`` through :func:`to_agillic`."""
    return {
        name: to_agillic(value, date_format=date_format, timestamp_format=timestamp_format, zone=zone)
        for name, value in fields.items()
    }
