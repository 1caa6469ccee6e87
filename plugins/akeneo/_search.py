"""The emulator's ``search`` query parameter: validated with Akeneo's own messages, then applied to products.

Validation follows the PIM's ``GetListOfProductsQueryValidator`` and property filters: text that is not JSON is a
**400** ``Search query parameter should be valid JSON.``; every other mistake (not an object, a filter that is not
a list of ``{"operator", "value"}``, an unknown property or operator, a date not written ``yyyy-mm-dd H:i:s``) is a
**422** with the PIM's message. Dates are the server's (UTC, as on SaaS).

Properties served: ``updated`` and ``created`` (``= != < > BETWEEN "NOT BETWEEN" "SINCE LAST N DAYS"``; ``=`` and
``!=`` compare the day, as Akeneo documents), ``uuid`` (``IN``, ``NOT IN``), ``enabled`` (``=``, ``!=``),
``family`` and ``categories`` (``IN``, ``NOT IN``, ``EMPTY``, ``NOT EMPTY``), ``parent`` (``=``, ``IN``,
``EMPTY``, ``NOT EMPTY``) and the identifier attribute ``sku`` (``=``, ``IN``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from hub_plugins.akeneo._state import ApiError, Product

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
_DATES = ("updated", "created")
_OPERATORS: dict[str, frozenset[str]] = {
    "updated": frozenset({"=", "!=", "<", ">", "BETWEEN", "NOT BETWEEN", "SINCE LAST N DAYS"}),
    "created": frozenset({"=", "!=", "<", ">", "BETWEEN", "NOT BETWEEN", "SINCE LAST N DAYS"}),
    "uuid": frozenset({"IN", "NOT IN"}),
    "enabled": frozenset({"=", "!="}),
    "family": frozenset({"IN", "NOT IN", "EMPTY", "NOT EMPTY"}),
    "categories": frozenset({"IN", "NOT IN", "EMPTY", "NOT EMPTY"}),
    "parent": frozenset({"=", "IN", "EMPTY", "NOT EMPTY"}),
    "sku": frozenset({"=", "IN"}),
}
_PHP_TYPES = {str: "string", int: "integer", float: "double", bool: "boolean", list: "array", type(None): "NULL"}

#: A parsed filter: (product, monotonic now) -> whether the product passes.
Test = Callable[[Product, float], bool]


def parse_search(raw: str | None) -> list[Test]:
    """The tests of a ``search`` parameter (none: every product); ApiError with Akeneo's answer when invalid."""
    return parse(raw)[0]


def parse(raw: str | None) -> tuple[list[Test], frozenset[str] | None]:
    """The tests of a ``search`` parameter, and the UUIDs a ``uuid IN`` filter allows (None: any), so a look-up
    by UUIDs need not scan the catalogue."""
    if raw is None:
        return [], None
    try:
        search = json.loads(raw)
    except ValueError:
        search = None
    if search is None:
        raise ApiError(400, "Search query parameter should be valid JSON.")
    if isinstance(search, list) and not search:
        return [], None
    if not isinstance(search, dict):
        raise ApiError(422, f'Search query parameter has to be an array, "{_php_type(search)}" given.')
    tests: list[Test] = []
    allowed: frozenset[str] | None = None
    for prop, filters in search.items():
        if not isinstance(filters, list) or not filters:
            structure = f'{{"{prop}":[{{"operator": "my_operator", "value": "my_value"}}]}}'
            raise ApiError(422, f'Structure of filter "{prop}" should respect this structure: {structure}')
        for condition in filters:
            if not isinstance(condition, dict) or "operator" not in condition:
                raise ApiError(422, f'Operator is missing for the property "{prop}".')
            operator = condition["operator"]
            if not isinstance(operator, str):
                raise ApiError(422, f'Operator has to be a string, "{_php_type(operator)}" given.')
            if operator not in _OPERATORS.get(prop, frozenset()):
                raise ApiError(
                    422, f'Filter on property "{prop}" is not supported or does not support operator "{operator}"'
                )
            tests.append(_test(prop, operator, condition.get("value")))
            if prop == "uuid" and operator == "IN":
                uuids = frozenset(condition["value"])
                allowed = uuids if allowed is None else allowed & uuids
    return tests, allowed


