"""Type coercion of each field type: text from CSV, native values from JSON, and the errors in between."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.errors import RecordError

MapField = Callable[..., Any]  # the map_field fixture


OSLO = ZoneInfo("Europe/Oslo")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Kari", "Kari"),
        (5, "5"),
        (1.5, "1.5"),
        (True, "true"),
        (Decimal("2.50"), "2.50"),
        (date(2024, 1, 2), "2024-01-02"),
    ],
)
def test_str(map_field: MapField, value: Any, expected: str) -> None:
    assert map_field("v", {"v": value}) == expected


def test_str_refuses_an_object(map_field: MapField) -> None:
    with pytest.raises(RecordError, match=r"product.name \(v\): expected text, got dict"):
        map_field("v", {"v": {"a": 1}})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12", 12),
        (" 12 ", 12),
        ("12.0", 12),
        ("12,0", 12),
        ("1 234", 1234),
        (12, 12),
        (12.0, 12),
        (Decimal("3"), 3),
    ],
)
def test_int(map_field: MapField, value: Any, expected: int) -> None:
    result = map_field({"path": "v", "type": "int"}, {"v": value})
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("12.5", "'12.5' is not a whole number"),
        ("abc", "'abc' is not a number"),
        (True, "expected an integer, got bool True"),
        (2**63, "9223372036854775808 is out of range for a 64-bit integer"),
        ("1e999999", "'1e999999' is out of range for a 64-bit integer"),
        ([1], "expected an integer, got list"),
    ],
)
def test_int_errors(map_field: MapField, value: Any, message: str) -> None:
    with pytest.raises(RecordError) as caught:
        map_field({"path": "v", "type": "int"}, {"v": value})
    assert caught.value.errors == [f"product.name (v): {message}"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("199.90", Decimal("199.90")),
        ("1 234,50", Decimal("1234.50")),
        ("1\u00a0234,50", Decimal("1234.50")),
        ("1.234,50", Decimal("1234.50")),
        ("1,234.50", Decimal("1234.50")),
        ("-0,5", Decimal("-0.5")),
        (12, Decimal(12)),
        (0.1, Decimal("0.1")),
        (Decimal("7.25"), Decimal("7.25")),
    ],
)
def test_decimal(map_field: MapField, value: Any, expected: Decimal) -> None:
    result = map_field({"path": "v", "type": "decimal"}, {"v": value})
    assert result == expected
    assert isinstance(result, Decimal)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "'abc' is not a number"),
        ("NaN", "'NaN' is not a finite number"),
        (float("inf"), "inf is not a finite number"),
        (False, "expected a number, got bool False"),
        ({"amount": 1}, "expected a number, got dict"),
    ],
)
def test_decimal_errors(map_field: MapField, value: Any, message: str) -> None:
    with pytest.raises(RecordError) as caught:
        map_field({"path": "v", "type": "decimal"}, {"v": value})
    assert caught.value.errors == [f"product.name (v): {message}"]


@pytest.mark.parametrize("word", ["true", "TRUE", "1", "yes", "Y", "j", "Ja", "t", " y "])
def test_bool_true_words(map_field: MapField, word: str) -> None:
    assert map_field({"path": "v", "type": "bool"}, {"v": word}) is True


@pytest.mark.parametrize("word", ["false", "False", "0", "no", "N", "nei", "NEI", "f"])
def test_bool_false_words(map_field: MapField, word: str) -> None:
    assert map_field({"path": "v", "type": "bool"}, {"v": word}) is False


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), (1, True), (0, False)])
def test_bool_from_json(map_field: MapField, value: Any, expected: bool) -> None:
    assert map_field({"path": "v", "type": "bool"}, {"v": value}) is expected


def test_bool_custom_words_replace_the_defaults(map_field: MapField) -> None:
    field = {"path": "v", "type": "bool", "true_values": ["X"], "false_values": ["-", "no"]}
    assert map_field(field, {"v": "x"}) is True
    assert map_field(field, {"v": "No"}) is False
    with pytest.raises(RecordError, match=r"'yes' is not a boolean \(accepted: -, no, x\)"):
        map_field(field, {"v": "yes"})


def test_bool_error(map_field: MapField) -> None:
    with pytest.raises(RecordError, match=r"product.name \(v\): 2 is not a boolean \(accepted: 0, 1, f, false"):
        map_field({"path": "v", "type": "bool"}, {"v": 2})


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ({}, "2024-05-01", date(2024, 5, 1)),
        ({}, "2024-05-01T10:00:00", date(2024, 5, 1)),
        ({}, "2024-05-01T23:30:00+00:00", date(2024, 5, 2)),  # in Oslo it is already the 2nd
        ({"format": "%d.%m.%Y"}, "01.05.2024", date(2024, 5, 1)),
        ({"format": "epoch"}, 1714600800, date(2024, 5, 2)),  # 2024-05-01T22:00:00Z
        ({}, date(2024, 5, 1), date(2024, 5, 1)),
        ({}, datetime(2024, 5, 1, 23, 30), date(2024, 5, 1)),
    ],
)
def test_date(map_field: MapField, field: dict[str, Any], value: Any, expected: date) -> None:
    result = map_field({"path": "v", "type": "date", **field}, {"v": value}, timezone="Europe/Oslo")
    assert result == expected
    assert type(result) is date


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ({}, "2024-02-30", "'2024-02-30' is not an ISO 8601 date-time"),
        ({"format": "%d.%m.%Y"}, "2024-05-01", "'2024-05-01' does not match format '%d.%m.%Y'"),
        ({}, 20240501, "expected a date-time as text, got int"),
    ],
)
def test_date_errors(map_field: MapField, field: dict[str, Any], value: Any, message: str) -> None:
    with pytest.raises(RecordError) as caught:
        map_field({"path": "v", "type": "date", **field}, {"v": value})
    assert caught.value.errors == [f"product.name (v): {message}"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ({}, "2024-05-01T12:30:00", datetime(2024, 5, 1, 12, 30, tzinfo=OSLO)),
        ({}, "2024-05-01 12:30", datetime(2024, 5, 1, 12, 30, tzinfo=OSLO)),
        ({}, "2024-05-01T12:30:00Z", datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
        ({}, "2024-05-01", datetime(2024, 5, 1, tzinfo=OSLO)),
        ({"format": "%d.%m.%Y %H:%M"}, "01.05.2024 12:30", datetime(2024, 5, 1, 12, 30, tzinfo=OSLO)),
        (
            {"format": "%d.%m.%Y %H:%M", "tz": "America/New_York"},
            "01.05.2024 12:30",
            datetime(2024, 5, 1, 12, 30, tzinfo=ZoneInfo("America/New_York")),
        ),
        ({"format": "epoch"}, 1714566600, datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
        ({"format": "epoch"}, "1714566600.5", datetime(2024, 5, 1, 12, 30, 0, 500000, tzinfo=UTC)),
        ({"format": "epoch_ms"}, 1714566600000, datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
        ({}, datetime(2024, 5, 1, 12, 30), datetime(2024, 5, 1, 12, 30, tzinfo=OSLO)),
        ({}, date(2024, 5, 1), datetime(2024, 5, 1, tzinfo=OSLO)),
    ],
)
def test_datetime(map_field: MapField, field: dict[str, Any], value: Any, expected: datetime) -> None:
    result = map_field({"path": "v", "type": "datetime", **field}, {"v": value}, timezone="Europe/Oslo")
    assert result == expected
    assert result.tzinfo == expected.tzinfo


def test_datetime_keeps_an_explicit_offset(map_field: MapField) -> None:
    result = map_field({"path": "v", "type": "datetime"}, {"v": "2024-05-01T12:30:00+05:30"}, timezone="Europe/Oslo")
    assert result.utcoffset() == timedelta(hours=5, minutes=30)
    assert result == datetime(2024, 5, 1, 7, 0, tzinfo=UTC)


def test_datetime_is_always_timezone_aware(map_field: MapField) -> None:
    aware = datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=-3)))
    assert map_field({"path": "v", "type": "datetime"}, {"v": aware}) is aware


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ({}, "2024-13-01", "'2024-13-01' is not an ISO 8601 date-time"),
        ({"format": "%Y-%m-%d"}, "2024-13-01", "'2024-13-01' does not match format '%Y-%m-%d'"),
        ({"format": "epoch"}, "yesterday", "'yesterday' is not a number"),
        ({"format": "epoch"}, 10**20, "100000000000000000000 is out of range for an epoch timestamp"),
        ({"format": "epoch"}, True, "expected an epoch timestamp, got bool"),
        ({}, {"at": 1}, "expected a date-time as text, got dict"),
    ],
)
def test_datetime_errors(map_field: MapField, field: dict[str, Any], value: Any, message: str) -> None:
    with pytest.raises(RecordError) as caught:
        map_field({"path": "v", "type": "datetime", **field}, {"v": value})
    assert caught.value.errors == [f"product.name (v): {message}"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [({"a": [1, 2]}, {"a": [1, 2]}), ([1, "x"], [1, "x"]), ('{"a": null}', {"a": None}), ("[1, 2]", [1, 2])],
)
def test_json(map_field: MapField, value: Any, expected: Any) -> None:
    assert map_field({"path": "v", "type": "json"}, {"v": value}) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "'{not json' is not valid JSON"),
        ("5", "'5' is not a JSON object or array"),
        (5, "expected a JSON object, array or text, got int"),
    ],
)
def test_json_errors(map_field: MapField, value: Any, message: str) -> None:
    with pytest.raises(RecordError) as caught:
        map_field({"path": "v", "type": "json"}, {"v": value})
    assert caught.value.errors == [f"product.name (v): {message}"]


def test_constant_is_coerced_at_compile_time(map_field: MapField) -> None:
    assert map_field({"value": "2024-01-01", "type": "date"}, {}) == date(2024, 1, 1)


def test_a_field_without_type_gets_the_type_the_model_stores(tmp_path):
    from hub.mapping import load_mapping
    from hub_plugins.standard.transforms import TRANSFORMS

    path = tmp_path / "orders.yaml"
    path.write_text(
        "entities:\n  - entity: order\n    fields: {external_id: id, placed_at: created, total: amount}\n",
        encoding="utf-8",
    )
    mapping = load_mapping(path, TRANSFORMS, timezone="Europe/Oslo")
    row = mapping.map({"id": "1", "created": "2025-06-01T12:00:00", "amount": "10.50"}).rows["order"][0]
    assert row["placed_at"].utcoffset() is not None
    assert row["total"] == Decimal("10.50")
