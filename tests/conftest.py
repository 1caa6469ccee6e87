"""Shared fixtures live in hub's pytest plugin, ``hub.testing`` (the ``pytest11`` entry point)."""
