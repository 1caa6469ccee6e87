"""Fixtures for the configuration tests: a project directory, hub.yaml writers, two tiny connector types."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pluggy
import pytest
from pydantic import HttpUrl, SecretStr

from hub.config import load_config
from hub.connectors import Batch, ConnectorSettings, Source, Stream
from hub.errors import ConfigError
from hub.plugins import hookimpl, make_plugin_manager


class ShopSettings(ConnectorSettings):
    base_url: HttpUrl
    api_key: SecretStr
    paths: list[str] = []


class ShopSource(Source):
    """A web shop API, as far as configuration is concerned."""

    type = "shop"
    Settings = ShopSettings

    def streams(self) -> Mapping[str, Stream]:
        return {"orders": Stream("orders", key="id")}

    def read(self, stream: str, cursor: Any) -> Iterator[Batch]:
        yield Batch(records=[], cursor=cursor)


class FilesSettings(ConnectorSettings):
    paths: list[str]


class FilesSource(Source):
    """Local CSV files, as far as configuration is concerned."""

    type = "files"
    Settings = FilesSettings

    def streams(self) -> Mapping[str, Stream]:
        return {"rows": Stream("rows")}

    def read(self, stream: str, cursor: Any) -> Iterator[Batch]:
        yield Batch(records=[], cursor=cursor)


class ConnectorTypes:
    @hookimpl
    def hub_connector_types(self) -> list[type[Source]]:
        return [ShopSource, FilesSource]


@pytest.fixture
def pm() -> pluggy.PluginManager:
    return make_plugin_manager(entrypoints=False, plugins=[ConnectorTypes()])


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory as the working directory, with ``mappings/orders.yaml``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HUB_CONFIG", raising=False)
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "orders.yaml").write_text("customer: {}\n", encoding="utf-8")
    return Path.cwd()


@pytest.fixture
def write_config(project: Path) -> Callable[..., Path]:
    """Write YAML (dedented; its first line is line 1) into the project; return the path relative to it."""

    def write(text: str, name: str = "hub.yaml") -> Path:
        path = project / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return Path(name)

    return write


@pytest.fixture
def config_errors(write_config: Callable[..., Path], pm: pluggy.PluginManager) -> Callable[..., list[str]]:
    """Load YAML text that must fail; return its issues as ``file:line: key: message`` strings."""

    def errors(text: str, environ: Mapping[str, str] | None = None) -> list[str]:
        with pytest.raises(ConfigError) as info:
            load_config(write_config(text), pm, environ=environ or {})
        return [str(issue) for issue in info.value.issues]

    return errors
