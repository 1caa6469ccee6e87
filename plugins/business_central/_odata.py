"""The OData v4 query options the Business Central emulator understands: ``$filter``, ``$orderby``, ``$select``,
``$expand``, ``$top``, ``$skip`` and its own ``$skiptoken``, each validated as BC validates them.

``$filter`` takes comparisons (``eq ne gt ge lt le``) of a property with a literal, joined by ``and``/``or``, with
``not`` and parentheses. Literals are typed as OData types them: ``2025-01-06T09:00:00Z`` (DateTimeOffset, no
quotes), ``2025-01-06`` (Date), a bare GUID, numbers, ``'text'`` (with ``''`` for a quote), ``true``, ``false``,
``null``. A property the entity lacks, a literal of the wrong type, or bad syntax is a :class:`ODataError` (400,
``BadRequest``) with BC's wording.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

Row = Mapping[str, Any]
Test = Callable[[Row], bool]

#: OData type of each property kind the emulator's entities use.
EDM = {
    "string": "Edm.String",
    "guid": "Edm.Guid",
    "datetime": "Edm.DateTimeOffset",
    "date": "Edm.Date",
    "decimal": "Edm.Decimal",
    "int": "Edm.Int32",
    "bool": "Edm.Boolean",
}
_TOKEN = re.compile(
    r"\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<string>'(?:[^']|'')*')"
    r"|(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))"
    r"|(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"|(?P<date>\d{4}-\d{2}-\d{2})|(?P<number>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
_COMPARE = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and b is not None and a > b,
    "ge": lambda a, b: a is not None and b is not None and a >= b,
    "lt": lambda a, b: a is not None and b is not None and a < b,
    "le": lambda a, b: a is not None and b is not None and a <= b,
}


class ODataError(Exception):
    """An OData error answer: ``{"error": {"code": code, "message": message}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": f"{self.message}  CorrelationId:  {_CORRELATION}."}}


_CORRELATION = "8f3b7c1e-2a4d-4e6f-9b0a-1c2d3e4f5a6b"


def bad_request(message: str) -> ODataError:
    return ODataError(400, "BadRequest", message)


@dataclass(frozen=True, slots=True)
class EntityType:
    """The properties of an entity type (name -> kind), its navigation properties and its OData type name."""

    name: str
    properties: Mapping[str, str]
    navigation: frozenset[str] = frozenset()

    def kind(self, prop: str) -> str:
        if prop not in self.properties:
            raise bad_request(f"Could not find a property named '{prop}' on type 'Microsoft.NAV.{self.name}'.")
        return self.properties[prop]


# -- $filter ----------------------------------------------------------------------------------------------------------


def parse_filter(text: str | None, entity: EntityType) -> Test:
    """A test of rows for ``$filter``; no filter accepts every row."""
    if text is None or not text.strip():
        return lambda row: True
    return _Parser(text, entity).parse()


class _Parser:
    def __init__(self, text: str, entity: EntityType) -> None:
        self.text = text
        self.entity = entity
        self.tokens: list[tuple[str, str, int]] = []
        position = 0
        while position < len(text):
            if text[position:].strip() == "":
                break
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise self._syntax(position)
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            position = match.end()
        self.at = 0

    def parse(self) -> Test:
        test = self._or()
        if self.at < len(self.tokens):
            raise self._syntax(self.tokens[self.at][2])
        return test

    def _or(self) -> Test:
        left = self._and()
        while self._word("or"):
            right = self._and()
            left = (lambda a, b: lambda row: a(row) or b(row))(left, right)
        return left

    def _and(self) -> Test:
        left = self._not()
        while self._word("and"):
            right = self._not()
            left = (lambda a, b: lambda row: a(row) and b(row))(left, right)
        return left

    def _not(self) -> Test:
        if self._word("not"):
            inner = self._not()
            return lambda row: not inner(row)
        return self._primary()

    def _primary(self) -> Test:
        kind, value, where = self._next()
        if kind == "lp":
            inner = self._or()
            if self._next()[0] != "rp":
                raise self._syntax(len(self.text))
            return inner
        if kind != "word":
            raise self._syntax(where)
        prop_kind = self.entity.kind(value)
        op_kind, op, op_at = self._next()
        if op_kind != "word" or op not in _COMPARE:
            raise self._syntax(op_at)
        literal = self._literal(prop_kind)
        compare = _COMPARE[op]
        return lambda row: compare(_typed(row.get(value), prop_kind), literal)

    def _literal(self, prop_kind: str) -> Any:
        kind, value, where = self._next()
        if kind == "word" and value == "null":
            return None
        literal_kind = {"string": "string", "datetime": "datetime", "date": "date", "guid": "guid", "number": "decimal"}
        got = "bool" if kind == "word" and value in ("true", "false") else literal_kind.get(kind)
        if got is None:
            raise self._syntax(where)
        fits = (
            got == prop_kind or (got == "decimal" and prop_kind == "int") or (got == "date" and prop_kind == "datetime")
        )
        if not fits:
            raise bad_request(f"The types '{EDM[prop_kind]}' and '{EDM[got]}' are not compatible.")
        if got == "string":
            return value[1:-1].replace("''", "'")
        if got == "bool":
            return value == "true"
        if got == "guid":
            return value.lower()
        if got == "decimal":
            return Decimal(value)
        if got == "date":
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC) if prop_kind == "datetime" else day
        return _instant(value)

    def _word(self, word: str) -> bool:
        if self.at < len(self.tokens) and self.tokens[self.at][:2] == ("word", word):
            self.at += 1
            return True
        return False

    def _next(self) -> tuple[str, str, int]:
        if self.at >= len(self.tokens):
            raise self._syntax(len(self.text))
        token = self.tokens[self.at]
        self.at += 1
        return token

    def _syntax(self, position: int) -> ODataError:
        return bad_request(f"Syntax error at position {position} in '{self.text}'.")


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(
            f"The DateTimeOffset text '{text}' should be in format 'yyyy-mm-ddThh:mm:ss('.'s+)?(zzzzzz)?'."
        ) from None
    return moment.astimezone(UTC)


