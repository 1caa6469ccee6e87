"""Every problem in hub.yaml is reported as ``file:line: key: message``, all of them at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pluggy
import pytest

from hub.config import load_config
from hub.connectors import ConnectorSettings, Source
from hub.errors import ConfigError, PluginError
from hub.plugins import hookimpl, make_plugin_manager

Errors = Callable[..., list[str]]


def test_unknown_top_level_key(config_errors: Errors) -> None:
    assert config_errors("timezone: UTC\nbatchsize: 10\n") == ["hub.yaml:2: batchsize: unknown key"]


def test_file_that_is_not_a_mapping(config_errors: Errors) -> None:
    assert config_errors("- a\n- b\n") == ["hub.yaml:1: expected a mapping of keys such as database: and connectors:"]


def test_yaml_syntax_error_names_the_line(config_errors: Errors) -> None:
    assert config_errors("timezone: UTC\nconnectors: [\n") == [
        "hub.yaml:3: invalid YAML: while parsing a flow node expected the node content, but found '<stream end>'"
    ]


def test_missing_file(project: Path, pm: pluggy.PluginManager) -> None:
    with pytest.raises(ConfigError, match=r"^config/hub.yaml: file not found$"):
        load_config(None, pm)


def test_invalid_timezone(config_errors: Errors) -> None:
    assert config_errors("timezone: Europe/Olso\n") == [
        "hub.yaml:1: timezone: unknown time zone (use an IANA name such as Europe/Oslo)"
    ]


def test_batch_size_must_be_positive(config_errors: Errors) -> None:
    assert config_errors("batch_size: 0\n") == ["hub.yaml:1: batch_size: Input should be greater than 0"]


def test_invalid_database_url(config_errors: Errors) -> None:
    assert config_errors("database:\n  url: 'not a url'\n") == [
        "hub.yaml:2: database.url: not a valid database URL (e.g. sqlite:///var/hub.db)"
    ]


def test_project_dir_must_exist(config_errors: Errors, project: Path) -> None:
    assert config_errors("project_dir: nowhere\n") == [
        f"hub.yaml:1: project_dir: directory not found: {project / 'nowhere'}"
    ]


def test_unknown_connector_type_lists_the_installed_ones(config_errors: Errors) -> None:
    assert config_errors("""
        connectors:
          web:
            plugin: foo
        """) == ["hub.yaml:3: connectors.web.plugin: unknown connector type 'foo' (installed: files, shop)"]


def test_connector_without_plugin(config_errors: Errors) -> None:
    assert config_errors("""
        connectors:
          web:
            enabled: true
        """) == ["hub.yaml:2: connectors.web.plugin: required key is missing"]


def test_unknown_key_in_a_connector(config_errors: Errors) -> None:
    assert config_errors("""
        connectors:
          pos:
            plugin: files
            settings: {paths: []}
            shedule: {every: 1h}
        """) == ["hub.yaml:5: connectors.pos.shedule: unknown key"]


def test_name_is_not_a_key_of_a_connector(config_errors: Errors) -> None:
    assert config_errors("""
        connectors:
          pos:
            name: other
            plugin: files
            settings: {paths: []}
        """) == ["hub.yaml:3: connectors.pos.name: unknown key"]


def test_source_file_is_not_a_key_of_the_file(config_errors: Errors) -> None:
    assert config_errors("source_file: x.yaml\n") == ["hub.yaml:1: source_file: unknown key"]


def test_connector_name_must_be_an_identifier(config_errors: Errors) -> None:
    assert config_errors("""
        connectors:
          Web-Shop:
            plugin: files
            settings: {paths: []}
        """) == [
        "hub.yaml:2: connectors.Web-Shop: connector names are lower-case letters, digits and _, starting with a letter"
    ]


def test_settings_error_is_located_under_settings(config_errors: Errors) -> None:
    assert config_errors("""
        connectors:
          webshop:
            plugin: shop
            settings:
              api_key: k
              base_url: "shop.example"
        """) == ["hub.yaml:6: connectors.webshop.settings.base_url: invalid URL"]


def test_unknown_setting(config_errors: Errors) -> None:
    assert config_errors("""
        connectors:
          pos:
            plugin: files
            settings:
              paths: []
              path: x.csv
        """) == ["hub.yaml:6: connectors.pos.settings.path: unknown key"]


def test_missing_settings_are_reported_at_the_connector(config_errors: Errors) -> None:
    assert config_errors("""
        connectors:
          pos:
            plugin: files
        """) == ["hub.yaml:2: connectors.pos.settings.paths: required key is missing"]


def test_setting_of_the_wrong_type_names_the_item(config_errors: Errors) -> None:
    assert config_errors("""
        connectors:
          pos:
            plugin: files
            settings:
              paths:
                - a.csv
                - {b: 1}
        """) == ["hub.yaml:7: connectors.pos.settings.paths[1]: Input should be a valid string"]


def test_bad_cron(config_errors: Errors) -> None:
    assert config_errors("""
        connectors:
          pos:
            plugin: files
            settings: {paths: []}
            schedule: {cron: "61 * * * *"}
        """) == [
        "hub.yaml:5: connectors.pos.schedule.cron: "
        "invalid cron expression (five fields: minute hour day-of-month month day-of-week)"
    ]


def test_cron_needs_five_fields(config_errors: Errors) -> None:
    assert config_errors("""
        connectors:
          pos:
            plugin: files
            settings: {paths: []}
            schedule:
              cron: "0 0 2 * * *"
        """)[0].startswith("hub.yaml:6: connectors.pos.schedule.cron: invalid cron expression")


def test_bad_every(config_errors: Errors) -> None:
    assert config_errors("""
        connectors:
          pos:
            plugin: files
            settings: {paths: []}
            schedule: {every: 15 minutes}
        """) == [
        "hub.yaml:5: connectors.pos.schedule.every: use a number and a unit: 30s, 15m, 2h, 1d (or combined, e.g. 1h30m)"
    ]


def test_every_of_zero(config_errors: Errors) -> None:
    assert config_errors("""
        connectors:
          pos: {plugin: files, settings: {paths: []}, schedule: {every: 0m}}
        """) == ["hub.yaml:2: connectors.pos.schedule.every: must be longer than zero"]


def test_schedule_needs_exactly_one_of_every_and_cron(config_errors: Errors) -> None:
    assert config_errors("""
        connectors:
          pos:
            plugin: files
            settings: {paths: []}
            schedule: {every: 1h, cron: "0 * * * *"}
        """) == ["hub.yaml:5: connectors.pos.schedule: give either every or cron"]


def test_mapping_file_must_exist(config_errors: Errors, project: Path) -> None:
    assert config_errors("""
        connectors:
          pos:
            plugin: files
            mapping: mappings/missing.yaml
            settings: {paths: []}
        """) == [f"hub.yaml:4: connectors.pos.mapping: file not found: {project / 'mappings/missing.yaml'}"]


def test_mapping_per_stream_names_the_stream(config_errors: Errors, project: Path) -> None:
    assert config_errors("""
        connectors:
          pos:
            plugin: files
            settings: {paths: []}
            mapping:
              orders: mappings/orders.yaml
              customers: mappings/customers.yaml
        """) == [f"hub.yaml:7: connectors.pos.mapping.customers: file not found: {project / 'mappings/customers.yaml'}"]


def test_mapping_of_the_wrong_shape(config_errors: Errors) -> None:
    assert config_errors("""
        connectors:
          pos: {plugin: files, settings: {paths: []}, mapping: [a.yaml]}
        """) == [
        "hub.yaml:2: connectors.pos.mapping: give one mapping file, or a mapping of stream name to mapping file"
    ]


def test_source_priority_must_name_connectors(config_errors: Errors) -> None:
    assert config_errors("""
        identity:
          source_priority:
            - pos
            - erp
        connectors:
          pos: {plugin: files, settings: {paths: []}}
        """) == ["hub.yaml:4: identity.source_priority[1]: unknown connector 'erp' (configured: pos)"]


def test_source_priority_lists_each_connector_once(config_errors: Errors) -> None:
    assert config_errors("""
        identity:
          source_priority: [pos, pos]
        connectors:
          pos: {plugin: files, settings: {paths: []}}
        """) == ["hub.yaml:2: identity.source_priority: listed more than once: pos"]


def test_unknown_identity_kind(config_errors: Errors) -> None:
    assert config_errors("""
        identity:
          max_per_customer: {email: 2, fax: 1}
        """) == [
        "hub.yaml:2: identity.max_per_customer.fax: unknown identity kind (use external_id, member_no, email, phone)"
    ]


def test_missing_variable_names_key_and_variable(config_errors: Errors) -> None:
    assert config_errors("""
        connectors:
          webshop:
            plugin: shop
            settings:
              base_url: https://shop.example
              api_key: ${SHOP_API_KEY}
        """) == ["hub.yaml:6: connectors.webshop.settings.api_key: environment variable SHOP_API_KEY is not set"]


def test_missing_variable_is_not_also_reported_as_invalid(config_errors: Errors) -> None:
    assert config_errors("""
        connectors:
          webshop:
            plugin: shop
            settings: {base_url: "${SHOP_URL}", api_key: k}
        """) == ["hub.yaml:4: connectors.webshop.settings.base_url: environment variable SHOP_URL is not set"]


def test_scheme_nobody_resolves(config_errors: Errors) -> None:
    assert config_errors("""
        database:
          url: ${vault:db/url}
        """) == ["hub.yaml:2: database.url: no plugin resolves scheme 'vault'"]


def test_failing_resolver_is_reported_not_raised(write_config: Callable[..., Path]) -> None:
    class Vault:
        @hookimpl
        def hub_resolve_secret(self, scheme: str, reference: str) -> str | None:
            raise ConnectionError("vault is sealed")

    pm = make_plugin_manager(entrypoints=False, plugins=[Vault()])
    with pytest.raises(ConfigError) as info:
        load_config(write_config("database: {url: '${vault:db/url}'}"), pm)
    assert str(info.value) == (
        "hub.yaml:1: database.url: resolving scheme 'vault' failed: ConnectionError: vault is sealed"
    )


def test_every_problem_is_reported_at_once_in_file_order(config_errors: Errors) -> None:
    assert config_errors("""
        timezone: Mars/Olympus
        identity:
          source_priority: [pos, erp]
        connectors:
          pos:
            plugin: files
            settings: {paths: [], glob: x}
            schedule: {cron: "every day"}
          webshop:
            plugin: shopify
            settings: {api_key: "${SHOP_API_KEY}"}
          web:
            plugin: shop
            settings: {base_url: "ftp//x", api_key: k}
        extra: 1
        """) == [
        "hub.yaml:1: timezone: unknown time zone (use an IANA name such as Europe/Oslo)",
        "hub.yaml:3: identity.source_priority[1]: unknown connector 'erp' (configured: pos, web, webshop)",
        "hub.yaml:7: connectors.pos.settings.glob: unknown key",
        "hub.yaml:8: connectors.pos.schedule.cron: "
        "invalid cron expression (five fields: minute hour day-of-month month day-of-week)",
        "hub.yaml:10: connectors.webshop.plugin: unknown connector type 'shopify' (installed: files, shop)",
        "hub.yaml:11: connectors.webshop.settings.api_key: environment variable SHOP_API_KEY is not set",
        "hub.yaml:14: connectors.web.settings.base_url: invalid URL",
        "hub.yaml:15: extra: unknown key",
    ]


def test_file_is_named_as_given_relative_to_the_working_directory(
    write_config: Callable[..., Path], pm: pluggy.PluginManager, project: Path
) -> None:
    path = write_config("batch_size: -1\n", name="config/hub.yaml")
    with pytest.raises(ConfigError, match=r"^config/hub.yaml:1: batch_size: "):
        load_config(project / path, pm)


def test_duplicate_connector_types_are_a_plugin_error(
    write_config: Callable[..., Path], pm: pluggy.PluginManager
) -> None:
    class Other(Source):
        type = "files"
        Settings = ConnectorSettings

    class Again:
        @hookimpl
        def hub_connector_types(self) -> list[type[Source]]:
            return [Other]

    pm.register(Again(), name="again")
    with pytest.raises(PluginError, match="'files' is registered by both"):
        load_config(write_config(""), pm)
