"""Running a compiled mapping: paths, fan-out, conditions, customers, error collection, batches, keys."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.errors import RecordError
from hub.mapping import CompiledMapping, load_mapping
from hub.records import Mapped, RejectedRecord
from hub_plugins.standard.transforms import TRANSFORMS

CompileText = Callable[..., CompiledMapping]  # the compile_text fixture
MapField = Callable[..., Any]  # the map_field fixture


POS_RECEIPTS = """\
description: POS receipt lines, one CSV row per line
key: "{receipt_id}:{line_no}"
entities:
  - entity: customer
    optional: true
    fields:
      member_no: {path: member_number, transforms: [strip]}
      email: {path: email, transforms: [email]}
      phone: {path: phone, transforms: [{e164: {region: NO}}]}
  - entity: order
    fields:
      external_id: {path: receipt_id, required: true}
      placed_at: {path: timestamp, type: datetime, format: "%Y-%m-%d %H:%M:%S"}
      store_external_id: store_id
      channel: {value: pos}
      currency: {path: currency, default: NOK}
  - entity: order_line
    each: line_items
    fields:
      order_external_id: {path: $.receipt_id}
      line_no: {path: $index, type: int}
      sku: sku
      quantity: {path: quantity, type: decimal}
  - entity: consent
    when: newsletter
    fields:
      channel: {value: email}
      status: {path: newsletter, transforms: [{map: {J: opt_in, N: opt_out}}]}
      at: {path: newsletter_changed, type: datetime}
