"""config/examples/akeneo.yaml against the sandbox's Akeneo emulator, which serves the demo's catalogue: the
products and relations it loads are the ones the demo's PIM files give, so the accessory split reads the same
truth through Akeneo."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from hub.app import Hub
from hub.audience.payloads import recommend_accessories
from hub.engine.run import SyncEngine
from hub.plugins import make_plugin_manager
from hub.schema import upgrade
from hub_plugins import akeneo as akeneo_plugin
from hub_plugins.akeneo.demo import generated_catalogue
from tests.plugins.akeneo._support import Switch

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "examples" / "akeneo.yaml"


def test_the_example_reads_the_demo_catalogue_from_the_sandboxs_akeneo(
    switch: Switch, url: str, tmp_path: Path
) -> None:
    pm = make_plugin_manager()
    if not pm.is_registered(akeneo_plugin):
        pm.register(akeneo_plugin, name="akeneo")
    (sandbox,) = akeneo_plugin.hub_emulators()
    switch.app = sandbox.app()
    environ = {"AKENEO_BASE_URL": url, "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}"}
    hub = Hub.load(EXAMPLE, pm=pm, project_dir=ROOT, environ=environ)
    try:
        assert hub.check_mappings() == []
        upgrade(hub.engine)
        summary = SyncEngine(hub).sync(["akeneo"])
        with hub.engine.connect() as conn:
            products = set(
                conn.execute(
                    sa.text("SELECT sku, name, product_group, category, brand, price, is_accessory FROM product")
                )
            )
            relations = set(conn.execute(sa.text("SELECT sku, related_sku, kind FROM product_relation")))
            query = "SELECT sku FROM product WHERE product_group = 'grills' AND NOT is_accessory ORDER BY sku"
            grill = conn.execute(sa.text(query)).scalars().first()
            offers = recommend_accessories(conn, {"buyer": (0, [grill], [])}, 10)
    finally:
        hub.close()
    catalogue, expected = generated_catalogue(42)
    assert summary.ok and {s.stream: s.read for s in summary.streams} == {"products": 3000, "relations": 3000}
    assert products == {
        (p.sku, p.name, p.group, p.category, p.brand, Decimal(p.price), p.is_accessory) for p in catalogue
    }
    assert relations == set(expected)
    accessories = {related for sku, related, kind in expected if sku == grill and kind == "accessory"}
    assert accessories and {o["sku"] for o in offers["buyer"]} == accessories
