"""Emulators collected from plugins by name, and apps built from them with fault injection."""

from __future__ import annotations

import httpx
import pytest

from hub.errors import PluginError
from hub.plugins import make_plugin_manager
from hub.sandbox import FaultInjector, Faults, build_app, emulators, serve

from .tiny import EmulatorPlugin, notes_emulator


def test_emulators_are_collected_by_name_in_registration_order():
    pm = make_plugin_manager(
        entrypoints=False,
        plugins=[EmulatorPlugin(notes_emulator("first")), EmulatorPlugin(notes_emulator("second"))],
    )
    found = emulators(pm)
    assert list(found) == ["first", "second"]
    assert found["second"].connector_type == "second-api"


def test_two_emulators_of_one_name_are_an_error_naming_both_plugins():
    pm = make_plugin_manager(entrypoints=False)
    pm.register(EmulatorPlugin(notes_emulator()), name="alpha")
    pm.register(EmulatorPlugin(notes_emulator()), name="beta")
    with pytest.raises(PluginError, match="'notes' is provided by both 'alpha' and 'beta'"):
        emulators(pm)


def test_something_that_is_not_an_emulator_is_an_error_naming_the_plugin():
    pm = make_plugin_manager(entrypoints=False)
    pm.register(EmulatorPlugin({"name": "notes"}), name="sloppy")  # type: ignore[arg-type]
    with pytest.raises(PluginError, match=r"'sloppy' returned .* not a hub\.sandbox\.Emulator"):
        emulators(pm)


def test_build_app_gives_each_call_its_own_state_behind_the_given_faults():
    emulator = notes_emulator()
    first, second = build_app(emulator, Faults(error_rate=1)), build_app(emulator)
    assert isinstance(first, FaultInjector) and first.faults.error_rate == 1
    with serve(first) as url_a, serve(second) as url_b:
        assert httpx.post(f"{url_a}/items", json={"n": 1}).status_code >= 500
        assert httpx.post(f"{url_b}/items", json={"n": 1}).status_code == 201
    assert first.app.state.notes.items == {}
    assert second.app.state.notes.items == {1: {"n": 1}}
