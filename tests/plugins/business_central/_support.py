"""Helpers for the Business Central tests: syncing, and counting what a Hub loaded."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from hub.app import Hub
from hub.engine.run import SyncEngine


def sync(hub: Hub) -> dict[str, int]:
    """One sync of connector ``erp``; records read per stream."""
    summary = SyncEngine(hub).sync(["erp"])
    assert summary.ok, [s.error for s in summary.streams if s.error]
    return {s.stream: s.read for s in summary.streams}


def rows(hub: Hub, query: str, **params: Any) -> list[tuple[Any, ...]]:
    with hub.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(query), params)]
