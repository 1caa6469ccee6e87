"""Stock and price changes as triggers: ``back_in_stock`` and ``price_drop`` for the customers who hold the product.

The trigger tests write ``product_event`` rows as the loader does and fire at chosen moments (no sleeping); the
load tests run real syncs of a small ``files`` project and read the product events they recorded.
"""

from __future__ import annotations

import itertools
import json
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub.app import Hub
from hub.audience.policy import decide, due_candidates
from hub.audience.triggers import fire_triggers, prepare_due
from hub.config import HubConfig, load_config
from hub.db import make_engine
from hub.engine.run import SyncEngine
from hub.errors import ConfigError
from hub.models import (
    AudienceCandidate,
    Cart,
    ContactLog,
    Customer,
    Order,
    OrderLine,
    Product,
    ProductEvent,
    ProductRelation,
    WishlistItem,
)
from hub.plugins import make_plugin_manager
from hub.schema import upgrade

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
TO = {"esp": {"trigger_id": "T-product"}}

candidate_t: sa.Table = AudienceCandidate.__table__  # type: ignore[attr-defined]
customer_t: sa.Table = Customer.__table__  # type: ignore[attr-defined]
order_t: sa.Table = Order.__table__  # type: ignore[attr-defined]
line_t: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]
product_t: sa.Table = Product.__table__  # type: ignore[attr-defined]
relation_t: sa.Table = ProductRelation.__table__  # type: ignore[attr-defined]
cart_t: sa.Table = Cart.__table__  # type: ignore[attr-defined]
wish_t: sa.Table = WishlistItem.__table__  # type: ignore[attr-defined]
event_t: sa.Table = ProductEvent.__table__  # type: ignore[attr-defined]
log_t: sa.Table = ContactLog.__table__  # type: ignore[attr-defined]

_ids = itertools.count(1)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    with engine.begin() as conn:
        for sku, name, group, accessory, price, stock in (
            ("GRILL", "Gas grill", "grills", False, 5000, 2),
            ("COVER", "Grill cover", "grills", True, 500, 10),
            ("PAINT", "Wall paint", "paint", False, 400, 5),
        ):
            conn.execute(
                product_t.insert().values(
                    sku=sku, name=name, product_group=group, is_accessory=accessory, price=Decimal(price),
                    stock=Decimal(stock), source="pim", loaded_at=NOW - timedelta(days=100),
                )
            )  # fmt: skip
        conn.execute(
            relation_t.insert().values(
                sku="GRILL", related_sku="COVER", kind="accessory", source="pim", loaded_at=NOW - timedelta(days=100)
            )
        )
    yield engine
    engine.dispose()


def config(**triggers: dict[str, Any]) -> HubConfig:
    return HubConfig.model_validate(
        {
            "timezone": "Europe/Oslo",
            "triggers": triggers,
            "contact_pressure": {"exclusions": {"require_consent": False}},
        }
    )


def price_drop(**extra: Any) -> dict[str, Any]:
    return {"on": "price_drop", "message_type": "product_news", "to": TO, "accessories": 0, **extra}


def back_in_stock(**extra: Any) -> dict[str, Any]:
    return {"on": "back_in_stock", "message_type": "product_news", "to": TO, "accessories": 0, **extra}


def add_customer(conn: sa.Connection) -> int:
    customer_id = next(_ids)
    conn.execute(
        customer_t.insert().values(
            id=customer_id, email=f"c{customer_id}@example.no", first_name="Kari", created_at=NOW, updated_at=NOW
        )
    )
    return customer_id


def add_cart(conn: sa.Connection, customer_id: int, at: datetime, *skus: str, status: str = "open") -> int:
    cart_id = next(_ids)
    conn.execute(
        cart_t.insert().values(
            id=cart_id, source="web", external_id=f"C{cart_id}", customer_id=customer_id, updated_at=at,
            status=status, items_json=[{"sku": sku, "quantity": 1} for sku in skus], total=100, loaded_at=at,
        )
    )  # fmt: skip
    return cart_id


