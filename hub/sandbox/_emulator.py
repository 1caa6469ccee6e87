"""What a plugin returns from ``hub_emulators``: the description of an emulator of a remote API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Emulator:
    """An emulator a plugin provides: ``app()`` builds a fresh ASGI app with its own in-memory state.

    ``settings(base_url)`` returns the connector settings that point a configuration at the emulator.
    """

    name: str
    connector_type: str
    app: Callable[[], Any]
    settings: Callable[[str], dict[str, Any]]
    default_port: int = 0
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
