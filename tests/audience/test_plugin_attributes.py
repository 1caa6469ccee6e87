"""A plugin's attribute (``hub_attributes``) is validated in expressions, computed, and selects segment members."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.app import Hub
from hub.audience.pipeline import run_audience
from hub.audience.types import AttributeSpec
from hub.errors import ConfigError, PluginError
from hub.models import Customer, Event, SegmentMembership
from hub.plugins import attribute_specs, hookimpl, make_plugin_manager
from hub.schema import upgrade

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
customer_t: sa.Table = Customer.__table__  # type: ignore[attr-defined]
event_t: sa.Table = Event.__table__  # type: ignore[attr-defined]
membership_t: sa.Table = SegmentMembership.__table__  # type: ignore[attr-defined]


def _web_visits(conn: sa.Connection, customer_ids: object, now: datetime) -> list[tuple[int, int]]:
    query = (
        sa.select(event_t.c.customer_id, sa.func.count())
        .where(event_t.c.type == "page_view", event_t.c.at <= now)
        .group_by(event_t.c.customer_id)
    )
    return [(int(customer_id), int(n)) for customer_id, n in conn.execute(query)]


class VisitsPlugin:
    @hookimpl
    def hub_attributes(self) -> list[AttributeSpec]:
        return [AttributeSpec("web_visits", "int", "page views ever", _web_visits)]


def _project(tmp_path: Path, when: str) -> Path:
    config = {
        "project_dir": str(tmp_path),
        "database": {"url": "sqlite:///hub.db"},
        "segments": {"browsers": {"when": when}},
    }
    path = tmp_path / "hub.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def test_a_segment_on_a_plugin_attribute_selects_the_customers_the_plugin_computed(tmp_path: Path) -> None:
    hub = Hub.load(_project(tmp_path, "web_visits >= 2"), plugins=[VisitsPlugin()])
    upgrade(hub.engine)
    with hub.engine.begin() as conn:
        ids = [
            conn.execute(
                customer_t.insert().values(email=f"c{i}@example.no", created_at=NOW, updated_at=NOW)
            ).inserted_primary_key[0]
            for i in range(3)
        ]
        conn.execute(
            event_t.insert(),
            [
                {
                    "source": "web",
                    "external_id": f"e{n}",
                    "customer_id": customer_id,
                    "type": "page_view",
                    "at": NOW,
                    "loaded_at": NOW,
                }
                for n, customer_id in enumerate([ids[0], ids[0], ids[1]])
            ],
        )

    run_audience(hub, now=NOW, full=True)

    with hub.engine.connect() as conn:
        members = conn.execute(sa.select(membership_t.c.customer_id).where(membership_t.c.segment == "browsers"))
        assert [row[0] for row in members] == [ids[0]]
    hub.close()


def test_a_misspelt_plugin_attribute_is_a_config_error_with_its_column(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as error:
        Hub.load(_project(tmp_path, "web_vists >= 2"), plugins=[VisitsPlugin()])

    assert "segments.browsers.when: column 1: unknown attribute 'web_vists'" in str(error.value)
    assert "web_visits" in str(error.value)


def test_a_plugin_attribute_may_not_shadow_a_built_in_one() -> None:
    class Shadowing:
        @hookimpl
        def hub_attributes(self) -> list[AttributeSpec]:
            return [AttributeSpec("tier", "str", "mine", _web_visits)]

    with pytest.raises(PluginError, match=r"'tier' .* is a built-in attribute"):
        attribute_specs(make_plugin_manager(entrypoints=False, plugins=[Shadowing()]))
