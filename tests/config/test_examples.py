"""Every configuration in config/examples/ (and config/hub.yaml) loads with the installed plugins and all its
mappings compile, so an example never shows a file hub would refuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.app import Hub
from hub.plugins import make_plugin_manager

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "config" / "examples").glob("*.yaml"))


def test_there_is_an_example_per_destination() -> None:
    names = {path.stem for path in EXAMPLES}
    assert {"agillic", "actito", "raptor"} <= names


@pytest.mark.parametrize("path", [ROOT / "config" / "hub.yaml", *EXAMPLES], ids=lambda path: path.stem)
def test_the_example_loads_and_its_mappings_compile(path: Path) -> None:
    hub = Hub.load(path, pm=make_plugin_manager(), project_dir=ROOT, environ={})
    try:
        assert hub.check_mappings() == []
        assert hub.config.connectors
    finally:
        hub.close()


def test_the_examples_readme_lists_every_example() -> None:
    listed = (ROOT / "config" / "examples" / "README.md").read_text(encoding="utf-8")
    assert [path.name for path in EXAMPLES if f"({path.name})" not in listed] == []
