"""The sandbox's Shopify holds the demo's web shop: a sync from it gives the unified model the web shop's files give."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

import hub_plugins.files
import hub_plugins.shopify
import hub_plugins.standard
from hub.app import Hub
from hub.engine.run import SyncEngine
from hub.plugins import make_plugin_manager
from hub.sandbox import serve
from hub.schema import upgrade
from hub.sources.http import RetryPolicy, use_policy
from hub_plugins.demo.generator import generate
from hub_plugins.shopify import demo, emulator
from hub_plugins.shopify.source import ShopifySource
from tests.plugins.shopify.conftest import ROOT

#: What the unified model holds, asked the same way of both projects.
COUNTS = {
    "customers": "SELECT count(*) FROM customer WHERE merged_into IS NULL",
    "orders": "SELECT count(*) FROM orders WHERE NOT is_return",
    "orders with a customer": "SELECT count(*) FROM orders WHERE customer_id IS NOT NULL AND NOT is_return",
    "sale lines": "SELECT count(*) FROM order_line WHERE quantity > 0",
    "returned lines": "SELECT count(*) FROM order_line WHERE quantity < 0",
    "carts": "SELECT count(*) FROM cart",
    "open carts": "SELECT count(*) FROM cart WHERE status = 'open'",
    "carts with a customer": "SELECT count(*) FROM cart WHERE customer_id IS NOT NULL",
    "e-mail consents": "SELECT count(*) FROM consent WHERE channel = 'email'",
    "opt-ins": "SELECT count(*) FROM consent WHERE channel = 'email' AND status = 'opt_in'",
}
SHOP_STREAMS = ("customers", "orders", "checkouts")


@pytest.fixture(scope="module")
def data_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo")
    generate(directory, customers=400, seed=42)
    return directory


def _hub(tmp_path: Path, name: str, connector: dict[str, Any]) -> Hub:
    config = {
        "database": {"url": f"sqlite:///{tmp_path / (name + '.db')}"},
        "timezone": "Europe/Oslo",
        "identity": {"blocked_values": {"email": ["noreply@shop.no"]}},
        "connectors": {name: connector},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    plugins = [hub_plugins.standard, hub_plugins.files, hub_plugins.shopify]
    hub = Hub.load(path, pm=make_plugin_manager(entrypoints=False, plugins=plugins), project_dir=ROOT)
    upgrade(hub.engine)
    return hub


def _synced(hub: Hub) -> dict[str, int]:
    try:
        assert SyncEngine(hub).sync().ok
        with hub.engine.connect() as conn:
            return {what: conn.execute(sa.text(query)).scalar_one() for what, query in COUNTS.items()}
    finally:
        connector = hub._connectors.get("shop")
        if isinstance(connector, ShopifySource):
            connector.close()
        hub.close()


@pytest.fixture
def shop_url(data_set: Path) -> Iterator[str]:
    app = demo.app(demo_dir=data_set, restore_rate=100_000.0)
    with use_policy(RetryPolicy(backoff=0.01)), serve(app) as url:
        yield url
    app.state.shopify.webhooks.stop()


@pytest.mark.parametrize("first_load", ["bulk", "pages"])
def test_a_sync_of_the_seeded_shop_makes_the_customers_orders_and_carts_the_web_shop_files_make(
    data_set: Path, shop_url: str, tmp_path: Path, first_load: str
) -> None:
    files = {
        "plugin": "files",
        "mapping": {"orders": "mappings/webshop_orders.yaml", "carts": "mappings/webshop_carts.yaml"},
        "settings": {
            "streams": {
                "orders": {"paths": [str(data_set / "webshop" / "orders-*.jsonl")], "key": "id"},
                "carts": {"paths": [str(data_set / "webshop" / "carts.jsonl")], "key": "id"},
            }
        },
    }
    shop = {
        "plugin": "shopify",
        "mapping": {stream: f"mappings/shopify_{stream}.yaml" for stream in SHOP_STREAMS},
        "settings": {**emulator.settings(shop_url), "streams": list(SHOP_STREAMS), "first_load": first_load},
    }
    from_files = _synced(_hub(tmp_path, "webshop", files))
    from_shop = _synced(_hub(tmp_path, "shop", shop))
    assert from_files["orders"] > 250 and from_files["returned lines"] > 0 and from_files["opt-ins"] > 0
    assert from_shop == from_files


def _write(path: Path, rows: list[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join((row if isinstance(row, bytes) else orjson.dumps(row)) + b"\n" for row in rows))


def _order(ident: int, customer: dict[str, Any], created: str = "2024-05-02T18:00:00+02:00") -> dict[str, Any]:
    return {
        "id": ident,
        "name": f"#{ident}",
        "created_at": created,
        "updated_at": "2024-05-02T18:00:00+02:00",
        "currency": "NOK",
        "total_price": "100.00",
        "current_total_price": "100.00",
        "total_discounts": "0.00",
        "financial_status": "paid",
        "customer": customer,
        "line_items": [{"id": ident * 10, "sku": "GR-1", "title": "Grill", "quantity": 1, "price": "100.00"}],
    }


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A hand-made data set: an account holder, their guest order, a stranger's guest order, the placeholder
    guest, and one order of each malformed kind."""
    kari = {"email": "Kari@online.no", "phone": "+47 912 34 567", "first_name": "Kari", "last_name": "Berg"}
    account = {**kari, "id": 6_100_000_000_007, "accepts_marketing": True}
    account["accepts_marketing_updated_at"] = "2023-03-01T10:00:00+01:00"
    product = {"sku": "GR-1", "name": "Grill", "product_group": "grills", "category": "Gas grills", "brand": "Glød"}
    _write(tmp_path / "pim" / "products.jsonl", [{**product, "price": "100.00", "updated_at": "2023-01-01"}])
    orders = [
        _order(1, account),
        _order(2, {**kari, "id": None}),
        _order(3, {"id": None, "email": "ola@online.no", "phone": "91234568"}),
        _order(4, {"id": None, "email": "noreply@shop.no", "phone": None}),
        _order(5, {"id": None, "email": "per@@online.no"}),
        _order(6, {"id": None, "email": "per@online.no"}, created="2024-13-02T18:00:00+02:00"),
        b'{"id": 7, "created_at": "2024-05',
    ]
    _write(tmp_path / "webshop" / "orders-2024-05.jsonl", orders)
    cart = {"created_at": "2024-05-01T10:00:00+02:00", "updated_at": "2024-05-01T11:00:00+02:00", "line_items": []}
    carts = [
        {**cart, "id": 30, "status": "open", "completed_at": None, "customer": {"id": None, "email": "kari@online.no"}}
    ]
    _write(tmp_path / "webshop" / "carts.jsonl", carts)
    return tmp_path