def add_wish(conn: sa.Connection, customer_id: int, sku: str, at: datetime) -> int:
    item_id = next(_ids)
    conn.execute(
        wish_t.insert().values(
            id=item_id, source="web", external_id=f"W{item_id}", customer_id=customer_id, sku=sku, added_at=at,
            loaded_at=at,
        )
    )  # fmt: skip
    return item_id


def add_order(conn: sa.Connection, customer_id: int, at: datetime, sku: str) -> None:
    order_id = next(_ids)
    conn.execute(
        order_t.insert().values(
            id=order_id, source="web", external_id=f"O{order_id}", customer_id=customer_id, placed_at=at, loaded_at=at
        )
    )
    conn.execute(line_t.insert().values(order_id=order_id, line_no=1, sku=sku, quantity=1, unit_price=100))


def change(conn: sa.Connection, sku: str, kind: str, old: float, new: float, at: datetime) -> int:
    """A product change as the loader records it, and the product as it is after it."""
    availability = {"was_available": old > 0, "available": new > 0} if kind == "stock" else {}
    event_id = conn.execute(
        event_t.insert().values(
            sku=sku, kind=kind, old_value=Decimal(str(old)), new_value=Decimal(str(new)), at=at, source="pim",
            loaded_at=at, **availability,
        )
    ).inserted_primary_key[0]  # fmt: skip
    column = "price" if kind == "price" else "stock"
    conn.execute(product_t.update().where(product_t.c.sku == sku).values({column: Decimal(str(new))}))
    return int(event_id)


def fire(engine: sa.Engine, hub: HubConfig, now: datetime = NOW) -> dict[str, int]:
    with engine.begin() as conn:
        return fire_triggers(conn, hub, now)


def candidates(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(candidate_t).order_by(candidate_t.c.customer_id, candidate_t.c.id)))


def prepare(engine: sa.Engine, hub: HubConfig, now: datetime = NOW) -> list[Any]:
    with engine.begin() as conn:
        return prepare_due(conn, hub, candidates(engine), now)


# -- price_drop -------------------------------------------------------------------------------------------------------


