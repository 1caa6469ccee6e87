"""config/examples/woocommerce.yaml against the emulator seeded as `hub sandbox` seeds it from the demo's web shop."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from hub.app import Hub
from hub.engine.run import SyncEngine
from hub.plugins import make_plugin_manager
from hub.sandbox import serve
from hub.schema import upgrade
from hub_plugins import woocommerce as woocommerce_plugin
from hub_plugins.woocommerce import emulator

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "examples" / "woocommerce.yaml"

_ORDERS = [
    {  # a registered shopper who opted in, with a refund of one of two
        "id": 5500000000001,
        "created_at": "2024-03-01T10:00:00+01:00",
        "currency": "NOK",
        "financial_status": "partially_refunded",
        "customer": {
            "id": 61,
            "email": "kari@example.no",
            "first_name": "Kari",
            "last_name": "Nordmann",
            "phone": "+47 912 34 567",
            "accepts_marketing": True,
        },
        "line_items": [
            {"sku": "GRL-00001", "quantity": 1, "price": "12490.00"},
            {"sku": "GRL-00002", "quantity": 1, "price": "499.00"},
        ],
        "refunds": [
            {
                "id": 9,
                "created_at": "2024-03-05T10:00:00+01:00",
                "refund_line_items": [{"quantity": 1, "line_item": {"sku": "GRL-00002"}}],
            }
        ],
    },
    {  # a guest
        "id": 5500000000002,
        "created_at": "2024-03-02T10:00:00+01:00",
        "financial_status": "paid",
        "customer": {"id": None, "email": "ola@example.no", "first_name": "Ola", "last_name": "Hansen"},
        "line_items": [{"sku": "GRL-00001", "quantity": 2, "price": "12490.00"}],
    },
]
_PRODUCTS = [
    {
        "sku": "GRL-00001",
        "name": "Gassgrill",
        "product_group": "grills",
        "category": "Gas grills",
        "brand": "Nordhjem",
        "price": "12490.00",
        "updated_at": "2024-01-01T00:00:00Z",
    },
    {
        "sku": "GRL-00002",
        "name": "Grilltrekk",
        "product_group": "grills",
        "category": "Covers",
        "brand": "Nordhjem",
        "price": "499.00",
        "updated_at": "2024-01-01T00:00:00Z",
    },
]


def _demo(root: Path) -> Path:
    (root / "webshop").mkdir(parents=True)
    (root / "pim").mkdir()
    lines = [json.dumps(order) for order in _ORDERS] + ["{not json"]
    (root / "webshop" / "orders-2024-03.jsonl").write_text("\n".join(lines), encoding="utf-8")
    (root / "pim" / "products.jsonl").write_text("\n".join(map(json.dumps, _PRODUCTS)), encoding="utf-8")
    return root


def test_the_example_reads_the_demo_web_shop_from_the_sandboxs_woocommerce(tmp_path: Path) -> None:
    pm = make_plugin_manager()
    if not pm.is_registered(woocommerce_plugin):
        pm.register(woocommerce_plugin, name="woocommerce")
    app = emulator.app(demo_dir=_demo(tmp_path / "demo"))
    with serve(app) as url:
        environ = {"WOO_BASE_URL": url, "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}"}
        hub = Hub.load(EXAMPLE, pm=pm, project_dir=ROOT, environ=environ)
        try:
            assert hub.check_mappings() == []
            upgrade(hub.engine)
            summary = SyncEngine(hub).sync(["webshop"])
            with hub.engine.connect() as conn:
                orders = sorted(conn.execute(sa.text("SELECT is_return, total FROM orders")))
                consents = list(conn.execute(sa.text("SELECT channel, status FROM consent")))
                customers = conn.execute(sa.text("SELECT count(*) FROM customer")).scalar_one()
        finally:
            hub.close()
    assert summary.ok and {s.stream: s.read for s in summary.streams} == {"customers": 1, "orders": 2}
    assert [(bool(r), float(t)) for r, t in orders] == [(False, 12989.0), (False, 24980.0), (True, -499.0)]
    assert consents == [("email", "opt_in")] and customers == 2
