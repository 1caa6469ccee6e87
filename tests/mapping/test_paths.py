"""Path and key-template syntax, parsed once into getters."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.mapping.paths import parse_path, parse_template

RAW = {
    "id": 7,
    "billing": {"email": "a@b.no", "lines": [{"sku": "A"}, {"sku": None}, {"sku": "C"}]},
    "groups": [{"items": [1, 2]}, {"items": [3]}, {"other": 0}],
    "a.b": "dotted",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id", 7),
        ("billing.email", "a@b.no"),
        ("billing.lines[0].sku", "A"),
        ("billing.lines[-1].sku", "C"),
        ("billing.lines[3].sku", None),
        ("billing.lines[].sku", ["A", "C"]),
        ("groups[].items[]", [1, 2, 3]),
        ("groups[].items", [[1, 2], [3]]),
        ('["a.b"]', "dotted"),
        ("['a.b']", "dotted"),
        ("$.billing.email", "a@b.no"),
        ("id.x", None),
        ("missing.deeper[0]", None),
        ("billing[0]", None),
    ],
)
def test_getter(text: str, expected: Any) -> None:
    assert parse_path(text).getter()(RAW) == expected


def test_root_and_index_paths() -> None:
    assert parse_path("$.id").root
    assert parse_path("$index").is_index
    assert not parse_path("id").root


def test_first_key_is_the_top_level_raw_field() -> None:
    assert parse_path("$.billing.lines[].sku").first_key == "billing"
    assert parse_path('["a.b"].c').first_key == "a.b"
    assert parse_path("$index").first_key is None


@pytest.mark.parametrize("text", ["", " id", "a..b", ".a", "a.", "a[", "a[1", "a]", "a[x]", "[0]", "$x", "$.", 'a["b]'])
def test_invalid_paths(text: str) -> None:
    with pytest.raises(ValueError, match="path"):
        parse_path(text)


@given(st.text(max_size=30))
def test_parse_path_only_ever_raises_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_path(text)


@given(st.text(min_size=1, max_size=20).filter(lambda key: '"' not in key))
def test_any_key_can_be_quoted(key: str) -> None:
    assert parse_path(f'["{key}"]').getter()({key: "value"}) == "value"


def test_template_renders_literals_and_values() -> None:
    render = parse_template("{billing.email}#{id}:{{x}}").renderer()
    assert render(RAW) == "a@b.no#7:{x}"


def test_template_renders_missing_values_empty() -> None:
    assert parse_template("{id}:{nope}").renderer()(RAW) == "7:"
    assert parse_template("{nope}").renderer()(RAW) is None
    assert parse_template("{nope}-{none}").renderer()({"none": ""}) is None


@given(st.text(max_size=30))
def test_parse_template_only_ever_raises_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_template(text)
