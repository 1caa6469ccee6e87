"""Plugin discovery through real entry points, failure isolation, and the registries built from hooks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hub import Source, hookimpl
from hub.errors import PluginError
from hub.plugins import connector_types, describe, make_plugin_manager, plugin_failures, transforms

DISTS = Path(__file__).parent / "plugin_dists"
ROOT = Path(__file__).parent.parent


def test_builtin_plugins_load_through_the_hub_entry_point_group():
    pm = make_plugin_manager()
    names = {name for name, _ in pm.list_name_plugin()}
    assert {"standard", "files", "demo"} <= names
    assert "files" in connector_types(pm)


def test_a_third_party_plugin_installed_with_its_metadata_is_discovered(monkeypatch):
    monkeypatch.syspath_prepend(str(DISTS / "good"))
    pm = make_plugin_manager()
    assert "counting" in connector_types(pm)
    assert "shout" in transforms(pm)
    example = next(p for p in describe(pm)["plugins"] if p["name"] == "example")
    assert example["distribution"] == "hub-example-plugin 0.1.0"
    assert example["connector_types"][0]["roles"] == ["source"]
    assert sorted(example["hooks"]) == ["hub_connector_types", "hub_transforms"]


def test_a_plugin_that_fails_to_import_is_reported_by_name_and_the_others_still_load(monkeypatch):
    monkeypatch.syspath_prepend(str(DISTS / "broken"))
    pm = make_plugin_manager()
    failures = plugin_failures(pm)
    assert [f.name for f in failures] == ["broken"]
    assert "broken on purpose" in failures[0].error
    assert "files" in connector_types(pm)


def test_a_blocked_plugin_is_not_loaded(monkeypatch):
    monkeypatch.setenv("HUB_DISABLE_PLUGINS", "demo")
    pm = make_plugin_manager()
    assert not pm.has_plugin("demo")
    assert pm.has_plugin("files")


def test_a_misspelled_hook_is_an_error_at_start_up():
    class Typo:
        @hookimpl
        def hub_conector_types(self):
            return []

    with pytest.raises(PluginError, match="hub_conector_types"):
        make_plugin_manager(entrypoints=False, plugins=[Typo()])


def test_two_connector_types_of_one_name_name_both_plugins():
    class One(Source):
        type = "same"

    class PluginA:
        @hookimpl
        def hub_connector_types(self):
            return [One]

    class PluginB:
        @hookimpl
        def hub_connector_types(self):
            return [One]

    pm = make_plugin_manager(entrypoints=False)
    pm.register(PluginA(), name="plugin_a")
    pm.register(PluginB(), name="plugin_b")
    with pytest.raises(PluginError, match=r"'plugin_a' and 'plugin_b'|'plugin_b' and 'plugin_a'"):
        connector_types(pm)


def test_the_core_never_imports_a_plugin():
    offenders = []
    for path in (ROOT / "hub").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "hub_plugins"]
    assert offenders == []
