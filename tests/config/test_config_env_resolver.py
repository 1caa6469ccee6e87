"""The built-in ``env`` secret scheme of the ``standard`` plugin."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hub.config import load_config
from hub.errors import ConfigError
from hub.plugins import hookimpl, make_plugin_manager
from hub_plugins.standard import secrets as env_resolver


def test_env_scheme_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_TEST_TOKEN", "t0ken")
    assert env_resolver.hub_resolve_secret(scheme="env", reference="HUB_TEST_TOKEN") == "t0ken"


def test_unset_variable_is_left_to_the_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_TEST_TOKEN", raising=False)
    assert env_resolver.hub_resolve_secret(scheme="env", reference="HUB_TEST_TOKEN") is None


def test_other_schemes_are_not_its_business(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_TEST_TOKEN", "t0ken")
    assert env_resolver.hub_resolve_secret(scheme="vault", reference="HUB_TEST_TOKEN") is None


def test_env_placeholder_goes_through_the_hook(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_TEST_TZ", "Europe/Oslo")
    pm = make_plugin_manager(entrypoints=False, plugins=[env_resolver])
    assert load_config(write_config("timezone: ${env:HUB_TEST_TZ}\n"), pm).timezone == "Europe/Oslo"


def test_unset_env_placeholder_names_the_variable(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUB_TEST_TZ", raising=False)
    pm = make_plugin_manager(entrypoints=False, plugins=[env_resolver])
    with pytest.raises(ConfigError) as info:
        load_config(write_config("timezone: ${env:HUB_TEST_TZ}\n"), pm)
    assert str(info.value) == "hub.yaml:1: timezone: environment variable HUB_TEST_TZ is not set"


def test_a_plugin_can_take_over_the_env_scheme(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    class DotEnv:
        @hookimpl
        def hub_resolve_secret(self, scheme: str, reference: str) -> str | None:
            return "America/New_York" if scheme == "env" else None

    monkeypatch.setenv("HUB_TEST_TZ", "Europe/Oslo")
    pm = make_plugin_manager(entrypoints=False, plugins=[env_resolver, DotEnv()])
    assert load_config(write_config("timezone: ${env:HUB_TEST_TZ}\n"), pm).timezone == "America/New_York"
