"""Helpers for the mapping tests: compile YAML text, or one field of a throwaway ``product`` block."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from hub._yaml import loads_located
from hub.mapping import CompiledMapping, compile_mapping
from hub_plugins.standard.transforms import TRANSFORMS

CompileText = Callable[..., CompiledMapping]
MapField = Callable[..., Any]


@pytest.fixture
def compile_text() -> CompileText:
    """Compile mapping YAML given as (indented) text, with the built-in transforms."""

    def compile_(text: str, *, timezone: str = "UTC") -> CompiledMapping:
        located = loads_located(textwrap.dedent(text), file="mappings/test.yaml")
        return compile_mapping(located, TRANSFORMS, timezone=timezone)

    return compile_


@pytest.fixture
def map_field() -> MapField:
    """Map ``raw`` through a mapping whose only interesting field is ``product.name`` with spec ``field``."""

    def map_(field: Any, raw: dict[str, Any], *, timezone: str = "UTC") -> Any:
        spec = {"entities": [{"entity": "product", "fields": {"sku": {"value": "S1"}, "name": field}}]}
        located = loads_located(yaml.safe_dump(spec), file="mappings/field.yaml")
        mapping = compile_mapping(located, TRANSFORMS, timezone=timezone)
        return mapping.map(raw).rows["product"][0]["name"]

    return map_
