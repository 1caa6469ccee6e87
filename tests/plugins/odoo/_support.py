"""Helpers for the Odoo tests: reading a whole stream, syncing, and reading what a Hub loaded."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from hub.app import Hub
from hub.engine.run import SyncEngine
from hub_plugins.odoo.source import OdooSource


def records(source: OdooSource, stream: str, cursor: Any = None) -> tuple[list[dict[str, Any]], Any]:
    """Every record of one read, and the cursor after it (through JSON, as the engine stores it)."""
    out: list[dict[str, Any]] = []
    for batch in source.read(stream, cursor):
        out.extend(batch.records)
        cursor = json.loads(json.dumps(batch.cursor))
    return out, cursor


def sync(hub: Hub) -> dict[str, int]:
    """One sync of connector ``erp``; records read per stream."""
    summary = SyncEngine(hub).sync(["erp"])
    assert summary.ok, [s.error for s in summary.streams if s.error]
    return {s.stream: s.read for s in summary.streams}


def rows(hub: Hub, query: str, **params: Any) -> list[tuple[Any, ...]]:
    with hub.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sa.text(query), params)]
