"""The example in docs/configuration.md loads, so the reference never shows an invalid file."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pluggy
from pydantic import HttpUrl, SecretStr

from hub.config import load_config
from hub.connectors import ConnectorSettings, Source
from hub.plugins import hookimpl

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _example() -> str:
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(r"<!-- example:start -->\n```yaml\n(.*?)```\n<!-- example:end -->", text, re.S)
    assert found, "docs/configuration.md lost its example markers"
    return found.group(1)


def test_documented_example_loads(write_config: Callable[..., Path], project: Path, pm: pluggy.PluginManager) -> None:
    class VoyadoSettings(ConnectorSettings):
        base_url: HttpUrl
        api_key: SecretStr

    class Voyado(Source):
        type = "voyado"
        Settings = VoyadoSettings

    class Plugin:
        @hookimpl
        def hub_connector_types(self) -> list[type[Source]]:
            return [Voyado]

    pm.register(Plugin())
    for name in ("pos_receipts", "erp_customers", "webshop_orders"):
        (project / "mappings" / f"{name}.yaml").write_text("customer: {}\n", encoding="utf-8")
    config = load_config(write_config(_example()), pm, environ={"VOYADO_API_KEY": "k-123"})
    assert list(config.connectors) == ["pos", "erp", "webshop", "voyado"]
