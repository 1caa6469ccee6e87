"""hub.yaml loads into a typed HubConfig: values, defaults, paths and placeholders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import get_args

import pluggy
import pytest
from pydantic import ValidationError

from hub.config import (
    DEFAULT_MAX_PER_CUSTOMER,
    ConnectorConfig,
    HubConfig,
    IdentityKind,
    config_path,
    load_config,
)
from hub.connectors import ConnectorSettings
from hub.records import IDENTITY_KEYS

EXAMPLE = """
database:
  url: sqlite:///var/hub.db
project_dir: .
timezone: Europe/Oslo
batch_size: 2000
plugins:
  disable: [some_plugin]
identity:
  source_priority: [erp, pos, webshop]
  blocked_values:
    email: ["noreply@shop.example"]
    member_no: ["0"]
  max_per_customer: {member_no: 1, email: 3, phone: 3}
connectors:
  pos:
    plugin: files
    mapping: mappings/orders.yaml
    settings: {paths: ["data/pos/*.csv"]}
    schedule: {cron: "0 2 * * *"}
  erp:
    plugin: files
    mapping: {orders: mappings/orders.yaml}
    settings: {paths: ["data/erp/*.csv"]}
    enabled: false
  webshop:
    plugin: shop
    settings: {base_url: "https://shop.example", api_key: "${SHOP_API_KEY}"}
    schedule: {every: 15m}
