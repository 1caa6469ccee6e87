"""Property tests: normalisation is stable, numbers round-trip, and no input can crash a compiled mapping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from decimal import Decimal
from functools import cache
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hub._yaml import loads_located
from hub.errors import RecordError
from hub.mapping import CompiledMapping, compile_mapping
from hub_plugins.standard.transforms import TRANSFORMS

MapField = Callable[..., Any]  # the map_field fixture

email = TRANSFORMS["email"]()
e164_no = TRANSFORMS["e164"](region="NO")

FIXTURES = [HealthCheck.function_scoped_fixture]


@given(st.emails())
def test_email_is_idempotent(address: str) -> None:
    try:
        normalised = email(address)
    except ValueError:
        assume(False)
    assert email(normalised) == normalised


@given(st.emails(), st.sampled_from([" ", "\t", "  ", ""]), st.sampled_from([" ", "\n", ""]))
def test_email_ignores_case_and_surrounding_whitespace(address: str, before: str, after: str) -> None:
    try:
        expected = email(address)
    except ValueError:
        assume(False)
    assert email(before + address.upper() + after) == expected
    assert email(address.lower()) == expected


def _national_formats(digits: str) -> list[str]:
    grouped = f"{digits[:3]} {digits[3:5]} {digits[5:]}"
    return [
        digits,
        grouped,
        grouped.replace(" ", "-"),
        f"+47{digits}",
        f"+47 {grouped}",
        f"0047{digits}",
        f"0047 {digits}",
        f"(+47) {digits[:2]} {digits[2:4]} {digits[4:6]} {digits[6:]}",
    ]


@given(st.integers(min_value=90_000_000, max_value=99_999_999))
def test_e164_is_the_same_for_every_way_of_writing_a_number(number: int) -> None:
    digits = str(number)
    assert {e164_no(text) for text in _national_formats(digits)} == {f"+47{digits}"}


@settings(suppress_health_check=FIXTURES)
@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimal_round_trips_through_its_text(map_field: MapField, number: Decimal) -> None:
    result = map_field({"path": "v", "type": "decimal"}, {"v": str(number)})
    assert str(result) == str(number)


@settings(suppress_health_check=FIXTURES)
@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_int_round_trips_through_its_text(map_field: MapField, number: int) -> None:
    assert map_field({"path": "v", "type": "int"}, {"v": str(number)}) == number


@settings(suppress_health_check=FIXTURES)
@given(st.datetimes(timezones=st.just(UTC)))
def test_datetime_round_trips_through_iso_8601(map_field: MapField, moment: Any) -> None:
    assert map_field({"path": "v", "type": "datetime"}, {"v": moment.isoformat()}) == moment


EVERYTHING = """
key: "{id}-{nested.key}"
entities:
  - entity: customer
    optional: true
    fields:
      external_id: {path: id, transforms: [strip, {prefix: "C-"}, {truncate: 20}]}
      email: {path: email, transforms: [email]}
      phone: {path: phone, transforms: [{nullif: ["-", "0"]}, digits, {e164: {region: NO}}]}
      first_name: {path: name, transforms: [{split: {index: 0}}, title]}
      last_name:
        paths: [name, nested.key]
        transforms: [{concat: "/"}, lower, {replace: {old: "/", new: " "}}]
      birth_date: {path: born, type: date, format: "%d.%m.%Y"}
      is_b2b: {path: b2b, type: bool}
      created_at: {path: created, type: datetime, format: epoch_ms}
      updated_at: {path: updated, type: datetime}
      gender: {path: gender, transforms: [upper, {map: {values: {M: male, F: female}, strict: true}}]}
  - entity: order
    when: id
    fields:
      external_id: {path: id, required: true}
      placed_at: {path: created, type: datetime, format: epoch, default: 0}
      total: {path: total, type: decimal}
      is_return: {path: b2b, type: bool, true_values: [R]}
      status: {path: price, type: int}
  - entity: order_line
    each: lines
    fields:
      order_external_id: {path: $.id, default: none}
      line_no: {path: $index, type: int}
      quantity: {path: qty, type: decimal, default: 1}
      sku: {path: "sku[0]", transforms: [upper]}
      unit_price: {path: price, type: decimal}
  - entity: event
    each: "events[].list[]"
    fields:
      external_id: {path: id, default: e}
      type: {path: type, default: view}
      at: {path: at, type: datetime, default: "2024-01-01"}
      payload_json: {path: payload, type: json}
"""

KEYS = ["id", "email", "phone", "name", "born", "b2b", "created", "updated", "gender", "total", "lines"]
KEYS += ["nested", "events", "qty", "price", "sku", "type", "at", "payload", "list", "key"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(["", " ", "-", "0", "1,5", "NaN", "1e999999", "2024-05-01", "+4791234567", "a@b.no", "{}"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    max_leaves=20,
)

raw_records = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=12)


@cache
def everything() -> CompiledMapping:
    return compile_mapping(loads_located(EVERYTHING, file="everything.yaml"), TRANSFORMS, timezone="Europe/Oslo")


@settings(max_examples=200, deadline=None)
@given(raw=raw_records)
def test_a_compiled_mapping_only_ever_raises_record_error(raw: dict[str, Any]) -> None:
    mapping = everything()
    try:
        mapping.map(raw)
    except RecordError as exc:
        assert exc.errors
        assert all(isinstance(error, str) and error for error in exc.errors)
    mapped, rejected = mapping.map_batch([raw])
    assert len(mapped) + len(rejected) == 1
