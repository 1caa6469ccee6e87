"""hub's built-in plugins, importable as ``hub_plugins``; each is registered through the ``hub`` entry point."""
