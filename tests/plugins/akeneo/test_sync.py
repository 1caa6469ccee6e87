"""Akeneo through a real sync (a Hub on a temp SQLite project, the shipped mappings): products and their
associations become ``product`` and ``product_relation`` rows, and those relations drive the accessory split."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub.app import Hub
from hub.audience.payloads import recommend_accessories
from hub.audience.triggers import accessory_purchases
from hub.engine.run import SyncEngine
from hub.plugins import make_plugin_manager
from hub.schema import upgrade
from hub.sources.http import RetryPolicy, use_policy
from hub_plugins import akeneo, files, standard
from hub_plugins.akeneo import emulator
from hub_plugins.akeneo._state import AkeneoState
from tests.plugins.akeneo._support import product

ROOT = Path(__file__).resolve().parents[3]
OLD = "2025-01-06T09:00:00Z"
LATER = "2025-01-07T09:00:00Z"


@pytest.fixture
def hub(app: object, url: str, tmp_path: Path) -> Iterator[Hub]:
    """A project whose ``akeneo`` connector reads the emulator 2 products a page, and a ``webshop`` for orders."""
    loaded = build_hub(tmp_path, url, page_size=2)
    with use_policy(RetryPolicy(backoff=0.01, max_backoff=0.05)):
        yield loaded
    loaded.close()


def build_hub(tmp_path: Path, url: str, *, page_size: int) -> Hub:
    project = tmp_path / "project"
    project.mkdir()
    (project / "mappings").symlink_to(ROOT / "mappings")
    config: dict[str, Any] = {
        "database": {"url": f"sqlite:///{project / 'hub.db'}"},
        "project_dir": str(project),
        "timezone": "Europe/Oslo",
        "batch_size": 100,
        "connectors": {
            "akeneo": {
                "plugin": "akeneo",
                "mapping": {"products": "mappings/akeneo_products.yaml", "relations": "mappings/akeneo_relations.yaml"},
                "settings": {**emulator.settings(url), "page_size": page_size},
            },
            "webshop": {
                "plugin": "files",
                "mapping": {"orders": "mappings/webshop_orders.yaml"},
                "settings": {"streams": {"orders": {"paths": ["orders.jsonl"], "key": "id"}}},
            },
        },
    }
    (project / "hub.yaml").write_text(json.dumps(config), encoding="utf-8")
    loaded = Hub.load(
        project / "hub.yaml", pm=make_plugin_manager(entrypoints=False, plugins=[standard, files, akeneo])
    )
    upgrade(loaded.engine)
    return loaded


def sync(hub: Hub, *connectors: str) -> dict[str, int]:
    """Sync; records read per stream."""
    summary = SyncEngine(hub).sync(list(connectors) or ["akeneo"])
    assert summary.ok, [s.error for s in summary.streams if s.error]
    return {s.stream: s.read for s in summary.streams}


def relations(hub: Hub) -> set[tuple[str, str, str]]:
    with hub.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT sku, related_sku, kind FROM product_relation"))
        return {tuple(row) for row in rows}  # type: ignore[misc]


def seed_grill(state: AkeneoState, *, group_of_cover: str = "grills") -> dict[str, str]:
    """A grill with two accessories and a cross-sell; uuids by SKU."""
    state.put("families", [{"code": "textiles", "labels": {"en_US": "Textiles"}}])
    cover, tongs, table = state.put(
        "products", [product("COVER", family=group_of_cover), product("TONGS"), product("TABLE")], updated_at=OLD
    )
    (grill,) = state.put(
        "products", [product("GRILL", accessories=[cover, tongs], cross_sells=[table])], updated_at=OLD
    )
    return {"GRILL": grill, "COVER": cover, "TONGS": tongs, "TABLE": table}


def test_associations_become_product_relation_rows(hub: Hub, state: AkeneoState) -> None:
    seed_grill(state)
    read = sync(hub)
    with hub.engine.connect() as conn:
        grill = conn.execute(sa.text("SELECT product_group, category, brand FROM product WHERE sku = 'GRILL'")).one()
    assert read == {"products": 4, "relations": 4}
    assert tuple(grill) == ("grills", "Gas grills", "Nordhjem")
    assert relations(hub) == {
        ("GRILL", "COVER", "accessory"),
        ("GRILL", "TONGS", "accessory"),
        ("GRILL", "TABLE", "cross_sell"),
    }


def test_an_association_added_between_syncs_arrives_once(hub: Hub, state: AkeneoState) -> None:
    uuids = seed_grill(state)
    sync(hub)
    (brush,) = state.put("products", [product("BRUSH")], updated_at=LATER)
    state.put(
        "products",
        [{"_key": uuids["GRILL"], **product("GRILL", accessories=[uuids["COVER"], brush])}],
        updated_at=LATER,
    )
    read = sync(hub)
    assert read == {"products": 2, "relations": 2}
    assert ("GRILL", "BRUSH", "accessory") in relations(hub)


def test_an_association_removed_between_syncs_is_removed(hub: Hub, state: AkeneoState) -> None:
    uuids = seed_grill(state)
    sync(hub)
    state.put(
        "products",
        [{"_key": uuids["GRILL"], "associations": {"ACCESSORIES": {"products": [uuids["COVER"]]}}}],
        updated_at=LATER,
    )
    sync(hub)
    assert relations(hub) == {("GRILL", "COVER", "accessory"), ("GRILL", "TABLE", "cross_sell")}


def test_akeneo_accessories_drive_the_accessory_split(hub: Hub, state: AkeneoState) -> None:
    """The cover is in another family and not flagged as an accessory: only its ACCESSORIES association, loaded
    through Akeneo alone, makes it the grill's accessory, for the post-purchase branch and the offer alike."""
    seed_grill(state, group_of_cover="textiles")
    orders = [
        _order("both", ["GRILL", "COVER"]),
        _order("grill-only", ["GRILL"]),
    ]
    (Path(hub.config.project_dir) / "orders.jsonl").write_text("\n".join(map(json.dumps, orders)) + "\n")
    sync(hub, "akeneo", "webshop")
    with hub.engine.connect() as conn:
        ids = dict(conn.execute(sa.text("SELECT external_id, customer_id FROM orders")).all())
        bought = accessory_purchases(
            conn, list(ids.values()), datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
        )
        offers = recommend_accessories(conn, {order: (ids[order], ["GRILL"], []) for order in ids}, 3)
    assert [group for _, group in bought[ids["both"]]] == ["grills"]  # what has_accessory_for_group reads
    assert ids["grill-only"] not in bought
    assert [o["sku"] for o in offers["grill-only"]] == ["COVER", "TONGS"]
    assert [o["sku"] for o in offers["both"]] == ["TONGS"]


def _order(name: str, skus: list[str]) -> dict[str, Any]:
    return {
        "id": name,
        "created_at": "2024-06-01T12:00:00+02:00",
        "updated_at": "2024-06-01T12:00:00+02:00",
        "currency": "NOK",
        "current_total_price": "100.00",
        "financial_status": "paid",
        "customer": {"id": f"customer-{name}", "email": f"{name}@example.com"},
        "line_items": [{"sku": sku, "quantity": 1, "price": "50.00", "total_discount": "0.00"} for sku in skus],
    }
