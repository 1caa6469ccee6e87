"""Every mistake in a mapping file is reported at compile time as ``file:line: key.path: message``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hub.errors import MappingError
from hub.mapping import load_mapping
from hub_plugins.standard.transforms import TRANSFORMS


def issues(tmp_path: Path, text: str, *, timezone: str = "UTC") -> list[str]:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_mapping(path, TRANSFORMS, timezone=timezone, display="mappings/bad.yaml")
    return [str(issue) for issue in caught.value.issues]


def test_unknown_top_level_key(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        descripton: typo
        entities:
          - entity: store
            fields: {external_id: id}
        """,
    )
    assert found == ["mappings/bad.yaml:2: descripton: unknown key"]


def test_unknown_entity_lists_the_known_ones(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: shop
            fields: {external_id: id}
        """,
    )
    assert len(found) == 1
    assert found[0].startswith("mappings/bad.yaml:3: entities[0].entity: unknown entity 'shop'; known: customer,")
    assert "order_line" in found[0]


def test_unknown_field_lists_the_valid_ones(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: store
            fields:
              external_id: id
              town: city
        """,
    )
    assert found == [
        "mappings/bad.yaml:6: entities[0].fields.town: unknown field for store; "
        "valid fields: external_id, name, city, region, country, opened_at"
    ]


def test_unknown_type(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: store
            fields:
              external_id: id
              opened_at: {path: opened, type: timestamp}
        """,
    )
    assert len(found) == 1
    assert found[0].startswith("mappings/bad.yaml:6: entities[0].fields.opened_at.type: Input should be 'str'")


def test_unknown_transform_lists_the_known_ones(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: store
            fields:
              external_id: {path: id, transforms: [strip, trim]}
        """,
    )
    assert len(found) == 1
    assert found[0].startswith(
        "mappings/bad.yaml:5: entities[0].fields.external_id.transforms[1]: unknown transform 'trim'; known: concat,"
    )


def test_transform_arguments_the_factory_refuses(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: store
            fields:
              external_id:
                path: id
                transforms:
                  - {truncate: {len: 4}}
                  - {truncate: -1}
                  - {e164: {region: XX}}
                  - {strip: yes}
        """,
    )
    assert found == [
        "mappings/bad.yaml:8: entities[0].fields.external_id.transforms[0]: bad arguments for transform "
        "'truncate': truncate() got an unexpected keyword argument 'len'",
        "mappings/bad.yaml:9: entities[0].fields.external_id.transforms[1]: bad arguments for transform "
        "'truncate': `length` must be a whole number of 0 or more, got -1",
        "mappings/bad.yaml:10: entities[0].fields.external_id.transforms[2]: bad arguments for transform "
        "'e164': unknown region 'XX'; use an ISO 3166 alpha-2 code such as 'NO' or 'SE'",
        "mappings/bad.yaml:11: entities[0].fields.external_id.transforms[3]: bad arguments for transform "
        "'strip': strip() takes 0 positional arguments but 1 was given",
    ]


def test_transform_item_with_two_names(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: store
            fields:
              external_id: {path: id, transforms: [{strip: null, lower: null}]}
        """,
    )
    assert found == [
        "mappings/bad.yaml:5: entities[0].fields.external_id.transforms[0]: "
        "a transform is a name or {name: arguments}, e.g. `strip` or `{truncate: 40}`"
    ]


def test_both_path_and_value(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: store
            fields:
              external_id: {path: id, value: S1}
        """,
    )
    assert found == ["mappings/bad.yaml:5: entities[0].fields.external_id: use only one of path, value"]


def test_neither_path_nor_value(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: store
            fields:
              external_id: {type: str}
        """,
    )
    assert found == ["mappings/bad.yaml:5: entities[0].fields.external_id: give a path, paths or value"]


