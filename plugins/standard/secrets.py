"""The built-in ``env`` secret scheme: ``${env:NAME}`` in hub.yaml reads the process environment.

It is ``trylast`` so a plugin may take over ``env`` (e.g. to read a ``.env`` file first).
"""

from __future__ import annotations

import os

from hub.plugins import hookimpl


@hookimpl(trylast=True)
def hub_resolve_secret(scheme: str, reference: str) -> str | None:
    """The environment variable ``reference`` for scheme ``env``; None if unset, so the core reports it."""
    if scheme != "env":
        return None
    return os.environ.get(reference)