def _seeded(directory: Path) -> Any:
    state = emulator.app().state.shopify
    assert demo.seed_demo(state, demo_dir=directory)["skipped"] == 1  # the line that is not JSON
    return state


def test_guests_belong_to_the_customer_of_their_email_and_strangers_get_one_of_their_own(tiny: Path) -> None:
    state = _seeded(tiny)
    orders, customers = state.records["orders"], state.records["customers"]
    kari = 6_100_000_000_007
    assert orders[1]["customer_id"] == orders[2]["customer_id"] == state.records["checkouts"][30]["customer_id"] == kari
    assert customers[kari]["phone"] == "+4791234567" and customers[kari]["state"] == "enabled"
    stranger = customers[orders[3]["customer_id"]]
    assert (stranger["email"], stranger["phone"], stranger["state"]) == ("ola@online.no", "+4791234568", "disabled")
    assert orders[4]["customer_id"] is None  # the placeholder address names nobody
    assert set(customers) == {kari, stranger["id"]}


def test_the_sign_up_choice_is_the_customers_email_marketing_consent(tiny: Path) -> None:
    state = _seeded(tiny)
    customers = state.records["customers"]
    kari = state.rest("customers", customers[6_100_000_000_007])
    stranger = state.rest("customers", customers[state.records["orders"][3]["customer_id"]])
    assert kari["email_marketing_consent"] == {
        "state": "subscribed",
        "opt_in_level": "single_opt_in",
        "consent_updated_at": "2023-03-01T09:00:00Z",
    }
    assert stranger["email_marketing_consent"]["state"] == "not_subscribed"  # a guest was never asked


def test_rows_the_export_broke_are_served_malformed_and_a_cut_line_is_left_out(tiny: Path) -> None:
    state = _seeded(tiny)
    assert set(state.records["orders"]) == {1, 2, 3, 4, 5, 6}
    assert state.malformed == {("orders", 5), ("orders", 6)}
    assert state.rest("orders", state.records["orders"][6])["updated_at"] == "not a timestamp"


def test_products_and_stock_come_from_the_pim_catalogue(tiny: Path) -> None:
    state = _seeded(tiny)
    (product,) = state.records["products"].values()
    (item,) = state.records["inventory"].values()
    assert (product["title"], product["product_type"], product["vendor"], product["tags"]) == (
        "Grill",
        "grills",
        "Glød",
        ["Gas grills"],
    )
    assert product["variants"][0]["sku"] == item["sku"] == "GR-1"
    assert state.records["orders"][1]["line_items"][0]["variant_id"] == product["variants"][0]["id"]


def test_the_control_api_reseeds_the_shop_from_a_data_set_and_refuses_a_bad_body(tiny: Path) -> None:
    app = demo.app(demo_dir=tiny)
    with serve(app) as url:
        app.state.shopify.records["orders"].clear()
        answer = httpx.post(f"{url}/_emulator/demo", json={"demo_dir": str(tiny)}, timeout=30)
        refused = httpx.post(f"{url}/_emulator/demo", json={"customers": 0}, timeout=30)
    app.state.shopify.webhooks.stop()
    assert answer.status_code == 200 and answer.json()["seeded"]["orders"] == 6
    assert refused.status_code == 422 and "customers" in refused.json()["message"]


def test_hub_sandbox_serves_the_demo_shop_and_the_tests_keep_an_empty_one() -> None:
    assert hub_plugins.shopify.hub_emulators() == [demo.EMULATOR]
    assert demo.EMULATOR.app is demo.app and demo.BLANK is emulator.EMULATOR
    assert emulator.EMULATOR.app().state.shopify.counts()["records"]["orders"] == 0
