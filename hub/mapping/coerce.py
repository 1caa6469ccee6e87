"""Type coercion of mapped values: one converter per field, chosen and configured at compile time.

A converter takes a non-missing value and returns it as the field's Python type, or raises ValueError with a
short reason that names the value. Values that already have the right type pass through (JSONL gives ints,
bools and nested objects; CSV gives strings).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

FieldType = Literal["str", "int", "decimal", "bool", "date", "datetime", "json"]
FIELD_TYPES: tuple[str, ...] = ("str", "int", "decimal", "bool", "date", "datetime", "json")
DATE_FORMATS: tuple[str, ...] = ("iso", "epoch", "epoch_ms")
TRUE_VALUES: tuple[str, ...] = ("true", "1", "yes", "y", "j", "ja", "t")
FALSE_VALUES: tuple[str, ...] = ("false", "0", "no", "n", "nei", "f")

Converter = Callable[[Any], Any]

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
#: Parsed timestamps kept per datetime field. The repeats worth catching are near each other (a receipt's time on
#: each of its lines); a larger cache only holds distinct timestamps (an order's own time), about 300 bytes each.
_PARSE_CACHE = 4096
_SPACES = str.maketrans("", "", " \u00a0\u202f\u2009\t")


def short(value: Any) -> str:
    """``repr`` of a value, cut so one bad value cannot flood a reject."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def zone(name: str) -> tzinfo:
    """The zone called ``name``; raises ValueError naming it when it is unknown."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as 'Europe/Oslo')") from None


def make_converter(
    type_: str,
    *,
    fmt: str | None = None,
    tz: tzinfo = UTC,
    true_values: Iterable[str] | None = None,
    false_values: Iterable[str] | None = None,
) -> Converter:
    """The converter for ``type_``; raises ValueError for options that make no sense for it."""
    if fmt is not None and type_ not in ("date", "datetime"):
        raise ValueError("`format` applies to date and datetime fields only")
    if (true_values is not None or false_values is not None) and type_ != "bool":
        raise ValueError("`true_values` and `false_values` apply to bool fields only")
    if type_ == "str":
        return to_str
    if type_ == "int":
        return to_int
    if type_ == "decimal":
        return to_decimal
    if type_ == "bool":
        return _bool_converter(true_values, false_values)
    if type_ == "date":
        return _date_converter(fmt or "iso", tz)
    if type_ == "datetime":
        return _datetime_converter(fmt or "iso", tz)
    if type_ == "json":
        return to_json
    raise ValueError(f"unknown type {type_!r}; known: {', '.join(FIELD_TYPES)}")


def to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    raise ValueError(f"expected text, got {type(value).__name__}")


def parse_decimal(text: str) -> Decimal:
    try:  # the common case: plain machine-written text
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return _parse_human_decimal(text)
    if not number.is_finite():
        raise ValueError(f"{short(text)} is not a finite number")
    return number


def _parse_human_decimal(text: str) -> Decimal:
    """Parse a number written by a person or a spreadsheet: spaces as thousands separators, and a decimal
    comma when there is no dot (with both, the last one is the decimal separator: "1.234,50", "1,234.50")."""
    cleaned = text.translate(_SPACES)
    if "," in cleaned:
        if "." not in cleaned:
            cleaned = cleaned.replace(",", ".")
        elif cleaned.rfind(",") > cleaned.rfind("."):
            cleaned = cleaned.replace(".", "").replace(",", ".")
        else:
            cleaned = cleaned.replace(",", "")
    try:
        number = Decimal(cleaned)
    except (InvalidOperation, ValueError):
        raise ValueError(f"{short(text)} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{short(text)} is not a finite number")
    return number


def to_decimal(value: Any) -> Decimal:
    cls = value.__class__
    if cls is str:
        try:  # inlined fast path of parse_decimal: this runs for every decimal cell of a CSV
            number = Decimal(value)
        except (InvalidOperation, ValueError):
            return _parse_human_decimal(value)
        if number.is_finite():
            return number
        raise ValueError(f"{short(value)} is not a finite number")
    if cls is int:
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{short(value)} is not a finite number")
        return value
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got bool {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not a finite number")
        return Decimal(repr(value))  # the shortest text of the float, not its binary expansion
    if isinstance(value, str):
        return parse_decimal(value)
    raise ValueError(f"expected a number, got {type(value).__name__}")


def to_int(value: Any) -> int:
    if value.__class__ is str:
        try:
            number = int(value)
        except ValueError:
            number = _integral(parse_decimal(value), value)
    elif isinstance(value, bool):
        raise ValueError(f"expected an integer, got bool {value!r}")
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float | Decimal):
        number = _integral(to_decimal(value), value)
    else:
        raise ValueError(f"expected an integer, got {type(value).__name__}")
    if not _INT_MIN <= number <= _INT_MAX:
        raise ValueError(f"{short(value)} is out of range for a 64-bit integer")
    return number


def _integral(number: Decimal, original: Any) -> int:
    if number.adjusted() > 18:  # beyond 64 bits; checked before int() so 1E+999999 cannot eat memory
        raise ValueError(f"{short(original)} is out of range for a 64-bit integer")
    if number != number.to_integral_value():
        raise ValueError(f"{short(original)} is not a whole number")
    return int(number)


def _bool_converter(true_values: Iterable[str] | None, false_values: Iterable[str] | None) -> Converter:
    truthy = frozenset(str(v).strip().lower() for v in (TRUE_VALUES if true_values is None else true_values))
    falsy = frozenset(str(v).strip().lower() for v in (FALSE_VALUES if false_values is None else false_values))
    if truthy & falsy:
        raise ValueError(f"{', '.join(sorted(truthy & falsy))} cannot be both true and false")
    accepted = ", ".join(sorted(truthy | falsy))

    def to_bool(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return value == 1
        if isinstance(value, str):
            text = value.strip().lower()
            if text in truthy:
                return True
            if text in falsy:
                return False
        raise ValueError(f"{short(value)} is not a boolean (accepted: {accepted})")

    return to_bool


def to_json(value: Any) -> Any:
    if isinstance(value, dict | list):
        return value
    if isinstance(value, str):
        try:
            parsed = orjson.loads(value)
        except ValueError:  # orjson.JSONDecodeError, and text that is not valid UTF-8
            raise ValueError(f"{short(value)} is not valid JSON") from None
        if not isinstance(parsed, dict | list):
            raise ValueError(f"{short(value)} is not a JSON object or array")
        return parsed
    raise ValueError(f"expected a JSON object, array or text, got {type(value).__name__}")


def _epoch_seconds(value: Any, divisor: int) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValueError(f"expected an epoch timestamp, got {type(value).__name__}")
    number = to_decimal(value)
    try:
        return datetime.fromtimestamp(float(number / divisor), UTC)
    except (ArithmeticError, OSError, ValueError):
        raise ValueError(f"{short(value)} is out of range for an epoch timestamp") from None


def _parse_datetime(fmt: str) -> Callable[[Any], datetime]:
    """Text (or an epoch number) -> datetime, naive or aware as the text says."""
    if fmt in ("epoch", "epoch_ms"):
        divisor = 1000 if fmt == "epoch_ms" else 1
        return lambda value: _epoch_seconds(value, divisor)
    if fmt == "iso":

        def parse_iso(value: Any) -> datetime:
            text = _text(value, "a date-time")
            try:
                return datetime.fromisoformat(text.strip())
            except ValueError:
                raise ValueError(f"{short(value)} is not an ISO 8601 date-time") from None

        return parse_iso
    _check_strptime_format(fmt)
    fixed = _fixed_width(fmt)

    def parse_format(value: Any) -> datetime:
        text = _text(value, "a date-time").strip()
        if fixed is not None and (parsed := fixed(text)) is not None:
            return parsed
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            raise ValueError(f"{short(value)} does not match format {fmt!r}") from None

    return parse_format


#: strptime directives with a fixed width when zero-padded, and their place in datetime()'s arguments.
_FIXED_DIRECTIVES = {"Y": (4, 0), "m": (2, 1), "d": (2, 2), "H": (2, 3), "M": (2, 4), "S": (2, 5)}


def _fixed_width(fmt: str) -> Callable[[str], datetime | None] | None:
    """A fast parser for a format of zero-padded ``%Y %m %d %H %M %S`` and literal text, or None.

    It reads digits at fixed positions (strptime compiles a regex and consults the locale per call, ~10x
    slower) and returns None for any text it is not sure of: another width, a non-ASCII digit, a literal that
    differs (strptime would also take other case, or more whitespace), a value out of range. The caller then
    asks strptime, so results and errors stay strptime's: where this parser accepts a text, strptime's regex
    takes the same digits, since the first alternative of each directive's pattern is its zero-padded form.
    """
    spans: list[tuple[int, int, int]] = []  # (start, end, argument position)
    literals: list[tuple[int, str]] = []
    seen: set[str] = set()
    pos = i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            directive = fmt[i + 1 : i + 2]
            if directive not in _FIXED_DIRECTIVES or directive in seen:
                return None
            seen.add(directive)
            width, argument = _FIXED_DIRECTIVES[directive]
            spans.append((pos, pos + width, argument))
            pos, i = pos + width, i + 2
        else:
            if fmt[i].isdigit():  # a digit next to a field could be split otherwise: leave it to strptime
                return None
            literals.append((pos, fmt[i]))
            pos, i = pos + 1, i + 1
    size = pos
    defaults = [1900, 1, 1, 0, 0, 0]  # strptime's values for the parts a format leaves out

    def parse_fixed(text: str) -> datetime | None:
        if len(text) != size or not text.isascii():
            return None
        for at, char in literals:
            if text[at] != char:
                return None
        parts = list(defaults)
        for start, end, argument in spans:
            digits = text[start:end]
            if not digits.isdigit():
                return None
            parts[argument] = int(digits)
        try:
            return datetime(*parts)
        except ValueError:
            return None

    return parse_fixed


def _check_strptime_format(fmt: str) -> None:
    """Catch a format that can never match at compile time, rather than rejecting every record."""
    if "%" not in fmt:
        raise ValueError(f"format {fmt!r} is neither iso, epoch, epoch_ms nor a strptime format such as '%d.%m.%Y'")
    try:
        datetime.strptime(datetime(2001, 2, 3, 4, 5, 6).strftime(fmt), fmt)
    except ValueError as exc:
        if "directive" in str(exc) or "stray %" in str(exc):
            raise ValueError(f"format {fmt!r}: {exc}") from None


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected {what} as text, got {type(value).__name__}")
    return value


def _datetime_converter(fmt: str, tz: tzinfo) -> Converter:
    parse = _parse_datetime(fmt)

    @lru_cache(maxsize=_PARSE_CACHE)
    def parse_text(value: str) -> datetime:
        # Cached: a receipt's timestamp repeats on each of its lines, an export's on each row of a bulk edit.
        parsed = parse(value)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)

    def to_datetime(value: Any) -> datetime:
        if isinstance(value, str):
            return parse_text(value)
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, date):
            parsed = datetime(value.year, value.month, value.day)
        else:
            parsed = parse(value)
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)

    return to_datetime


def _date_converter(fmt: str, tz: tzinfo) -> Converter:
    parse = _parse_datetime(fmt)

    def to_date(value: Any) -> date:
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, date):
            return value
        elif fmt == "iso" and isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                parsed = parse(value)
        else:
            parsed = parse(value)
        if parsed.tzinfo is None:
            return parsed.date()
        # An instant (epoch, or text with an offset) falls on the date it has in the field's zone.
        try:
            return parsed.astimezone(tz).date()
        except OverflowError:
            raise ValueError(f"{short(value)} is out of range for a date") from None

    return to_date