"""


def receipt(**changes: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "receipt_id": "R1",
        "line_no": "1",
        "member_number": " 1001 ",
        "email": " Kari.Nordmann@Example.COM ",
        "phone": "912 34 567",
        "timestamp": "2024-05-01 12:30:00",
        "store_id": "S7",
        "currency": "",
        "line_items": [{"sku": "A1", "quantity": "2"}, {"sku": "B2", "quantity": "1,5"}],
        "newsletter": "J",
        "newsletter_changed": "2024-04-30T08:00:00Z",
    }
    raw.update(changes)
    return raw


@pytest.fixture
def pos(tmp_path: Path) -> CompiledMapping:
    path = tmp_path / "pos_receipts.yaml"
    path.write_text(POS_RECEIPTS, encoding="utf-8")
    return load_mapping(path, TRANSFORMS, timezone="Europe/Oslo", display="mappings/pos_receipts.yaml")


def test_the_spec_example_maps_a_receipt(pos: CompiledMapping) -> None:
    mapped = pos.map(receipt())
    oslo = ZoneInfo("Europe/Oslo")
    assert mapped.key == "R1:1"
    assert mapped.rows == {
        "customer": [{"member_no": "1001", "email": "kari.nordmann@example.com", "phone": "+4791234567"}],
        "order": [
            {
                "external_id": "R1",
                "placed_at": datetime(2024, 5, 1, 12, 30, tzinfo=oslo),
                "store_external_id": "S7",
                "channel": "pos",
                "currency": "NOK",
            }
        ],
        "order_line": [
            {"order_external_id": "R1", "line_no": 0, "sku": "A1", "quantity": Decimal("2")},
            {"order_external_id": "R1", "line_no": 1, "sku": "B2", "quantity": Decimal("1.5")},
        ],
        "consent": [{"channel": "email", "status": "opt_in", "at": datetime(2024, 4, 30, 8, tzinfo=UTC)}],
    }


def test_compiled_mapping_describes_itself(pos: CompiledMapping) -> None:
    assert pos.file == "mappings/pos_receipts.yaml"
    assert pos.entities == ("customer", "order", "order_line", "consent")
    assert pos.source_fields == frozenset(
        {
            "receipt_id",
            "line_no",
            "member_number",
            "email",
            "phone",
            "timestamp",
            "store_id",
            "currency",
            "line_items",
            "newsletter",
            "newsletter_changed",
        }
    )


def test_every_field_error_of_a_record_is_collected(pos: CompiledMapping) -> None:
    bad = receipt(
        email="kari@",
        timestamp="2024-13-01 10:00:00",
        line_items=[{"sku": "A1", "quantity": "two"}],
        newsletter="maybe",
        newsletter_changed="yesterday",
    )
    with pytest.raises(RecordError) as caught:
        pos.map(bad)
    errors = caught.value.errors
    assert errors[0].startswith("customer.email (email): email: 'kari@' is not a valid e-mail address")
    assert errors[1:] == [
        "order.placed_at (timestamp): '2024-13-01 10:00:00' does not match format '%Y-%m-%d %H:%M:%S'",
        "order_line[0].quantity (line_items[0].quantity): 'two' is not a number",
        "consent.at (newsletter_changed): 'yesterday' is not an ISO 8601 date-time",
    ]


def test_map_batch_keeps_going_and_returns_the_raw_payload_of_a_reject(pos: CompiledMapping) -> None:
    good, bad, also_good = receipt(), receipt(receipt_id="R2", timestamp="soon"), receipt(receipt_id="R3")
    mapped, rejected = pos.map_batch([good, bad, also_good])
    assert [m.rows["order"][0]["external_id"] for m in mapped] == ["R1", "R3"]
    assert rejected == [
        RejectedRecord(
            raw=bad,
            errors=["order.placed_at (timestamp): 'soon' does not match format '%Y-%m-%d %H:%M:%S'"],
            key="R2:1",
        )
    ]
    assert rejected[0].raw is bad


def test_map_batch_rejects_a_record_that_is_not_an_object(pos: CompiledMapping) -> None:
    mapped, rejected = pos.map_batch([["not", "a", "record"]])  # type: ignore[list-item]
    assert mapped == []
    assert rejected[0].errors == ["record: expected an object, got list"]


def test_map_raises_record_error_for_a_record_that_is_not_an_object(pos: CompiledMapping) -> None:
    with pytest.raises(RecordError, match="record: expected an object, got str"):
        pos.map("R1")  # type: ignore[arg-type]


def test_optional_customer_without_identity_is_anonymous(pos: CompiledMapping) -> None:
    mapped = pos.map(receipt(member_number=" ", email="", phone=None))
    assert mapped.customer is None
    assert "order" in mapped.rows


def test_required_customer_without_identity_is_an_error(compile_text: CompileText) -> None:
    mapping = compile_text(
        """
        entities:
          - entity: customer
            fields: {email: email, first_name: name}
        """
    )
    with pytest.raises(RecordError) as caught:
        mapping.map({"email": "  ", "name": "Kari"})
    assert caught.value.errors == ["customer: no identity key (external_id, member_no, email, phone)"]


def test_customer_with_one_identity_key_is_emitted(compile_text: CompileText) -> None:
    mapping = compile_text(
        """
        entities:
          - entity: customer
            fields: {email: email, phone: phone}
        """
    )
    assert mapping.map({"phone": "+4791234567"}).customer == {"email": None, "phone": "+4791234567"}


def test_when_skips_the_block_if_the_value_is_missing(pos: CompiledMapping) -> None:
    assert "consent" not in pos.map(receipt(newsletter="")).rows


def test_when_inside_each_reads_the_element(compile_text: CompileText) -> None:
    mapping = compile_text(
        """
        entities:
          - entity: order_line
            each: lines
            when: sku
            fields:
              order_external_id: $.id
              line_no: {path: $index, type: int}
              quantity: {path: qty, type: decimal}
        """
    )
    rows = mapping.map({"id": "O1", "lines": [{"sku": "A", "qty": 1}, {"qty": 9}, {"sku": "C", "qty": 2}]}).rows
    assert [(r["line_no"], r["quantity"]) for r in rows["order_line"]] == [(0, Decimal(1)), (2, Decimal(2))]


def test_each_with_a_missing_list_emits_nothing(pos: CompiledMapping) -> None:
    raw = receipt()
    del raw["line_items"]
    assert "order_line" not in pos.map(raw).rows


def test_each_on_something_that_is_not_a_list_is_an_error(pos: CompiledMapping) -> None:
    with pytest.raises(RecordError, match=r"order_line \(line_items\): expected a list, got str"):
        pos.map(receipt(line_items="A1,B2"))


def test_each_over_a_nested_fan_out_flattens(compile_text: CompileText) -> None:
    mapping = compile_text(
        """
        entities:
          - entity: product
            each: "groups[].items[]"
            fields:
              sku: sku
              product_group: $.name
        """
    )
    raw = {"name": "G", "groups": [{"items": [{"sku": "A"}, {"sku": "B"}]}, {"items": [{"sku": "C"}]}]}
    assert [r["sku"] for r in mapping.map(raw).rows["product"]] == ["A", "B", "C"]


def test_nested_and_indexed_paths(map_field: MapField) -> None:
    raw = {"billing": {"address": {"city": "Bergen"}}, "items": [{"sku": "A"}, {"sku": "B"}]}
    assert map_field("billing.address.city", raw) == "Bergen"
    assert map_field("items[1].sku", raw) == "B"
    assert map_field("items[-1].sku", raw) == "B"
    assert map_field("items[5].sku", raw) is None
    assert map_field("billing.address.city.name", raw) is None


def test_quoted_keys_hold_dots_and_spaces(map_field: MapField) -> None:
    raw = {"first.name": "Kari", "Member Number": "77"}
    assert map_field('["first.name"]', raw) == "Kari"
    assert map_field("Member Number", raw) == "77"


def test_list_path_gives_a_list_without_missing_items(map_field: MapField) -> None:
    raw = {"items": [{"sku": "A"}, {"qty": 1}, {"sku": "C"}]}
    assert map_field({"path": "items[].sku", "type": "json"}, raw) == ["A", "C"]


def test_paths_with_concat(map_field: MapField) -> None:
    field = {"paths": ["first", "middle", "last"], "transforms": ["concat"]}
    assert map_field(field, {"first": "Kari", "middle": " ", "last": "Nordmann"}) == "Kari Nordmann"


def test_blank_values_are_missing_and_take_the_default(map_field: MapField) -> None:
    assert map_field({"path": "n", "default": "unknown"}, {"n": "  \t"}) == "unknown"
    assert map_field({"path": "n", "default": "unknown"}, {}) == "unknown"
    assert map_field({"path": "n"}, {"n": ""}) is None


def test_default_is_coerced_once_to_the_field_type(map_field: MapField) -> None:
    assert map_field({"path": "n", "type": "decimal", "default": "0,5"}, {}) == Decimal("0.5")


def test_required_field_missing_is_an_error(compile_text: CompileText) -> None:
    mapping = compile_text(
        """
        entities:
          - entity: store
            fields:
              external_id: id
              name: {path: name, required: true}
        """
    )
    with pytest.raises(RecordError) as caught:
        mapping.map({"id": " ", "name": None})
    assert caught.value.errors == [
        "store.external_id (id): required value is missing",
        "store.name (name): required value is missing",
    ]


def test_transforms_run_before_the_missing_check(map_field: MapField) -> None:
    field = {"path": "n", "transforms": [{"nullif": ["-"]}], "default": "none"}
    assert map_field(field, {"n": " - "}) == "none"


def test_same_entity_from_two_blocks_adds_rows(compile_text: CompileText) -> None:
    mapping = compile_text(
        """
        entities:
          - entity: consent
            when: email_ok
            fields: {channel: {value: email}, status: email_ok}
          - entity: consent
            when: sms_ok
            fields: {channel: {value: sms}, status: sms_ok}
        """
    )
    rows = mapping.map({"email_ok": "opt_in", "sms_ok": "opt_out"}).rows["consent"]
    assert rows == [{"channel": "email", "status": "opt_in"}, {"channel": "sms", "status": "opt_out"}]


def test_key_renders_numbers_and_is_none_when_all_placeholders_are_missing(compile_text: CompileText) -> None:
    mapping = compile_text(
        """
        key: "{shop.id}/{{{n}}}"
        entities:
          - entity: store
            fields: {external_id: {value: S}}
        """
    )
    assert mapping.map({"shop": {"id": 7}, "n": True}).key == "7/{true}"
    assert mapping.map({}).key is None
    assert mapping.source_fields == frozenset({"shop", "n"})


def test_mapping_without_key_template_gives_no_key(compile_text: CompileText) -> None:
    mapping = compile_text(
        """
        entities:
          - entity: store
            fields: {external_id: id}
        """
    )
    assert mapping.map({"id": "S1"}) == Mapped(rows={"store": [{"external_id": "S1"}]}, key=None)


def test_element_paths_are_not_source_fields(compile_text: CompileText) -> None:
    mapping = compile_text(
        """
        entities:
          - entity: order_line
            each: lines
            when: $.has_lines
            fields:
              order_external_id: $.id
              line_no: {path: $index, type: int}
              quantity: qty
        """
    )
    assert mapping.source_fields == frozenset({"lines", "has_lines", "id"})


def test_a_plugin_transform_is_used_like_a_built_in(tmp_path: Path) -> None:
    def reverse() -> Callable[[Any], Any]:
        return lambda value: None if value is None else value[::-1]

    path = tmp_path / "m.yaml"
    path.write_text("entities:\n  - entity: store\n    fields:\n      external_id: {path: id, transforms: [reverse]}\n")
    mapping = load_mapping(path, {**TRANSFORMS, "reverse": reverse})
    assert mapping.map({"id": "abc"}).rows["store"] == [{"external_id": "cba"}]


def test_a_transform_raising_type_error_rejects_the_record(tmp_path: Path) -> None:
    def sloppy() -> Callable[[Any], Any]:
        return lambda value: value + 1

    path = tmp_path / "m.yaml"
    path.write_text("entities:\n  - entity: store\n    fields:\n      external_id: {path: id, transforms: [sloppy]}\n")
    mapping = load_mapping(path, {"sloppy": sloppy})
    with pytest.raises(RecordError, match=r"store.external_id \(id\): sloppy: "):
        mapping.map({"id": "abc"})
