"""Emulators of remote APIs, served on 127.0.0.1 for ``hub sandbox``, the demo and the tests.

A plugin describes its emulator with :class:`Emulator` (from ``hub_emulators``); :func:`emulators` collects them
by name; :func:`build_app` wraps a fresh app in a :class:`FaultInjector`; :func:`serve` runs it on loopback.
``hub.sandbox.command`` holds the ``hub sandbox`` command and :func:`~hub.sandbox.command.start_sandbox`.
"""

from hub.sandbox._emulator import Emulator
from hub.sandbox.faults import FaultInjector, Faults
from hub.sandbox.registry import build_app, emulators
from hub.sandbox.server import serve

__all__ = ["Emulator", "FaultInjector", "Faults", "build_app", "emulators", "serve"]