def test_each_on_customer(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: customer
            each: people
            fields: {email: email}
        """,
    )
    assert found == [
        "mappings/bad.yaml:4: entities[0].each: a customer block cannot use `each`: a raw record is about one customer"
    ]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("a..b", "path 'a..b': empty key before position 3"),
        ("a.", "path 'a.': ends with `.`"),
        ("items[x]", "path 'items[x]': [x] is not a list position; quote a key: [\"x\"]"),
        ("items[0", "path 'items[0': unclosed `[` at position 6"),
        ("[0].sku", "path '[0].sku': `[` must follow a key at position 1"),
        ("$foo", "path '$foo': only `$.` and `$index` start with `$`; quote a key: [\"$key\"]"),
        ("a]b", "path 'a]b': unexpected `]` at position 2"),
    ],
)
def test_invalid_path_syntax(tmp_path: Path, path: str, message: str) -> None:
    found = issues(
        tmp_path,
        f"""
        entities:
          - entity: store
            fields:
              external_id: {{path: '{path}'}}
        """,
    )
    assert found == [f"mappings/bad.yaml:5: entities[0].fields.external_id.path: {message}"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("'{id'", "unclosed `{` at position 1"),
        ("'{}'", "empty placeholder `{}` at position 1"),
        ("'id}'", "unmatched `}` at position 3; write `}}` for a literal brace"),
        ("'{items[].id}'", "placeholder {items[].id} gives a list; a key needs one value per placeholder"),
        ("'{$index}'", "`$index` has no meaning in a record key"),
        ("receipt", "a key template needs at least one {path} placeholder"),
    ],
)
def test_bad_key_template(tmp_path: Path, key: str, message: str) -> None:
    found = issues(
        tmp_path,
        f"""
        key: {key}
        entities:
          - entity: store
            fields: {{external_id: id}}
        """,
    )
    assert found == [f"mappings/bad.yaml:2: key: {message}"]


def test_index_outside_each(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: store
            fields:
              external_id: $index
        """,
    )
    assert found == [
        "mappings/bad.yaml:5: entities[0].fields.external_id.path: "
        "`$index` is only available to the fields of a block with `each`"
    ]


def test_required_entity_fields_must_be_mapped(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: order_line
            each: lines
            fields:
              sku: sku
        """,
    )
    assert found == [
        "mappings/bad.yaml:5: entities[0].fields: order_line needs field(s): order_external_id, line_no, quantity"
    ]


def test_customer_block_without_identity_key(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: customer
            fields:
              first_name: name
        """,
    )
    assert found == [
        "mappings/bad.yaml:4: entities[0].fields: a customer block needs an identity key: "
        "external_id, member_no, email, phone"
    ]


def test_optional_outside_customer(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: store
            optional: true
            fields: {external_id: id}
        """,
    )
    assert found == ["mappings/bad.yaml:4: entities[0].optional: `optional` applies to customer blocks only"]


def test_two_customer_blocks(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: customer
            fields: {email: email}
          - entity: customer
            fields: {phone: phone}
        """,
    )
    assert found == [
        "mappings/bad.yaml:5: entities[1].entity: only one customer block per mapping "
        "(the first is entities[0]): a raw record is about one person"
    ]


def test_options_that_do_not_fit_the_type(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: product
            fields:
              sku: sku
              price: {path: price, type: decimal, format: "%d.%m.%Y", tz: Europe/Oslo}
              brand: {path: acc, true_values: [X]}
        """,
    )
    assert found == [
        "mappings/bad.yaml:6: entities[0].fields.price.format: `format` applies to date and datetime fields only",
        "mappings/bad.yaml:6: entities[0].fields.price.tz: `tz` applies to date and datetime fields only",
        "mappings/bad.yaml:7: entities[0].fields.brand.true_values: `true_values` applies to bool fields only",
    ]


def test_unknown_time_zone_and_bad_format(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: store
            fields:
              external_id: id
              opened_at: {path: opened, type: date, tz: Oslo}
              name: {path: opened, type: date, format: "%Q"}
        """,
    )
    assert found == [
        "mappings/bad.yaml:6: entities[0].fields.opened_at.tz: "
        "unknown time zone 'Oslo' (use an IANA name such as 'Europe/Oslo')",
        "mappings/bad.yaml:7: entities[0].fields.name.format: format '%Q': 'Q' is a bad directive in format '%Q'",
    ]


