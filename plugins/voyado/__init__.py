"""Built-in plugin: the Voyado Engage destination and its emulator."""