def test_a_price_drop_on_a_product_in_an_abandoned_cart_fires_once_for_its_customer(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        cart = add_cart(conn, kari, NOW - timedelta(days=3), "GRILL", "PAINT")
        add_customer(conn)  # holds nothing
        event = change(conn, "GRILL", "price", 5000, 4000, NOW - timedelta(hours=1))
    hub = config(pd=price_drop(min_drop="10%"))

    assert fire(engine, hub) == {"pd": 1}
    assert fire(engine, hub, NOW + timedelta(minutes=5)) == {"pd": 0}
    (row,) = candidates(engine)
    assert (row.key, row.customer_id, row.fired_at) == (
        f"pd:{kari}:product_event:{event}",
        kari,
        NOW - timedelta(hours=1),
    )
    assert (row.facts["sku"], row.facts["cart_id"], row.facts["wishlist_item_id"]) == ("GRILL", cart, None)


def test_no_price_drop_for_a_customer_who_bought_the_product_after_putting_it_in_the_cart(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        bought_since = add_customer(conn)
        add_cart(conn, bought_since, NOW - timedelta(days=3), "GRILL")
        add_order(conn, bought_since, NOW - timedelta(days=2), "GRILL")
        bought_before = add_customer(conn)  # bought one last year, and wants another
        add_order(conn, bought_before, NOW - timedelta(days=300), "GRILL")
        add_cart(conn, bought_before, NOW - timedelta(days=3), "GRILL")
        change(conn, "GRILL", "price", 5000, 4000, NOW - timedelta(hours=1))

    fire(engine, config(pd=price_drop()))

    assert [row.customer_id for row in candidates(engine)] == [bought_before]


def test_a_drop_smaller_than_min_drop_fires_nothing(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        add_cart(conn, kari, NOW - timedelta(days=3), "GRILL", "PAINT")
        change(conn, "GRILL", "price", 5000, 4550, NOW - timedelta(hours=2))  # 9 %
        change(conn, "PAINT", "price", 400, 360, NOW - timedelta(hours=1))  # exactly 10 %

    assert fire(engine, config(pct=price_drop(min_drop="10%"), amount=price_drop(min_drop=450))) == {
        "pct": 1,
        "amount": 1,
    }
    assert sorted((row.trigger, row.facts["sku"]) for row in candidates(engine)) == [
        ("amount", "GRILL"),
        ("pct", "PAINT"),
    ]


def test_a_cart_older_than_cart_max_age_or_converted_is_not_reminded(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        old = add_customer(conn)
        add_cart(conn, old, NOW - timedelta(days=40), "GRILL")
        converted = add_customer(conn)
        add_cart(conn, converted, NOW - timedelta(days=3), "GRILL", status="converted")
        recent = add_customer(conn)
        add_cart(conn, recent, NOW - timedelta(days=20), "GRILL")
        change(conn, "GRILL", "price", 5000, 4000, NOW - timedelta(hours=1))

    fire(engine, config(pd=price_drop(cart_max_age="30d")))

    assert [row.customer_id for row in candidates(engine)] == [recent]


def test_a_price_drop_on_a_product_out_of_stock_fires_nothing(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_cart(conn, add_customer(conn), NOW - timedelta(days=3), "GRILL")
        conn.execute(product_t.update().where(product_t.c.sku == "GRILL").values(stock=0))
        change(conn, "GRILL", "price", 5000, 4000, NOW - timedelta(hours=1))

    assert fire(engine, config(pd=price_drop())) == {"pd": 0}


def test_the_price_drop_payload_carries_the_product_old_and_new_price_and_the_cart(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        cart = add_cart(conn, kari, NOW - timedelta(days=3), "GRILL")
        add_wish(conn, kari, "GRILL", NOW - timedelta(days=10))
        change(conn, "GRILL", "price", 5000, 4000, NOW - timedelta(hours=1))
    hub = config(pd=price_drop(accessories=3))
    fire(engine, hub)

    (prepared,) = prepare(engine, hub)

    assert prepared.error is None
    payload = prepared.payload
    assert payload["product"] == {
        "sku": "GRILL", "name": "Gas grill", "product_group": "grills", "brand": None, "price": 4000.0,
        "stock": 2.0, "in_stock": True, "old_price": 5000.0, "price_drop": 1000.0, "price_drop_percent": 20.0,
    }  # fmt: skip
    assert payload["cart"]["id"] == cart
    assert payload["wishlist"] == {"added_at": (NOW - timedelta(days=10)).isoformat()}
    assert [item["sku"] for item in payload["accessories"]] == ["COVER"]
    assert prepared.views["esp"]["trigger_id"] == "T-product"


def test_a_purchase_during_the_delay_suppresses_the_reminder(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        add_cart(conn, kari, NOW - timedelta(days=3), "GRILL")
        change(conn, "GRILL", "price", 5000, 4000, NOW - timedelta(hours=1))
    hub = config(pd=price_drop(delay="2h"))
    fire(engine, hub)
    with engine.begin() as conn:
        add_order(conn, kari, NOW + timedelta(minutes=30), "GRILL")

    (prepared,) = prepare(engine, hub, NOW + timedelta(hours=2))

    assert prepared.error == "the customer bought product GRILL after putting it aside"


# -- back_in_stock ----------------------------------------------------------------------------------------------------


def test_back_in_stock_fires_for_a_customer_with_the_product_on_a_wishlist(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        item = add_wish(conn, kari, "GRILL", NOW - timedelta(days=60))
        later = add_customer(conn)  # wished for it after it came back: nothing to tell
        add_wish(conn, later, "GRILL", NOW - timedelta(minutes=30))
        change(conn, "COVER", "stock", 10, 8, NOW - timedelta(hours=2))  # in stock all along
        change(conn, "GRILL", "stock", 0, 5, NOW - timedelta(hours=1))
    hub = config(bis=back_in_stock(**{"from": ["wishlist"]}))

    assert fire(engine, hub) == {"bis": 1}
    (prepared,) = prepare(engine, hub)

    assert (prepared.customer_id, prepared.error) == (kari, None)
    assert prepared.payload["product"]["stock"] == 5.0
    assert prepared.payload["product"]["previous_stock"] == 0.0
    assert prepared.payload["wishlist"] == {"added_at": (NOW - timedelta(days=60)).isoformat()}
    assert "cart" not in prepared.payload
    assert candidates(engine)[0].facts["wishlist_item_id"] == item


def test_a_product_changed_twice_since_the_last_pass_makes_one_candidate_per_customer(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        add_wish(conn, kari, "GRILL", NOW - timedelta(days=60))
        change(conn, "GRILL", "stock", 0, 5, NOW - timedelta(hours=3))
        change(conn, "GRILL", "stock", 5, 0, NOW - timedelta(hours=2))
        latest = change(conn, "GRILL", "stock", 0, 2, NOW - timedelta(hours=1))

    assert fire(engine, config(bis=back_in_stock())) == {"bis": 1}
    assert candidates(engine)[0].facts["event_id"] == latest


# -- contact pressure -------------------------------------------------------------------------------------------------


def test_a_cap_holds_the_second_product_message_of_the_day(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        add_cart(conn, kari, NOW - timedelta(days=3), "GRILL", "PAINT")
        change(conn, "GRILL", "price", 5000, 4000, NOW - timedelta(hours=2))
        change(conn, "PAINT", "price", 400, 300, NOW - timedelta(hours=1))
    hub = HubConfig.model_validate(
        {
            "timezone": "UTC",
            "triggers": {"pd": price_drop()},
            "contact_pressure": {
                "message_types": {"product_news": {"priority": "triggered"}},
                "caps": [{"name": "one a day", "message_types": ["product_news"], "max": 1, "per": "1d"}],
                "exclusions": {"require_consent": False},
            },
        }
    )
    fire(engine, hub)

    with engine.begin() as conn:
        due = due_candidates(conn, NOW, limit=100)
        decide(conn, hub, prepare_due(conn, hub, due, NOW), NOW, destinations={})
    with engine.connect() as conn:
        decisions = [tuple(row) for row in conn.execute(sa.select(log_t.c.decision, log_t.c.rule).order_by(log_t.c.id))]

    assert decisions == [("send", "send"), ("hold", "cap:one a day")]


# -- configuration ----------------------------------------------------------------------------------------------------


def load_triggers(tmp_path: Path, triggers: str) -> list[str]:
    """The issues of a hub.yaml with these triggers (and the message type they use)."""
    text = "timezone: UTC\ncontact_pressure:\n  message_types: {product_news: {}}\ntriggers:\n"
    (tmp_path / "hub.yaml").write_text(text + textwrap.indent(textwrap.dedent(triggers), "  "), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "hub.yaml", make_plugin_manager(entrypoints=False), environ={})
    return [str(issue).replace(f"{tmp_path}/", "") for issue in info.value.issues]


def test_a_bad_min_drop_is_reported_with_file_and_line(tmp_path: Path) -> None:
    issues = load_triggers(
        tmp_path,
        """\
        pd:
          on: price_drop
          message_type: product_news
          min_drop: a lot
          to: {}
        """,
    )
    assert issues == ["hub.yaml:8: triggers.pd.min_drop: use a share of the old price or an amount: 10%, 100"]


def test_a_product_option_on_another_kind_of_trigger_is_refused(tmp_path: Path) -> None:
    issues = load_triggers(
        tmp_path,
        """\
        pp:
          on: order_placed
          message_type: product_news
          from: [wishlist]
          to: {}
        """,
    )
    assert issues == ["hub.yaml:5: triggers.pp: from: is for back_in_stock and price_drop triggers, not order_placed"]


# -- recording product events at load --------------------------------------------------------------------------------

PRODUCTS_MAPPING = """\
key: "{sku}"
entities:
  - entity: product
    fields:
      sku: sku
      name: name
      price: {path: price, type: decimal}
      updated_at: {path: updated_at, type: datetime}
"""


class Project:
    """A files project: a PIM products stream and Shopify-shaped inventory levels (the repository's mapping)."""

    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.files = 0
        (root / "mappings").mkdir()
        (root / "mappings" / "products.yaml").write_text(PRODUCTS_MAPPING, encoding="utf-8")
        streams = {name: {"paths": [f"data/{name}-*.jsonl"], "format": "jsonl"} for name in ("products", "inventory")}
        config = {
            "database": {"url": url},
            "project_dir": str(root),
            "timezone": "UTC",
            "connectors": {
                "shop": {
                    "plugin": "files",
                    "mapping": {
                        "products": "mappings/products.yaml",
                        "inventory": str(REPO / "mappings" / "shopify_inventory.yaml"),
                    },
                    "settings": {"streams": streams},
                }
            },
        }
        (root / "hub.yaml").write_text(json.dumps(config), encoding="utf-8")
        self.hub = Hub.load(root / "hub.yaml")
        upgrade(self.hub.engine)

    def sync(self, stream: str, *records: dict[str, Any]) -> None:
        self.files += 1
        lines = "".join(json.dumps(record) + "\n" for record in records)
        (self.root / "data").mkdir(exist_ok=True)
        (self.root / "data" / f"{stream}-{self.files:04d}.jsonl").write_text(lines, encoding="utf-8")
        result = SyncEngine(self.hub).sync_stream("shop", stream)
        assert result.status == "succeeded", result.error

    def events(self) -> list[tuple[Any, ...]]:
        query = sa.select(
            event_t.c.sku, event_t.c.kind, event_t.c.old_value, event_t.c.new_value, event_t.c.was_available,
            event_t.c.available,
        ).order_by(event_t.c.id)  # fmt: skip
        with self.hub.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]

    def stock(self, sku: str) -> Decimal | None:
        with self.hub.engine.connect() as conn:
            return conn.execute(sa.select(product_t.c.stock).where(product_t.c.sku == sku)).scalar()


@pytest.fixture
def project(tmp_path: Path, database_url: str) -> Iterator[Project]:
    made = Project(tmp_path, database_url)
    yield made
    made.hub.close()


def product(sku: str, price: str, day: int) -> dict[str, Any]:
    return {"sku": sku, "name": sku.title(), "price": price, "updated_at": f"2025-03-{day:02d}T08:00:00Z"}


def inventory(sku: str, available: int, day: int) -> dict[str, Any]:
    at = f"2025-03-{day:02d}T09:00:00Z"
    return {
        "id": f"gid://shopify/InventoryItem/{sku}",
        "sku": sku,
        "updated_at": at,
        "stock": {"sku": sku, "available": available},
    }


def test_a_product_load_that_changes_the_price_records_a_price_event(project: Project) -> None:
    project.sync("products", product("GRILL", "5000", 1), product("PAINT", "400", 1))  # first sight: no change

    project.sync("products", product("GRILL", "4000.00", 2), product("PAINT", "400.00", 1))

    assert project.events() == [("GRILL", "price", Decimal("5000.0000"), Decimal("4000.0000"), None, None)]


def test_reloading_unchanged_products_records_nothing_and_keeps_their_stock(project: Project) -> None:
    project.sync("products", product("GRILL", "5000", 1))
    project.sync("inventory", inventory("GRILL", 3, 1))

    project.sync("products", product("GRILL", "5000", 1))

    assert project.events() == []
    assert project.stock("GRILL") == Decimal(3)


def test_inventory_levels_record_stock_changes_once(project: Project) -> None:
    project.sync("products", product("GRILL", "5000", 1))
    project.sync("inventory", inventory("GRILL", 0, 2))  # the first level known: no change
    project.sync("inventory", inventory("GRILL", 4, 3))
    project.sync("inventory", inventory("GRILL", 4, 3))  # the same change read again
    project.sync("inventory", inventory("GRILL", 9, 1))  # older than the change already recorded

    assert project.events() == [("GRILL", "stock", Decimal(0), Decimal(4), False, True)]
    assert project.stock("GRILL") == Decimal(4)


def test_a_restock_loaded_by_a_sync_fires_back_in_stock_for_a_wishlist(project: Project) -> None:
    project.sync("products", product("GRILL", "5000", 1))
    project.sync("inventory", inventory("GRILL", 0, 2))
    with project.hub.engine.begin() as conn:
        add_wish(conn, add_customer(conn), "GRILL", datetime(2025, 3, 1, tzinfo=UTC))
    project.sync("inventory", inventory("GRILL", 4, 3))

    with project.hub.engine.begin() as conn:
        fired = fire_triggers(conn, config(bis=back_in_stock()), datetime(2025, 3, 3, 10, tzinfo=UTC))

    assert fired == {"bis": 1}


LOADED_PRODUCTS = """\
key: "{sku}"
entities:
  - entity: product
    fields:
      sku: sku
      price: {path: price, type: decimal}
      stock: {path: stock, type: decimal}
      in_stock: {path: in_stock, type: bool}
"""
LOADED_WISHLISTS = """\
key: "{email}:{sku}"
entities:
  - entity: customer
    fields:
      email: {path: email, transforms: [email]}
  - entity: wishlist_item
    fields:
      external_id: {paths: [email, sku], transforms: [{concat: {sep: ":"}}]}
      sku: sku
      added_at: {path: added_at, type: datetime}
      removed_at: {path: removed_at, type: datetime}
"""


def test_a_wishlist_and_stock_loaded_through_mappings_fire_back_in_stock(tmp_path: Path, database_url: str) -> None:
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "products.yaml").write_text(LOADED_PRODUCTS, encoding="utf-8")
    (tmp_path / "mappings" / "wishlists.yaml").write_text(LOADED_WISHLISTS, encoding="utf-8")
    streams = {name: {"paths": [f"data/{name}-*.jsonl"], "format": "jsonl"} for name in ("products", "wishlists")}
    config = {
        "database": {"url": database_url},
        "project_dir": str(tmp_path),
        "timezone": "UTC",
        "connectors": {
            "shop": {
                "plugin": "files",
                "mapping": {"products": "mappings/products.yaml", "wishlists": "mappings/wishlists.yaml"},
                "settings": {"streams": streams},
            }
        },
    }
    (tmp_path / "hub.yaml").write_text(json.dumps(config), encoding="utf-8")
    hub = Hub.load(tmp_path / "hub.yaml")
    upgrade(hub.engine)
    files = iter(range(1, 100))

    def sync(stream: str, *records: dict) -> None:
        (tmp_path / "data").mkdir(exist_ok=True)
        lines = "".join(json.dumps(r) + "\n" for r in records)
        (tmp_path / "data" / f"{stream}-{next(files):04d}.jsonl").write_text(lines, encoding="utf-8")
        result = SyncEngine(hub).sync_stream("shop", stream)
        assert result.status == "succeeded", result.error

    try:
        sync("products", {"sku": "GRILL", "price": "5000", "stock": "0", "in_stock": False})
        sync("wishlists", {"email": "kari@example.no", "sku": "GRILL", "added_at": "2025-03-01T10:00:00Z"})
        sync("products", {"sku": "GRILL", "price": "5000", "stock": "3", "in_stock": True})
        with hub.engine.begin() as conn:
            rows = list(
                conn.execute(sa.text("SELECT kind, old_value, new_value, was_available, available FROM product_event"))
            )
            hub_config = HubConfig.model_validate(
                {"triggers": {"bis": {"on": "back_in_stock", "message_type": "x", "to": {"esp": {"trigger_id": "t"}}}}}
            )
            fired = fire_triggers(conn, hub_config, datetime.now(UTC))
        assert [tuple(r) for r in rows] == [("stock", Decimal(0), Decimal(3), False, True)]
        assert fired == {"bis": 1}
    finally:
        hub.close()
