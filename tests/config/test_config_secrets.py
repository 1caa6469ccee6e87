"""A resolved secret never shows in an error, a repr or a dump."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest
from pydantic import SecretStr, field_validator

from hub.config import HubConfig, load_config
from hub.connectors import ConnectorSettings, Source
from hub.errors import ConfigError
from hub.plugins import hookimpl, make_plugin_manager

SECRET = "sk_live_9f8e7d6c5b4a"

CONFIG = """
database:
  url: postgresql+psycopg://hub:${PGPASSWORD}@db.example/hub
connectors:
  webshop:
    plugin: shop
    settings:
      base_url: https://shop.example
      api_key: ${SHOP_API_KEY}
"""


@pytest.fixture
def config(write_config: Callable[..., Path], pm: pluggy.PluginManager) -> HubConfig:
    return load_config(write_config(CONFIG), pm, environ={"SHOP_API_KEY": SECRET, "PGPASSWORD": SECRET})


def test_repr_and_str_mask_secret_settings(config: HubConfig) -> None:
    connector = config.connectors["webshop"]
    for text in (repr(config), str(config), repr(connector), str(connector)):
        assert SECRET not in text
    assert "SecretStr('**********')" in repr(connector)


def test_dumps_mask_secret_settings(config: HubConfig) -> None:
    assert SECRET not in str(config.model_dump())
    dumped = config.model_dump_json()
    assert SECRET not in dumped
    assert '"api_key":"**********"' in dumped


def test_database_password_is_masked_in_repr_and_dump_but_kept_for_use(config: HubConfig) -> None:
    assert "hub:***@db.example" in repr(config.database)
    assert config.database.model_dump()["url"] == "postgresql+psycopg://hub:***@db.example/hub"
    assert config.database_url() == f"postgresql+psycopg://hub:{SECRET}@db.example/hub"


def test_secret_value_is_never_echoed_by_validation(
    write_config: Callable[..., Path], pm: pluggy.PluginManager
) -> None:
    path = write_config("""
        connectors:
          webshop:
            plugin: shop
            settings: {base_url: "${SHOP_API_KEY}", api_key: "${SHOP_API_KEY}", paths: "${SHOP_API_KEY}"}
        """)
    with pytest.raises(ConfigError) as info:
        load_config(path, pm, environ={"SHOP_API_KEY": SECRET})
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)
    assert [issue.key for issue in info.value.issues] == [
        "connectors.webshop.settings.base_url",
        "connectors.webshop.settings.paths",
    ]


def test_secret_quoted_by_a_plugin_validator_is_masked(write_config: Callable[..., Path]) -> None:
    class TalkativeSettings(ConnectorSettings):
        token: SecretStr

        @field_validator("token", mode="before")
        @classmethod
        def _check(cls, value: str) -> str:
            raise ValueError(f"token {value!r} has the wrong prefix")

    class Talkative(Source):
        type = "talkative"
        Settings = TalkativeSettings

    class Plugin:
        @hookimpl
        def hub_connector_types(self) -> list[type[Source]]:
            return [Talkative]

    pm = make_plugin_manager(entrypoints=False, plugins=[Plugin()])
    path = write_config("connectors: {t: {plugin: talkative, settings: {token: '${TOKEN}'}}}")
    with pytest.raises(ConfigError) as info:
        load_config(path, pm, environ={"TOKEN": SECRET})
    assert str(info.value) == "hub.yaml:1: connectors.t.settings.token: token '***' has the wrong prefix"


def test_secret_from_a_resolver_is_masked_too(write_config: Callable[..., Path]) -> None:
    class Vault:
        @hookimpl
        def hub_resolve_secret(self, scheme: str, reference: str) -> str | None:
            return SECRET if scheme == "vault" else None

    pm = make_plugin_manager(entrypoints=False, plugins=[Vault()])
    with pytest.raises(ConfigError) as info:
        load_config(write_config("timezone: '${vault:tz}'\n"), pm)
    assert SECRET not in str(info.value)