"""


@pytest.fixture
def example(write_config: Callable[..., Path], pm: pluggy.PluginManager) -> HubConfig:
    return load_config(write_config(EXAMPLE), pm, environ={"SHOP_API_KEY": "sk_live_123456"})


def test_top_level_values_are_typed(example: HubConfig, project: Path) -> None:
    assert (example.database.url, example.database.echo) == ("sqlite:///var/hub.db", False)
    assert (example.project_dir, example.timezone, example.batch_size) == (project, "Europe/Oslo", 2000)
    assert example.plugins.disable == ["some_plugin"]
    assert example.source_file == "hub.yaml"


def test_identity_block_merges_limits_with_defaults(example: HubConfig) -> None:
    assert example.identity.source_priority == ["erp", "pos", "webshop"]
    assert example.identity.blocked_values == {"email": ["noreply@shop.example"], "member_no": ["0"]}
    assert example.identity.max_per_customer == {"external_id": 5, "member_no": 1, "email": 3, "phone": 3}


def test_connectors_keep_file_order_and_carry_their_names(example: HubConfig) -> None:
    assert list(example.connectors) == ["pos", "erp", "webshop"]
    assert [c.name for c in example.connectors.values()] == ["pos", "erp", "webshop"]
    assert [c.enabled for c in example.connectors.values()] == [True, False, True]


def test_settings_are_an_instance_of_the_connector_types_model(example: HubConfig) -> None:
    settings = example.connectors["webshop"].settings
    assert type(settings).__name__ == "ShopSettings"
    assert isinstance(settings, ConnectorSettings)
    assert str(settings.base_url) == "https://shop.example/"  # type: ignore[attr-defined]
    assert settings.api_key.get_secret_value() == "sk_live_123456"  # type: ignore[attr-defined]


def test_single_mapping_serves_every_stream(example: HubConfig, project: Path) -> None:
    pos = example.connectors["pos"]
    assert pos.mapping == project / "mappings" / "orders.yaml"
    assert pos.mapping_for("anything") == project / "mappings" / "orders.yaml"


def test_mapping_per_stream_answers_only_its_streams(example: HubConfig, project: Path) -> None:
    erp = example.connectors["erp"]
    assert erp.mapping_for("orders") == project / "mappings" / "orders.yaml"
    assert erp.mapping_for("customers") is None
    assert example.connectors["webshop"].mapping_for("orders") is None


def test_schedules_parse_cron_and_every(example: HubConfig) -> None:
    assert example.connectors["pos"].schedule is not None
    assert example.connectors["pos"].schedule.cron == "0 2 * * *"
    assert example.connectors["webshop"].schedule is not None
    assert example.connectors["webshop"].schedule.every == timedelta(minutes=15)
    assert example.connectors["erp"].schedule is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
    ],
)
def test_every_accepts_each_unit_and_combinations(
    text: str, expected: timedelta, write_config: Callable[..., Path], pm: pluggy.PluginManager
) -> None:
    path = write_config(f"""
        connectors:
          pos: {{plugin: files, settings: {{paths: []}}, schedule: {{every: {text}}}}}
        """)
    schedule = load_config(path, pm).connectors["pos"].schedule
    assert schedule is not None and schedule.every == expected


def test_empty_file_gives_the_defaults(write_config: Callable[..., Path], pm: pluggy.PluginManager) -> None:
    config = load_config(write_config(""), pm)
    assert config.database.url == "sqlite:///var/hub.db"
    assert (config.timezone, config.batch_size, config.connectors) == ("UTC", 5000, {})
    assert config.identity.max_per_customer == DEFAULT_MAX_PER_CUSTOMER


def test_empty_blocks_mean_their_defaults(write_config: Callable[..., Path], pm: pluggy.PluginManager) -> None:
    config = load_config(write_config("database:\nidentity:\nconnectors:\n"), pm)
    assert (config.database.url, config.connectors) == ("sqlite:///var/hub.db", {})
    assert config.identity.source_priority == []


def test_identity_kinds_match_the_record_contract() -> None:
    assert set(get_args(IdentityKind)) == set(IDENTITY_KEYS)


def test_sqlite_path_is_made_absolute_against_project_dir(
    write_config: Callable[..., Path], pm: pluggy.PluginManager, project: Path
) -> None:
    config = load_config(write_config("database: {url: 'sqlite:///var/hub.db'}"), pm)
    assert config.database_url() == f"sqlite:///{project}/var/hub.db"


@pytest.mark.parametrize(
    "url", ["sqlite:////srv/hub.db", "sqlite://", "sqlite:///:memory:", "postgresql+psycopg://hub:pw@db/hub"]
)
def test_other_database_urls_are_kept(url: str, write_config: Callable[..., Path], pm: pluggy.PluginManager) -> None:
    config = load_config(write_config(f"database: {{url: '{url}'}}"), pm)
    assert config.database_url() == url


def test_project_dir_argument_overrides_the_file(
    write_config: Callable[..., Path], pm: pluggy.PluginManager, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "m.yaml").write_text("{}\n", encoding="utf-8")
    path = write_config("""
        project_dir: .
        connectors:
          pos: {plugin: files, mapping: m.yaml, settings: {paths: []}}
        """)
    config = load_config(path, pm, project_dir=elsewhere)
    assert config.project_dir == elsewhere.resolve()
    assert config.connectors["pos"].mapping == elsewhere.resolve() / "m.yaml"


def test_relative_project_dir_starts_at_the_working_directory(
    write_config: Callable[..., Path], pm: pluggy.PluginManager, project: Path
) -> None:
    (project / "site" / "mappings").mkdir(parents=True)
    (project / "site" / "mappings" / "pos.yaml").write_text("{}\n", encoding="utf-8")
    path = write_config("""
        project_dir: site
        connectors:
          pos: {plugin: files, mapping: mappings/pos.yaml, settings: {paths: []}}
        """)
    config = load_config(path, pm)
    assert config.project_dir == project / "site"
    assert config.connectors["pos"].mapping == project / "site" / "mappings" / "pos.yaml"


def test_hub_config_variable_names_the_file(
    write_config: Callable[..., Path], pm: pluggy.PluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config("batch_size: 7", name="conf/other.yaml")
    monkeypatch.setenv("HUB_CONFIG", "conf/other.yaml")
    assert load_config(None, pm).batch_size == 7


def test_default_path_is_config_hub_yaml(project: Path) -> None:
    assert config_path(None) == Path("config/hub.yaml")


def test_env_placeholders_fill_values_of_any_type(write_config: Callable[..., Path], pm: pluggy.PluginManager) -> None:
    path = write_config("""
        batch_size: ${BATCH}
        timezone: ${TZ_NAME:-Europe/Oslo}
        database: {url: "sqlite:///${DB_NAME:-hub}.db", echo: "${DB_ECHO}"}
        """)
    config = load_config(path, pm, environ={"BATCH": "250", "DB_ECHO": "true", "TZ_NAME": ""})
    assert (config.batch_size, config.timezone, config.database.echo) == (250, "Europe/Oslo", True)
    assert config.database.url == "sqlite:///hub.db"


def test_escaped_placeholder_stays_literal(write_config: Callable[..., Path], pm: pluggy.PluginManager) -> None:
    path = write_config("""
        connectors:
          pos: {plugin: files, settings: {paths: ["data/$${YEAR}/*.csv", "$$HOME/x"]}}
        """)
    settings = load_config(path, pm, environ={"YEAR": "2024"}).connectors["pos"].settings
    assert settings.paths == ["data/${YEAR}/*.csv", "$$HOME/x"]  # type: ignore[attr-defined]


def test_config_is_frozen(example: HubConfig) -> None:
    with pytest.raises(ValidationError):
        example.batch_size = 1  # type: ignore[misc]


def test_connector_built_in_code_needs_no_context(project: Path) -> None:
    settings = ConnectorSettings()
    connector = ConnectorConfig(name="pos", plugin="anything", settings=settings, mapping=Path("m.yaml"))
    assert connector.settings is settings
    assert connector.mapping == project / "m.yaml"
