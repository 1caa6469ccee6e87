"""A small project for the daemon's tests: a ``files`` connector on a three-line CSV, SQLite in ``tmp_path``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hub.app import Hub
from hub.cli import EXAMPLE_CSV, EXAMPLE_MAPPING
from hub.schema import upgrade

CONFIG = """\
database:
  url: sqlite:///var/hub.db
timezone: Europe/Oslo
connectors:
  shop:
    plugin: files
    mapping: mappings/example.yaml
    settings:
      paths: ["data/*.csv"]
{schedule}
{daemon}
"""


@pytest.fixture
def write_project(tmp_path: Path) -> Callable[..., Path]:
    """Write the project with ``schedule`` under the connector and ``daemon`` at the top; returns hub.yaml."""

    def write(schedule: str = "    schedule: {every: 1s}", daemon: str = "") -> Path:
        (tmp_path / "mappings").mkdir(exist_ok=True)
        (tmp_path / "data").mkdir(exist_ok=True)
        (tmp_path / "mappings" / "example.yaml").write_text(EXAMPLE_MAPPING, encoding="utf-8")
        (tmp_path / "data" / "customers.csv").write_text(EXAMPLE_CSV, encoding="utf-8")
        config = tmp_path / "hub.yaml"
        config.write_text(CONFIG.format(schedule=schedule, daemon=daemon), encoding="utf-8")
        return config

    return write


@pytest.fixture
def make_hub(write_project: Callable[..., Path]) -> Callable[..., Hub]:
    """A loaded Hub on an upgraded database; closed after the test."""
    hubs: list[Hub] = []

    def make(**kwargs: str) -> Hub:
        config = write_project(**kwargs)
        hub = Hub.load(config, project_dir=config.parent)
        upgrade(hub.engine)
        hubs.append(hub)
        return hub

    yield make  # type: ignore[misc]
    for hub in hubs:
        hub.close()
