"""Odoo domains and ``order`` specifications as the Odoo emulator evaluates them, with Odoo's own errors.

A domain is a list in prefix (Polish) notation: leaves ``[field, operator, value]`` and the operators ``"&"``,
``"|"`` (two operands) and ``"!"`` (one); consecutive expressions at the top are ANDed. Operators: ``= != > >= < <=
in, not in, like, ilike, =like, =ilike``. ``false`` compares as SQL ``NULL``: ``("email", "=", False)`` is "no
e-mail", and ``!=`` a value also matches rows where the field is empty, as Odoo's SQL does. A datetime is compared
as a time (``"2025-01-06 09:00:00"`` matches a row stamped ``09:00:00.4`` with ``>=``, not with ``=``).

Errors are ``ValueError`` with Odoo's words: an unknown field, an unknown operator, a malformed leaf or order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

Row = Mapping[str, Any]
Test = Callable[[Row], bool]
OPERATORS = ("=", "!=", ">", ">=", "<", "<=", "in", "not in", "like", "ilike", "=like", "=ilike")
_ORDER = re.compile(r"^\s*([a-z_][a-z0-9_]*)(?:\s+(asc|desc))?\s*$", re.IGNORECASE)


def parse_domain(domain: Any, model: str, kinds: Mapping[str, str]) -> Test:
    """A test of stored rows for ``domain`` on ``model`` (field name -> kind: char, int, float, bool, datetime,
    date, selection, many2one, one2many)."""
    if domain is None or domain is False:
        return lambda row: True
    if not isinstance(domain, list):
        raise ValueError(f"Invalid domain {domain!r}: a domain is a list")
    tests: list[Test] = []
    position = 0
    while position < len(domain):
        test, position = _expression(domain, position, model, kinds)
        tests.append(test)
    return lambda row: all(test(row) for test in tests)


def _expression(domain: list[Any], at: int, model: str, kinds: Mapping[str, str]) -> tuple[Test, int]:
    if at >= len(domain):
        raise ValueError(f"Invalid domain {domain!r}: an operator lacks its operands")
    item = domain[at]
    if item in ("&", "|"):
        left, at = _expression(domain, at + 1, model, kinds)
        right, at = _expression(domain, at, model, kinds)
        if item == "&":
            return (lambda row: left(row) and right(row)), at
        return (lambda row: left(row) or right(row)), at
    if item == "!":
        inner, at = _expression(domain, at + 1, model, kinds)
        return (lambda row: not inner(row)), at
    return _leaf(item, model, kinds), at + 1


def _leaf(leaf: Any, model: str, kinds: Mapping[str, str]) -> Test:
    if not isinstance(leaf, list | tuple) or len(leaf) != 3 or not isinstance(leaf[0], str):
        raise ValueError(f"Invalid leaf {leaf!r}")
    name, operator, value = leaf
    if name not in kinds:
        raise ValueError(f"Invalid field {model}.{name} in leaf {tuple(leaf)!r}")
    if operator not in OPERATORS:
        raise ValueError(f"Invalid leaf {tuple(leaf)!r}: unknown operator {operator!r}")
    kind = kinds[name]
    if operator in ("in", "not in"):
        if not isinstance(value, list | tuple):
            raise ValueError(f"Invalid leaf {tuple(leaf)!r}: {operator!r} takes a list")
        wanted = {_value(v, kind, leaf) for v in value}
        if operator == "in":
            return lambda row: _stored(row, name, kind) in wanted
        return lambda row: _stored(row, name, kind) not in wanted
    if operator in ("like", "ilike", "=like", "=ilike"):
        pattern = _like(str(value), operator)
        return lambda row: (text := row.get(name)) is not None and pattern.fullmatch(str(text)) is not None
    target = _value(value, kind, leaf)
    compare = _COMPARE[operator]
    return lambda row: compare(_stored(row, name, kind), target)


def _null_eq(a: Any, b: Any) -> bool:
    return a == b


def _null_ne(a: Any, b: Any) -> bool:
    return a != b or (a is None and b is not None)


def _ordered(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    return lambda a, b: a is not None and b is not None and op(a, b)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": _null_eq,
    "!=": _null_ne,
    ">": _ordered(lambda a, b: a > b),
    ">=": _ordered(lambda a, b: a >= b),
    "<": _ordered(lambda a, b: a < b),
    "<=": _ordered(lambda a, b: a <= b),
}


def _stored(row: Row, name: str, kind: str) -> Any:
    value = row.get(name)
    if kind == "bool":
        return bool(value)
    return value


def _value(value: Any, kind: str, leaf: Any) -> Any:
    """A domain value in the form rows store (``False`` is NULL, except for booleans)."""
    if value is False and kind != "bool":
        return None
    if kind == "datetime" and isinstance(value, str):
        for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
            try:
                return datetime.strptime(value, pattern)
            except ValueError:
                continue
        raise ValueError(f"time data {value!r} does not match format '%Y-%m-%d %H:%M:%S' in leaf {tuple(leaf)!r}")
    if kind == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    if kind == "many2one" and isinstance(value, list | tuple) and value:
        return value[0]
    return value


def _like(pattern: str, operator: str) -> re.Pattern[str]:
    flags = re.IGNORECASE if "ilike" in operator else 0
    if operator.startswith("="):
        parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
        return re.compile("".join(parts), flags)
    return re.compile(".*" + re.escape(pattern) + ".*", flags | re.DOTALL)


def parse_order(order: Any, model: str, kinds: Mapping[str, str]) -> list[tuple[str, bool]]:
    """``"write_date asc, id asc"`` -> ``[("write_date", False), ("id", False)]`` (True: descending)."""
    if order is None or order is False or order == "":
        return [("id", False)]
    spec: list[tuple[str, bool]] = []
    for part in str(order).split(","):
        match = _ORDER.match(part)
        if match is None or match.group(1) not in kinds:
            raise ValueError(
                f'Invalid "order" specified ({order}). A valid "order" specification is a comma-separated list of '
                "valid field names (optionally followed by asc/desc for the direction)"
            )
        spec.append((match.group(1), (match.group(2) or "asc").lower() == "desc"))
    return spec


def sort_rows(rows: list[dict[str, Any]], order: list[tuple[str, bool]]) -> list[dict[str, Any]]:
    """Rows sorted by ``order`` (NULLs last ascending, as PostgreSQL sorts them), stable."""
    for name, descending in reversed(order):
        present = [r for r in rows if r.get(name) is not None]
        missing = [r for r in rows if r.get(name) is None]
        present.sort(key=lambda r: r[name], reverse=descending)
        rows = missing + present if descending else present + missing
    return rows
