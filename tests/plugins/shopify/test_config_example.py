"""config/examples/shopify.yaml loads, and every mapping it names compiles."""

from __future__ import annotations

import hub_plugins.files
import hub_plugins.shopify
import hub_plugins.standard
import hub_plugins.voyado
from hub.app import Hub
from hub.plugins import make_plugin_manager
from tests.plugins.shopify.conftest import ROOT


def test_the_shopify_example_configuration_is_valid() -> None:
    plugins = [hub_plugins.standard, hub_plugins.files, hub_plugins.shopify, hub_plugins.voyado]
    hub = Hub.load(
        ROOT / "config" / "examples" / "shopify.yaml",
        pm=make_plugin_manager(entrypoints=False, plugins=plugins),
        project_dir=ROOT,
    )
    assert hub.check_mappings() == []
    assert "shop" in hub.sources() and hub.destinations() == ["voyado"]
