"""The built-in transforms, exercised the way a mapping uses them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hub.errors import RecordError

MapField = Callable[..., Any]  # the map_field fixture


def transformed(map_field: MapField, transforms: list[Any], value: Any, **field: Any) -> Any:
    return map_field({"path": "v", "transforms": transforms, **field}, {"v": value})


@pytest.mark.parametrize(
    ("transform", "value", "expected"),
    [
        ("strip", "  Kari  ", "Kari"),
        ("lower", "KARI", "kari"),
        ("upper", "kari", "KARI"),
        ("title", "kari NORDMANN", "Kari Nordmann"),
        ("digits", "NO-0150 Oslo", "0150"),
        ("strip", 42, "42"),
    ],
)
def test_text_transforms(map_field: MapField, transform: str, value: Any, expected: str) -> None:
    assert transformed(map_field, [transform], value) == expected


def test_text_transform_refuses_a_list(map_field: MapField) -> None:
    with pytest.raises(RecordError, match=r"product.name \(v\): lower: expected text, got list"):
        transformed(map_field, ["lower"], ["A"])


def test_digits_of_text_without_digits_is_missing(map_field: MapField) -> None:
    assert transformed(map_field, ["digits"], "n/a") is None


def test_email_normalises(map_field: MapField) -> None:
    assert transformed(map_field, ["email"], "  Kari.Nordmann@Example.COM ") == "kari.nordmann@example.com"


@pytest.mark.parametrize("value", ["kari", "kari@", "kari@@example.com", "kari@example", "kari nordmann@example.com"])
def test_email_rejects_invalid_addresses(map_field: MapField, value: str) -> None:
    with pytest.raises(RecordError, match=r"product.name \(v\): email: .* is not a valid e-mail address"):
        transformed(map_field, ["email"], value)


@pytest.mark.parametrize("value", ["+47 912 34 567", "0047 91234567", "912-34-567", "91234567", "4791234567"])
def test_e164_with_a_region(map_field: MapField, value: str) -> None:
    assert transformed(map_field, [{"e164": {"region": "NO"}}], value) == "+4791234567"


def test_e164_region_written_as_unquoted_no_in_yaml(compile_text: Any) -> None:
    mapping = compile_text(
        """
        entities:
          - entity: customer
            fields:
              phone: {path: phone, transforms: [{e164: {region: NO}}]}
        """
    )
    assert mapping.map({"phone": "912 34 567"}).customer == {"phone": "+4791234567"}


def test_e164_without_a_region_needs_an_international_number(map_field: MapField) -> None:
    assert transformed(map_field, ["e164"], "+46 70 123 45 67") == "+46701234567"
    with pytest.raises(RecordError, match=r"e164: '91234567' is not a phone number"):
        transformed(map_field, ["e164"], "91234567")


@pytest.mark.parametrize("value", ["+47 12345678", "123", "call me"])
def test_e164_rejects_invalid_numbers(map_field: MapField, value: str) -> None:
    with pytest.raises(RecordError, match=r"product.name \(v\): e164: .* is not a (valid )?phone number"):
        transformed(map_field, [{"e164": {"region": "NO"}}], value)


def test_map_replaces_known_values_and_passes_others(map_field: MapField) -> None:
    transforms = [{"map": {"J": "opt_in", "N": "opt_out"}}]
    assert transformed(map_field, transforms, "J") == "opt_in"
    assert transformed(map_field, transforms, "?") == "?"


def test_map_with_default_for_unmapped_values(map_field: MapField) -> None:
    transforms = [{"map": {"values": {"J": "opt_in"}, "default": "unknown"}}]
    assert transformed(map_field, transforms, "X") == "unknown"


def test_map_strict_rejects_unmapped_values(map_field: MapField) -> None:
    transforms = [{"map": {"values": {"J": "opt_in", "N": "opt_out"}, "strict": True}}]
    with pytest.raises(RecordError, match=r"map: 'X' is not one of 'J', 'N'"):
        transformed(map_field, transforms, "X")


def test_map_matches_numbers_and_booleans_by_their_text(map_field: MapField) -> None:
    transforms = [{"map": {"1": "opt_in", "0": "opt_out", "True": "yes"}}]
    assert transformed(map_field, transforms, 1) == "opt_in"
    assert transformed(map_field, transforms, True) == "yes"


def test_map_to_null_makes_the_value_missing(map_field: MapField) -> None:
    assert transformed(map_field, [{"map": {"-": None}}], "-", default="none") == "none"


def test_default_transform_fills_missing_mid_chain(map_field: MapField) -> None:
    assert transformed(map_field, [{"default": "anon"}, "upper"], "  ") == "ANON"


def test_concat_joins_present_items(map_field: MapField) -> None:
    field = {"paths": ["a", "b", "c"], "transforms": [{"concat": {"sep": ", "}}]}
    assert map_field(field, {"a": "Storgata 1", "b": None, "c": " 0150 "}) == "Storgata 1, 0150"


def test_concat_of_nothing_is_missing(map_field: MapField) -> None:
    field = {"paths": ["a", "b"], "transforms": ["concat"], "default": "-"}
    assert map_field(field, {"a": "", "b": None}) == "-"


def test_split_gives_a_part(map_field: MapField) -> None:
    assert transformed(map_field, [{"split": {"sep": ",", "index": 1}}], "a, b ,c") == "b"
    assert transformed(map_field, [{"split": {"index": -1}}], "Kari  Nordmann") == "Nordmann"
    assert transformed(map_field, [{"split": {"sep": ",", "index": 5}}], "a,b") is None


def test_split_without_index_gives_the_parts(map_field: MapField) -> None:
    assert map_field({"path": "v", "type": "json", "transforms": [{"split": ","}]}, {"v": "a,,b "}) == [
        "a",
        "b",
    ]


def test_replace(map_field: MapField) -> None:
    assert transformed(map_field, [{"replace": {"old": "-", "new": " "}}], "Kari-Nordmann") == "Kari Nordmann"
    assert transformed(map_field, [{"replace": {"old": " "}}], "0150 Oslo") == "0150Oslo"


def test_prefix_and_suffix(map_field: MapField) -> None:
    assert transformed(map_field, [{"prefix": "POS-"}, {"suffix": "-1"}], 77) == "POS-77-1"
    assert transformed(map_field, [{"prefix": "POS-"}], None) is None


def test_truncate(map_field: MapField) -> None:
    assert transformed(map_field, [{"truncate": 4}], "Nordmann") == "Nord"
    assert transformed(map_field, [{"truncate": {"length": 20}}], "Nordmann") == "Nordmann"


def test_nullif_treats_listed_values_as_missing(map_field: MapField) -> None:
    transforms = [{"nullif": ["-", "0", "n/a"]}]
    assert transformed(map_field, transforms, " n/a ") is None
    assert transformed(map_field, transforms, 0) is None
    assert transformed(map_field, transforms, "10") == "10"


def test_transforms_apply_in_order(map_field: MapField) -> None:
    assert transformed(map_field, ["strip", {"truncate": 3}, "upper"], "  kari ") == "KAR"
    assert transformed(map_field, ["upper", {"truncate": 3}, "strip"], "  kari ") == "K"


def test_transforms_run_before_type_coercion(map_field: MapField) -> None:
    field = {"path": "v", "type": "decimal", "transforms": [{"replace": {"old": "kr"}}]}
    assert str(map_field(field, {"v": "12,50 kr"})) == "12.50"


def test_every_built_in_transform_passes_none_through_or_handles_it() -> None:
    from hub_plugins.standard.transforms import TRANSFORMS

    args: dict[str, tuple[Any, ...]] = {
        "default": ("x",),
        "map": (),
        "nullif": ("-",),
        "prefix": ("p",),
        "replace": ("a",),
        "suffix": ("s",),
        "truncate": (3,),
    }
    for name, factory in TRANSFORMS.items():
        transform = factory(values={"a": "b"}) if name == "map" else factory(*args.get(name, ()))
        assert transform(None) == ("x" if name == "default" else None), name
