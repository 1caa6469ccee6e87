"""The demo's carts, e-mail and loyalty events, and order campaigns: what the audience programmes act on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from hub import Source
from hub.app import Hub
from hub.engine.map import map_batch
from hub.engine.run import SyncEngine
from hub.models import Cart, Customer, Event, Order
from hub.plugins import make_plugin_manager
from hub.schema import upgrade
from hub_plugins import files as files_plugin
from hub_plugins import standard as standard_plugin
from hub_plugins.demo import _audience
from hub_plugins.demo.generator import Manifest, generate

REPO = Path(__file__).resolve().parents[3]
CUSTOMERS = 1500
END = datetime.fromisoformat("2025-01-01T00:00:00+01:00")  # the data period ends here
CAMPAIGN_FIELDS = ("discount_codes", "landing_site", "note_attributes")

# The demo connectors, as config/hub.yaml has them, with the web shop's carts and events streams.
CONFIG = """\
database: {url: "sqlite:///var/hub.db"}
timezone: Europe/Oslo
identity:
  source_priority: [erp, webshop, pos]
  blocked_values: {email: ["noreply@shop.no"], member_no: ["0"], phone: ["+4700000000"]}
  max_per_customer: {member_no: 1}
connectors:
  pim:
    plugin: files
    mapping: {products: mappings/pim_products.yaml, relations: mappings/pim_relations.yaml,
              stores: mappings/stores.yaml}
    settings:
      streams:
        products: {paths: ["var/demo/pim/products.jsonl"], key: sku, updated_at: updated_at}
        relations: {paths: ["var/demo/pim/relations.csv"]}
        stores: {paths: ["var/demo/pim/stores.csv"], key: store_id}
  webshop:
    plugin: files
    mapping: {orders: mappings/webshop_orders.yaml, carts: mappings/webshop_carts.yaml,
              events: mappings/webshop_events.yaml}
    settings:
      streams:
        orders: {paths: ["var/demo/webshop/orders-*.jsonl"], key: id}
        carts: {paths: ["var/demo/webshop/carts.jsonl"], key: id, updated_at: updated_at}
        events: {paths: ["var/demo/webshop/events.jsonl"], key: id}
  pos:
    plugin: files
    mapping: {receipts: mappings/pos_receipts.yaml}
    settings: {streams: {receipts: {paths: ["var/demo/pos/receipts-*.csv"]}}}
  erp:
    plugin: files
    mapping: {customers: mappings/erp_customers.yaml}
    settings:
      streams:
        customers: {paths: ["var/demo/erp/customers.csv"], delimiter: ";", key: kundenr, updated_at: endret}
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Manifest]:
    """One generated data set, read (never written) by the tests below."""
    out = tmp_path_factory.mktemp("demo")
    return out, generate(out, customers=CUSTOMERS, seed=42)


def jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Parsed lines of a JSON Lines file; the deliberately broken ones are left out."""
    for line in path.read_bytes().splitlines():
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError:
            continue


def web_orders(root: Path) -> Iterator[dict[str, Any]]:
    for path in sorted((root / "webshop").glob("orders-*.jsonl")):
        yield from jsonl(path)


def at(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None  # a malformed date


def make_hub(root: Path, project: Path) -> Hub:
    (project / "var").mkdir(parents=True)
    (project / "var" / "demo").symlink_to(root)
    (project / "mappings").symlink_to(REPO / "mappings")
    (project / "hub.yaml").write_text(CONFIG, encoding="utf-8")
    pm = make_plugin_manager(entrypoints=False, plugins=[files_plugin, standard_plugin])
    return Hub.load(project / "hub.yaml", pm=pm, project_dir=project)


# --- the rest of the data set does not change --------------------------------------------------------------------


def test_carts_events_and_campaigns_change_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generate(tmp_path / "with", customers=300, seed=7)
    monkeypatch.setattr(_audience.Audience, "person", lambda *args: None)
    monkeypatch.setattr(_audience.Audience, "tag_order", lambda *args: {})
    without = generate(tmp_path / "without", customers=300, seed=7)
    with_ = Manifest.load(tmp_path / "with")
    assert with_.expected_customers == without.expected_customers
    assert with_.orders == without.orders
    for path in sorted((tmp_path / "without").rglob("*")):
        name = str(path.relative_to(tmp_path / "without"))
        if not path.is_file() or name.startswith("webshop/") or name == "manifest.json":
            continue
        assert path.read_bytes() == (tmp_path / "with" / name).read_bytes(), name
    for path in sorted((tmp_path / "without" / "webshop").glob("orders-*.jsonl")):
        plain = path.read_bytes().splitlines()
        tagged = (tmp_path / "with" / "webshop" / path.name).read_bytes().splitlines()
        assert len(plain) == len(tagged)
        for a, b in zip(plain, tagged, strict=True):
            try:
                order = orjson.loads(b)
            except orjson.JSONDecodeError:
                assert len(a) == len(b)  # cut at the same place
                continue
            assert orjson.dumps({k: v for k, v in order.items() if k not in CAMPAIGN_FIELDS}) == a


# --- carts -------------------------------------------------------------------------------------------------------


def test_carts_are_open_or_converted_and_a_converted_one_precedes_its_order(demo: tuple[Path, Manifest]) -> None:
    root, manifest = demo
    carts = list(jsonl(root / "webshop" / "carts.jsonl"))
    orders = {o["id"]: o for o in web_orders(root)}
    assert {c["status"] for c in carts} == {"open", "converted"}
    assert manifest.audience["carts"] == manifest.streams["webshop.carts"]
    converted = [c for c in carts if c["status"] == "converted"]
    assert converted and all(c["order_id"] is not None for c in converted)
    followed = [
        c
        for c in converted
        if c["order_id"] in orders and at(c["updated_at"]) and at(orders[c["order_id"]]["created_at"])
    ]
    assert len(followed) > 0.95 * len(converted)  # the rest: the order or the cart is malformed
    for cart in followed:
        assert at(cart["updated_at"]) < at(orders[cart["order_id"]]["created_at"])  # type: ignore[operator]
        emails = {cart["customer"]["email"], orders[cart["order_id"]]["customer"]["email"]}
        assert len(emails) == 1 or any("@@" in e or e == "noreply@shop.no" for e in emails)
    for cart in carts:
        assert cart["line_items"] and all(item["sku"] and item["quantity"] >= 1 for item in cart["line_items"])
        total = sum(round(float(item["price"]) * 100) * item["quantity"] for item in cart["line_items"])
        assert round(float(cart["total_price"]) * 100) == total


def test_carts_are_in_time_order_and_some_are_left_open_in_the_last_days(demo: tuple[Path, Manifest]) -> None:
    root, _ = demo
    carts = list(jsonl(root / "webshop" / "carts.jsonl"))
    moments = [m for m in (at(c["updated_at"]) for c in carts) if m]
    assert moments == sorted(moments)
    assert all(m < END for m in moments)
    late = [c for c in carts if (m := at(c["updated_at"])) and m >= datetime.fromisoformat("2024-12-29T00:00+01:00")]
    # The same shop customer's later web orders: some late open carts were followed by one, most were not.
    placed: dict[str, list[datetime]] = {}
    for order in web_orders(root):
        if (m := at(order["created_at"])) is not None:
            placed.setdefault(order["customer"]["email"].lower(), []).append(m)
    open_late = [c for c in late if c["status"] == "open"]
    ordered_after = [
        c for c in open_late if any(m > at(c["updated_at"]) for m in placed.get(c["customer"]["email"].lower(), []))
    ]
    assert len(open_late) >= 15
    assert 0 < len(ordered_after) < len(open_late) / 2
    assert any(c["status"] == "converted" for c in late)


def test_signed_in_carts_carry_the_shop_customer_id_and_guests_only_the_email(demo: tuple[Path, Manifest]) -> None:
    root, _ = demo
    shop_ids = {o["customer"]["id"]: o["customer"]["email"].lower() for o in web_orders(root) if o["customer"]["id"]}
    carts = list(jsonl(root / "webshop" / "carts.jsonl"))
    signed_in = [c for c in carts if c["customer"]["id"] is not None]
    assert 0.5 < len(signed_in) / len(carts) < 0.9
    known = [c for c in signed_in if c["customer"]["id"] in shop_ids]
    assert len(known) > 0.9 * len(signed_in)  # the rest belong to people whose orders were all guest checkouts
    assert all(
        shop_ids[c["customer"]["id"]] == c["customer"]["email"].lower()
        for c in known
        if "@@" not in c["customer"]["email"]
    )


# --- events ------------------------------------------------------------------------------------------------------


def test_events_have_the_expected_types_and_no_opens_after_a_hard_bounce(demo: tuple[Path, Manifest]) -> None:
    root, manifest = demo
    events = list(jsonl(root / "webshop" / "events.jsonl"))
    moments = [m for m in (at(e["occurred_at"]) for e in events) if m]
    assert moments == sorted(moments) and all(m < END for m in moments)
    assert {e["type"] for e in events} == {"email_opened", "email_clicked", "email_bounced", "points_expiring"}
    bounced = {e["email"]: at(e["occurred_at"]) for e in events if e["type"] == "email_bounced"}
    assert bounced and all(e["payload"]["bounce_type"] == "hard" for e in events if e["type"] == "email_bounced")
    for event in events:
        if event["type"] == "email_opened" and event["email"] in bounced and (m := at(event["occurred_at"])):
            assert m < bounced[event["email"]]  # type: ignore[operator]
    assert 0.95 * manifest.audience["events_email_bounced"] <= len(bounced) <= manifest.audience["events_email_bounced"]


def test_points_expiring_events_announce_points_lapsing_in_january_2025(demo: tuple[Path, Manifest]) -> None:
    root, manifest = demo
    notices = [e for e in jsonl(root / "webshop" / "events.jsonl") if e["type"] == "points_expiring"]
    january = []
    for notice in notices:
        points, expires = notice["payload"]["points"], date.fromisoformat(notice["payload"]["expires_on"])
        assert isinstance(points, int) and points > 0
        if (m := at(notice["occurred_at"])) is not None:
            assert m.date() < expires
        if expires.year == 2025:
            january.append(expires)
    assert len(january) >= 10 and all(date(2025, 1, 2) <= d <= date(2025, 1, 20) for d in january)
    assert any(d <= date(2025, 1, 15) for d in january) and any(d > date(2025, 1, 15) for d in january)
    assert manifest.audience["points_expiring_2025_01"] >= len(january)


# --- campaigns ---------------------------------------------------------------------------------------------------


def test_a_share_of_web_orders_carry_a_campaign(demo: tuple[Path, Manifest]) -> None:
    root, manifest = demo
    orders = list(web_orders(root))
    codes = [o["discount_codes"][0]["code"] for o in orders if "discount_codes" in o]
    utm = [o["note_attributes"][0]["value"] for o in orders if "note_attributes" in o]
    assert 0.1 < (len(codes) + len(utm)) / len(orders) < 0.35
    assert {"BLACKFRIDAY24", "SPRING23", "VELKOMMEN10"} <= set(codes)
    assert utm and all(u.startswith("nyhetsbrev-") for u in utm)
    black_friday = [o for o in orders if o["created_at"].startswith(("2024-11-25", "2024-11-29", "2024-12-02"))]
    assert any(o.get("discount_codes", [{}])[0].get("code") == "BLACKFRIDAY24" for o in black_friday)
    assert 0.98 * manifest.audience["orders_with_campaign"] <= len(codes) + len(utm)
    assert len(codes) + len(utm) <= manifest.audience["orders_with_campaign"]  # the rest: broken lines


# --- through hub -------------------------------------------------------------------------------------------------


def test_the_streams_reject_exactly_the_malformed_rows(
    demo: tuple[Path, Manifest], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root, manifest = demo
    hub = make_hub(root, tmp_path_factory.mktemp("mapped"))
    source = hub.connector("webshop")
    assert isinstance(source, Source)
    for stream in ("carts", "events"):
        records = [r for batch in source.read(stream, None) for r in batch.records]
        result = map_batch(hub.mapping("webshop", stream), records)
        assert len(records) == manifest.streams[f"webshop.{stream}"]
        assert len(result.rejects) == manifest.rejects[f"webshop.{stream}"]
        assert 0.002 < len(result.rejects) / len(records) < 0.01


def test_a_sync_attaches_carts_and_events_to_customers_and_loads_campaigns(
    demo: tuple[Path, Manifest], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root, manifest = demo
    hub = make_hub(root, tmp_path_factory.mktemp("synced"))
    upgrade(hub.engine)
    summary = SyncEngine(hub).sync()
    assert summary.ok
    with hub.engine.connect() as conn:
        live = conn.scalar(sa.select(sa.func.count()).where(Customer.__table__.c.merged_into.is_(None)))
        cart, event, order = Cart.__table__, Event.__table__, Order.__table__
        carts = conn.execute(sa.select(sa.func.count(), sa.func.count(cart.c.customer_id))).one()
        events = conn.execute(sa.select(sa.func.count(), sa.func.count(event.c.customer_id))).one()
        campaigns = conn.scalar(sa.select(sa.func.count()).where(order.c.campaign.is_not(None)))
        black_friday = conn.scalar(sa.select(sa.func.count()).where(order.c.campaign == "BLACKFRIDAY24"))
        items = conn.scalar(sa.select(cart.c.items_json).limit(1))
    assert live == manifest.expected_customers
    assert carts[0] == manifest.streams["webshop.carts"] - manifest.rejects["webshop.carts"] == carts[1]
    assert events[0] == manifest.streams["webshop.events"] - manifest.rejects["webshop.events"] == events[1]
    assert black_friday and 0.9 * manifest.audience["orders_with_campaign"] <= campaigns
    assert campaigns <= manifest.audience["orders_with_campaign"]
    assert isinstance(items, list) and {"sku", "quantity", "price"} <= set(items[0])
