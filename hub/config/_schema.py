"""JSON Schema of hub.yaml for editors: the core blocks plus each installed connector type's settings."""

from __future__ import annotations

from typing import Any

import pluggy
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from hub.config._hub import HubConfig
from hub.config._models import CONNECTOR_NAME, ConnectorConfig
from hub.plugins import connector_types

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def config_json_schema(pm: pluggy.PluginManager) -> dict[str, Any]:
    """The schema of the whole file (draft 2020-12).

    A connector's ``settings`` are checked by its type through ``allOf`` of
    ``if: {plugin: {const: X}} then: {settings: <X.Settings schema>}``, so editors complete and check them.
    Secrets appear as write-only strings.
    """
    types = connector_types(pm)
    settings = {name: cls.Settings for name, cls in sorted(types.items())}
    models: list[type[BaseModel]] = [HubConfig, ConnectorConfig, *dict.fromkeys(settings.values())]
    entries: list[tuple[type[BaseModel], JsonSchemaMode]] = [(model, "validation") for model in models]
    refs, schema = models_json_schema(entries, ref_template="#/$defs/{model}")
    defs: dict[str, Any] = schema["$defs"]

    connector = defs[_def_name(refs[(ConnectorConfig, "validation")])]
    if types:
        connector["properties"]["plugin"]["enum"] = sorted(types)
        connector["allOf"] = [
            {
                "if": {"properties": {"plugin": {"const": name}}, "required": ["plugin"]},
                "then": {"properties": {"settings": refs[(model, "validation")]}},
            }
            for name, model in settings.items()
        ]

    root = defs.pop(_def_name(refs[(HubConfig, "validation")]))
    root["properties"]["connectors"]["propertyNames"] = {"pattern": CONNECTOR_NAME.pattern}
    root.update(title="hub.yaml", description="hub's configuration; every key is described in docs/configuration.md")
    return {"$schema": DRAFT, **root, "$defs": defs}


def _def_name(ref: dict[str, Any]) -> str:
    return str(ref["$ref"]).removeprefix("#/$defs/")
