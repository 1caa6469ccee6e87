"""The emulators installed plugins provide (``hub_emulators``), by name, and their apps with fault injection."""

from __future__ import annotations

import pluggy

from hub.errors import PluginError
from hub.sandbox._emulator import Emulator
from hub.sandbox.faults import FaultInjector, Faults


def emulators(pm: pluggy.PluginManager) -> dict[str, Emulator]:
    """Emulator name -> :class:`Emulator`, from every plugin's ``hub_emulators``, in registration order.

    Raises PluginError for something that is not an Emulator, or for two emulators of one name (naming both
    plugins), like the other registries.
    """
    found: dict[str, tuple[Emulator, str]] = {}
    for impl in pm.hook.hub_emulators.get_hookimpls():  # registration order (calls would run in reverse)
        owner = pm.get_name(impl.plugin) or impl.plugin_name
        for emulator in impl.function() or []:
            if not isinstance(emulator, Emulator):
                raise PluginError(
                    f"plugin {owner!r} returned {emulator!r} from hub_emulators, not a hub.sandbox.Emulator"
                )
            if emulator.name in found:
                raise PluginError(
                    f"emulator {emulator.name!r} is provided by both {found[emulator.name][1]!r} and {owner!r}"
                )
            found[emulator.name] = (emulator, owner)
    return {name: emulator for name, (emulator, _) in found.items()}


def build_app(emulator: Emulator, faults: Faults | None = None) -> FaultInjector:
    """A fresh app of ``emulator`` (its own in-memory state) behind a :class:`FaultInjector`.

    The emulator's own app is ``injector.app``, for tests that read its state directly.
    """
    return FaultInjector(emulator.app(), faults)
