"""``hub deliver --sandbox`` and ``hub sync --sandbox``: talk to the installed emulators, started in this process,
instead of the configured URLs. For trying a configuration (and for ``make demo``) without touching a production
account."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from typing import Any, Literal

import httpx

from hub.app import Hub
from hub.errors import ConfigError
from hub.sandbox import Faults
from hub.sandbox.command import RunningEmulator, start_sandbox
from hub.sandbox.registry import emulators


def point_at_emulators(
    hub: Hub,
    stack: ExitStack,
    destinations: Iterable[str] | None = None,
    faults: Faults | None = None,
    *,
    missing: Literal["error", "skip"] = "error",
) -> dict[str, RunningEmulator]:
    """Start an emulator for each named connector (default: every destination) of a type that has one, and rewrite
    that connector's settings to reach it. Must run before the connectors are built. A connector whose type has no
    emulator is an error, or left as configured with ``missing="skip"`` (a files source needs none). Returns the
    running emulators by connector; they stop when ``stack`` closes."""
    names = list(destinations) if destinations else hub.destinations()
    by_type = {e.connector_type: e for e in emulators(hub.pm).values()}
    wanted = {name: by_type.get(hub.config.connectors[name].plugin) for name in names}
    without = sorted(name for name, emulator in wanted.items() if emulator is None)
    if without and missing == "error":
        raise ConfigError(f"no emulator is installed for {', '.join(without)}; --sandbox cannot stand in for it")
    wanted = {name: emulator for name, emulator in wanted.items() if emulator is not None}
    running: dict[str, RunningEmulator] = {}
    for name, emulator in wanted.items():
        assert emulator is not None
        sandbox = stack.enter_context(
            start_sandbox(hub.pm, ports={emulator.name: 0}, faults=faults, only=[emulator.name])
        )
        running[name] = sandbox[emulator.name]
        connector = hub.config.connectors[name]
        settings = {**connector.settings.model_dump(), **running[name].settings()}
        hub.config.connectors[name] = connector.model_copy(
            update={"settings": type(connector.settings).model_validate(settings)}
        )
    return running


def received(emulator: RunningEmulator) -> dict[str, int]:
    """What an emulator holds and received, as counts: the lengths of the lists and the numbers in its inspection
    view (e.g. contacts, receipts, triggers, requests), plus the faults it injected."""
    counts: dict[str, int] = {}
    state: Any = httpx.get(emulator.inspect_url, timeout=30).json()
    if isinstance(state, dict):
        for key, value in state.items():
            if isinstance(value, list):
                counts[key] = len(value)
            elif isinstance(value, int) and not isinstance(value, bool):
                counts[key] = value
    for fault, n in emulator.injector.stats.items():
        if fault != "passed" and n:
            counts[f"injected {fault}"] = n
    return counts