def test_default_and_constant_must_fit_the_type(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: order_line
            each: lines
            fields:
              order_external_id: $.id
              line_no: {path: $index, type: int, default: first}
              quantity: {value: lots, type: decimal}
        """,
    )
    assert found == [
        "mappings/bad.yaml:7: entities[0].fields.line_no.default: 'first' is not a number",
        "mappings/bad.yaml:8: entities[0].fields.quantity.value: 'lots' is not a number",
    ]


def test_yaml_booleans_in_true_values_get_a_hint(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: product
            fields:
              sku: sku
              is_accessory: {path: acc, type: bool, true_values: [yes]}
        """,
    )
    assert len(found) == 1
    assert found[0].startswith("mappings/bad.yaml:6: entities[0].fields.is_accessory.true_values: ")
    assert "quote it" in found[0]


def test_several_mistakes_are_reported_at_once_in_line_order(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        key: "{id"
        entities:
          - entity: customr
            fields: {email: email}
          - entity: order
            whn: x
            fields:
              external_id: {path: id, transforms: [phonify]}
              placed_at: {path: "a..b", type: datetime}
              colour: c
        """,
    )
    assert [line.split(": ", 2)[:2] for line in found] == [
        ["mappings/bad.yaml:2", "key"],
        ["mappings/bad.yaml:4", "entities[0].entity"],
        ["mappings/bad.yaml:7", "entities[1].whn"],
        ["mappings/bad.yaml:9", "entities[1].fields.external_id.transforms[0]"],
        ["mappings/bad.yaml:10", "entities[1].fields.placed_at.path"],
        ["mappings/bad.yaml:11", "entities[1].fields.colour"],
    ]


def test_fields_of_a_block_with_an_unknown_key_are_still_checked(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: order_line
            eachh: lines
            each: lines
            fields:
              order_external_id: $.id
              line_no: {path: $index, type: int}
              quantity: {path: qty, type: number}
        """,
    )
    assert [line.split(": ", 2)[:2] for line in found] == [
        ["mappings/bad.yaml:4", "entities[0].eachh"],
        ["mappings/bad.yaml:9", "entities[0].fields.quantity.type"],
    ]


def test_yaml_syntax_error_is_a_mapping_error(tmp_path: Path) -> None:
    found = issues(tmp_path, "entities: [\n")
    assert len(found) == 1
    assert found[0].startswith("mappings/bad.yaml:")
    assert "invalid YAML" in found[0]


def test_missing_file_is_a_mapping_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="file not found"):
        load_mapping(tmp_path / "nope.yaml", TRANSFORMS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "mappings/bad.yaml:1: a mapping file must be a YAML mapping with an `entities:` list"),
        ("entities: []\n", "mappings/bad.yaml:1: entities: add at least one entity block"),
        ("description: x\n", "mappings/bad.yaml:1: entities: required key is missing"),
        (
            "entities:\n  - entity: store\n    fields: {}\n",
            "mappings/bad.yaml:3: entities[0].fields: add at least one field",
        ),
    ],
)
def test_file_without_entities(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in issues(tmp_path, text)


def test_unknown_compile_time_zone(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: store
            fields: {external_id: id}
        """,
        timezone="Mars/Olympus",
    )
    assert found == [
        "mappings/bad.yaml: timezone: unknown time zone 'Mars/Olympus' (use an IANA name such as 'Europe/Oslo')"
    ]


def test_a_field_declared_with_another_type_than_the_model_stores_is_an_error(tmp_path: Path) -> None:
    found = issues(
        tmp_path,
        """
        entities:
          - entity: order
            fields:
              external_id: id
              placed_at: {path: created, type: str}
        """,
    )
    assert found == ["mappings/bad.yaml:6: entities[0].fields.placed_at.type: order.placed_at holds datetime, not str"]
