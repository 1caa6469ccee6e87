"""The JSON Schema of hub.yaml, and the starter file ``hub init`` writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pluggy
import pytest
import yaml

from hub.config import config_json_schema, load_config, starter_config
from hub.plugins import make_plugin_manager

EXAMPLE = """
database: {url: "sqlite:///var/hub.db"}
timezone: Europe/Oslo
identity: {source_priority: [pos], max_per_customer: {email: 3}}
connectors:
  pos:
    plugin: files
    mapping: mappings/orders.yaml
    settings: {paths: ["data/pos/*.csv"]}
    schedule: {every: 15m}
  webshop:
    plugin: shop
    settings: {base_url: "https://shop.example", api_key: "${SHOP_API_KEY}"}
"""


@pytest.fixture
def schema(pm: pluggy.PluginManager) -> dict[str, Any]:
    return config_json_schema(pm)


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].removeprefix("#/$defs/")]
    return node


def _settings_schema(schema: dict[str, Any], plugin: str) -> dict[str, Any]:
    connector = _resolve(schema, schema["properties"]["connectors"]["additionalProperties"])
    for rule in connector["allOf"]:
        if rule["if"]["properties"]["plugin"]["const"] == plugin:
            return _resolve(schema, rule["then"]["properties"]["settings"])
    raise AssertionError(f"no rule for {plugin}")


def _unknown_keys(schema: dict[str, Any], node: dict[str, Any], data: Any, path: str = "") -> list[str]:
    """Keys of ``data`` that a closed object schema does not declare (a structural check, no jsonschema)."""
    node = _resolve(schema, node)
    if not isinstance(data, dict) or node.get("type") != "object":
        return []
    found = []
    for key, value in data.items():
        properties = node.get("properties", {})
        if key in properties:
            found += _unknown_keys(schema, properties[key], value, f"{path}.{key}")
        elif isinstance(node.get("additionalProperties"), dict):
            found += _unknown_keys(schema, node["additionalProperties"], value, f"{path}.{key}")
        elif node.get("additionalProperties") is False:
            found.append(f"{path}.{key}")
    return found


def test_schema_is_draft_2020_12_json(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert json.loads(json.dumps(schema)) == schema


def test_top_level_is_closed_and_lists_every_block(schema: dict[str, Any]) -> None:
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {
        "database",
        "project_dir",
        "timezone",
        "batch_size",
        "plugins",
        "identity",
        "connectors",
        "attributes",
        "contact_pressure",
        "segments",
        "triggers",
        "recommend",
        "daemon",
    }


def test_connector_plugin_is_one_of_the_installed_types(schema: dict[str, Any]) -> None:
    connector = _resolve(schema, schema["properties"]["connectors"]["additionalProperties"])
    assert connector["properties"]["plugin"]["enum"] == ["files", "shop"]
    assert schema["properties"]["connectors"]["propertyNames"] == {"pattern": "^[a-z][a-z0-9_]*$"}


def test_settings_are_constrained_per_plugin(schema: dict[str, Any]) -> None:
    connector = _resolve(schema, schema["properties"]["connectors"]["additionalProperties"])
    assert [rule["if"] for rule in connector["allOf"]] == [
        {"properties": {"plugin": {"const": "files"}}, "required": ["plugin"]},
        {"properties": {"plugin": {"const": "shop"}}, "required": ["plugin"]},
    ]
    shop = _settings_schema(schema, "shop")
    assert set(shop["properties"]) == {"base_url", "api_key", "paths"}
    assert shop["additionalProperties"] is False
    assert set(shop["required"]) == {"base_url", "api_key"}


def test_secrets_are_write_only_strings(schema: dict[str, Any]) -> None:
    api_key = _settings_schema(schema, "shop")["properties"]["api_key"]
    assert (api_key["type"], api_key["writeOnly"]) == ("string", True)


def test_loader_owned_fields_are_not_in_the_schema(schema: dict[str, Any]) -> None:
    connector = _resolve(schema, schema["properties"]["connectors"]["additionalProperties"])
    assert "name" not in connector["properties"]
    assert "source_file" not in schema["properties"]


def test_example_uses_only_declared_keys(schema: dict[str, Any]) -> None:
    data = yaml.safe_load(EXAMPLE)
    assert _unknown_keys(schema, schema, data) == []
    for name, entry in data["connectors"].items():
        assert _unknown_keys(schema, _settings_schema(schema, entry["plugin"]), entry["settings"]) == [], name


def test_structural_check_catches_an_unknown_key(schema: dict[str, Any]) -> None:
    data = yaml.safe_load(EXAMPLE)
    data["connectors"]["pos"]["shedule"] = {}
    assert _unknown_keys(schema, schema, data) == [".connectors.pos.shedule"]


def test_schema_without_connector_types_still_describes_the_core() -> None:
    schema = config_json_schema(make_plugin_manager(entrypoints=False))
    connector = _resolve(schema, schema["properties"]["connectors"]["additionalProperties"])
    assert "allOf" not in connector and "enum" not in connector["properties"]["plugin"]


def test_starter_config_loads(write_config: Callable[..., Path], pm: pluggy.PluginManager, project: Path) -> None:
    (project / "mappings" / "example.yaml").write_text("customer: {}\n", encoding="utf-8")
    config = load_config(write_config(starter_config()), pm, environ={})
    example = config.connectors["example"]
    assert (example.plugin, example.mapping) == ("files", project / "mappings" / "example.yaml")
    assert example.settings.paths == ["data/*.csv"]  # type: ignore[attr-defined]
    assert config.database_url() == f"sqlite:///{project}/var/hub.db"


def test_starter_config_loads_with_the_real_files_plugin(write_config: Callable[..., Path], project: Path) -> None:
    files_plugin = pytest.importorskip("hub_plugins.files")
    (project / "mappings" / "example.yaml").write_text("customer: {}\n", encoding="utf-8")
    pm = make_plugin_manager(entrypoints=False, plugins=[files_plugin])
    assert list(load_config(write_config(starter_config()), pm, environ={}).connectors) == ["example"]