def _test(prop: str, operator: str, value: Any) -> Test:
    if prop in _DATES:
        return _date_test(prop, operator, value)
    if prop in ("uuid", "family", "categories", "parent", "sku") and operator in ("IN", "NOT IN"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ApiError(422, f'Property "{prop}" expects an array as data, "{_php_type(value)}" given.')
        wanted = frozenset(value)
        hit = _member(prop, wanted)
        return hit if operator == "IN" else (lambda p, now: not hit(p, now))
    if operator in ("EMPTY", "NOT EMPTY"):
        empty = _empty(prop)
        return empty if operator == "EMPTY" else (lambda p, now: not empty(p, now))
    if prop == "enabled":
        if not isinstance(value, bool):
            raise ApiError(422, f'Property "enabled" expects a boolean as data, "{_php_type(value)}" given.')
        return lambda p, now: (p.data.get("enabled") is value) == (operator == "=")
    if not isinstance(value, str):
        raise ApiError(422, f'Property "{prop}" expects a string as data, "{_php_type(value)}" given.')
    if prop == "parent":
        return lambda p, now: p.data.get("parent") == value
    return lambda p, now: _sku(p) == value


def _date_test(prop: str, operator: str, value: Any) -> Test:
    def when(product: Product, now: float) -> datetime | None:
        return product.searched_updated(now) if prop == "updated" else product.created

    if operator == "SINCE LAST N DAYS":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ApiError(422, f'Property "{prop}" expects an integer as data, "{_php_type(value)}" given.')
        since = datetime.now(UTC) - timedelta(days=value)
        return lambda p, now: (moment := when(p, now)) is not None and moment >= since
    if operator in ("BETWEEN", "NOT BETWEEN"):
        if not isinstance(value, list) or len(value) != 2 or not all(_is_date(v) for v in value):
            raise ApiError(
                422,
                f'Property "{prop}" expects an array with valid data, should contain 2 strings with the format '
                '"yyyy-mm-dd H:i:s".',
            )
        low, high = (_date(v) for v in value)
        inside = operator == "BETWEEN"
        return lambda p, now: (moment := when(p, now)) is not None and (low <= moment <= high) == inside
    if not _is_date(value):
        raise ApiError(
            422, f'Property "{prop}" expects a string with the format "yyyy-mm-dd H:i:s" as data, "{value}" given.'
        )
    bound = _date(value)
    compare: dict[str, Callable[[datetime], bool]] = {
        ">": lambda moment: moment > bound,
        "<": lambda moment: moment < bound,
        "=": lambda moment: moment.date() == bound.date(),
        "!=": lambda moment: moment.date() != bound.date(),
    }
    check = compare[operator]
    return lambda p, now: (moment := when(p, now)) is not None and check(moment)


def _member(prop: str, wanted: frozenset[str]) -> Test:
    if prop == "uuid":
        return lambda p, now: p.uuid in wanted
    if prop == "categories":
        return lambda p, now: bool(wanted.intersection(p.data.get("categories") or ()))
    if prop == "sku":
        return lambda p, now: _sku(p) in wanted
    return lambda p, now: p.data.get(prop) in wanted


def _empty(prop: str) -> Test:
    return lambda p, now: not p.data.get(prop)


def _sku(product: Product) -> Any:
    entries = (product.data.get("values") or {}).get("sku") or [{}]
    return entries[0].get("data") if isinstance(entries[0], Mapping) else None


def _is_date(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.strptime(value, DATE_FORMAT)
    except ValueError:
        return False
    return True


def _date(text: str) -> datetime:
    return datetime.strptime(text, DATE_FORMAT).replace(tzinfo=UTC)


def _php_type(value: Any) -> str:
    return "array" if isinstance(value, dict) else _PHP_TYPES.get(type(value), type(value).__name__)
