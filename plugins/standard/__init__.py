"""hub's standard plugin: the built-in mapping transforms and the ``env`` secret resolver.

Registered through the ``hub`` entry point like any third-party plugin; the core never imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hub import hookimpl
from hub_plugins.standard.secrets import hub_resolve_secret
from hub_plugins.standard.transforms import TRANSFORMS

__all__ = ["hub_resolve_secret", "hub_transforms"]


@hookimpl(trylast=True)
def hub_transforms() -> dict[str, Callable[..., Any]]:
    return dict(TRANSFORMS)
