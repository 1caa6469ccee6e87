"""Which customers an incremental compute recomputes: seconds back on every pass, minutes back on a sweep."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.app import Hub
from hub.audience.pipeline import compute
from hub.models import Customer
from hub.plugins import make_plugin_manager
from hub.schema import upgrade
from hub.watermarks import QUICK_OVERLAP, SWEEP_EVERY

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
customers_t: sa.Table = Customer.__table__  # type: ignore[attr-defined]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Hub]:
    config = {"database": {"url": f"sqlite:///{tmp_path / 'hub.db'}"}, "project_dir": str(tmp_path)}
    (tmp_path / "hub.yaml").write_text(json.dumps(config), encoding="utf-8")
    hub = Hub.load(tmp_path / "hub.yaml", pm=make_plugin_manager(entrypoints=False))
    upgrade(hub.engine)
    with hub.engine.begin() as conn:
        conn.execute(
            sa.insert(customers_t),
            [
                {"id": i, "created_at": NOW - timedelta(days=30), "updated_at": NOW - timedelta(days=30)}
                for i in (1, 2, 3)
            ],
        )
    yield hub
    hub.close()


def touch(hub: Hub, customer_id: int, at: datetime) -> None:
    with hub.engine.begin() as conn:
        conn.execute(customers_t.update().where(customers_t.c.id == customer_id).values(updated_at=at))


def test_a_compute_looks_back_seconds_and_a_sweep_a_minute_later_finds_a_long_transactions_rows(hub: Hub) -> None:
    assert compute(hub, now=NOW).customers == 3  # the first compute is full
    touch(hub, 1, NOW - QUICK_OVERLAP + timedelta(seconds=1))  # a webhook committed just after the compute began
    touch(hub, 2, NOW - timedelta(minutes=2))  # a long sync transaction, committed late
    assert compute(hub, now=NOW + timedelta(seconds=30)).customers == 1
    assert compute(hub, now=NOW + SWEEP_EVERY).customers == 2
    assert compute(hub, now=NOW + SWEEP_EVERY + timedelta(seconds=10)).customers == 0