def _typed(value: Any, kind: str) -> Any:
    """A stored value in the comparable form of its kind (text times become datetimes)."""
    if value is None:
        return None
    if kind == "datetime" and isinstance(value, str):
        return _instant(value)
    if kind == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    if kind == "guid" and isinstance(value, str):
        return value.lower()
    if kind in ("decimal", "int") and not isinstance(value, bool):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    return value


# -- $orderby, $select, $expand, $top/$skip, $skiptoken ------------------------------------------------------------


def parse_orderby(text: str | None, entity: EntityType, default: str) -> list[tuple[str, bool]]:
    """``[(property, descending), ...]``; the entity's default order when absent. ``id`` always ends the list, so
    the order is total (and a skip token resumes exactly)."""
    order: list[tuple[str, bool]] = []
    for part in (text or default).split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise bad_request(f"Syntax error at position 0 in '{text}'.")
        entity.kind(words[0])
        order.append((words[0], len(words) == 2 and words[1] == "desc"))
    if not any(prop == "id" for prop, _ in order):
        order.append(("id", False))
    return order


def sort_key(row: Row, order: list[tuple[str, bool]], entity: EntityType) -> tuple[Any, ...]:
    """A key that sorts rows by ``order`` (nulls first, as SQL Server sorts them ascending)."""
    key: list[Any] = []
    for prop, descending in order:
        value = _typed(row.get(prop), entity.properties[prop])
        if isinstance(value, datetime | date):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = float(value)
        present = value is not None
        item = (present, value if present else 0)
        key.append(_Reverse(item) if descending else item)
    return tuple(key)


class _Reverse:
    """Inverts comparison, for descending keys."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Reverse) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reverse) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def parse_select(text: str | None, entity: EntityType) -> list[str] | None:
    if text is None or not text.strip():
        return None
    fields = [part.strip() for part in text.split(",")]
    for name in fields:
        entity.kind(name)
    return fields


def parse_expand(text: str | None, entity: EntityType) -> list[str]:
    if text is None or not text.strip():
        return []
    names = [part.strip() for part in text.split(",")]
    for name in names:
        if name not in entity.navigation:
            raise bad_request(f"Could not find a property named '{name}' on type 'Microsoft.NAV.{entity.name}'.")
    return names


def parse_count(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    if not text.isdigit():
        raise bad_request(
            f"Invalid value '{text}' for {name} query option found. "
            f"The {name} query option requires a non-negative integer value."
        )
    return int(text)


def encode_skiptoken(key: tuple[Any, ...]) -> str:
    """The position after a row: its sort key, opaque to the client."""
    plain = [item.value if isinstance(item, _Reverse) else item for item in key]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def decode_skiptoken(token: str) -> list[Any]:
    try:
        plain = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise bad_request("The skip token value is not valid.") from None
    if not isinstance(plain, list):
        raise bad_request("The skip token value is not valid.")
    return plain


def after(key: tuple[Any, ...], token: list[Any]) -> bool:
    """Whether a row's sort key comes after the position a skip token holds."""
    plain = [item.value if isinstance(item, _Reverse) else item for item in key]
    for (mine, theirs), item in zip(zip(plain, token, strict=False), key, strict=False):
        mine_t, theirs_t = tuple(mine), tuple(theirs)
        if mine_t == theirs_t:
            continue
        bigger = mine_t > theirs_t
        return not bigger if isinstance(item, _Reverse) else bigger
    return False
