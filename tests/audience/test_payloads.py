"""Trigger payloads: orders, carts and recommended accessories loaded per batch, assembled JSON-safe."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub.audience.payloads import build_payload, customer_block, load_carts, load_orders, recommend_accessories
from hub.db import make_engine
from hub.models import Cart, Customer, Order, OrderLine, Product, ProductRelation
from hub.schema import upgrade

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
customer_t: sa.Table = Customer.__table__  # type: ignore[attr-defined]
order_t: sa.Table = Order.__table__  # type: ignore[attr-defined]
line_t: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]
product_t: sa.Table = Product.__table__  # type: ignore[attr-defined]
relation_t: sa.Table = ProductRelation.__table__  # type: ignore[attr-defined]
cart_t: sa.Table = Cart.__table__  # type: ignore[attr-defined]
PRICES = {"GRILL": 4990, "COVER": 499, "BRUSH": 99, "TONGS": 149, "APRON": 299}


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sa.Connection]:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade(engine)
    with engine.begin() as conn:
        for sku, price in PRICES.items():
            group = "grills" if sku in ("GRILL", "COVER") else None
            conn.execute(
                product_t.insert().values(
                    sku=sku, name=sku.title(), product_group=group, brand="Weber", is_accessory=sku == "COVER",
                    price=Decimal(price), source="pim", loaded_at=NOW,
                )
            )  # fmt: skip
        for related in ("COVER", "BRUSH", "TONGS", "APRON"):
            conn.execute(
                relation_t.insert().values(
                    sku="GRILL", related_sku=related, kind="accessory", source="p", loaded_at=NOW
                )
            )
        conn.execute(
            relation_t.insert().values(sku="GRILL", related_sku="GONE", kind="accessory", source="p", loaded_at=NOW)
        )
        for customer_id, merged_into in ((1, None), (2, None), (3, 1)):
            conn.execute(
                customer_t.insert().values(
                    id=customer_id, first_name=f"C{customer_id}", email=f"c{customer_id}@x.no", merged_into=merged_into,
                    created_at=NOW, updated_at=NOW,
                )
            )  # fmt: skip
        yield conn
    engine.dispose()


def add_order(conn: sa.Connection, order_id: int, customer_id: int, *skus: str, **values: Any) -> None:
    conn.execute(
        order_t.insert().values(
            id=order_id, source="pos", external_id=f"R{order_id}", customer_id=customer_id, placed_at=NOW,
            loaded_at=NOW, currency="NOK", store_external_id="600", **values,
        )
    )  # fmt: skip
    for number, sku in enumerate(skus, 1):
        conn.execute(
            line_t.insert().values(
                order_id=order_id, line_no=number, sku=sku, quantity=1, unit_price=PRICES.get(sku),
                line_total=PRICES.get(sku),
            )
        )  # fmt: skip


def test_an_order_without_a_total_adds_up_its_lines(conn: sa.Connection) -> None:
    add_order(conn, 10, 1, "GRILL", "COVER")
    add_order(conn, 11, 1, "GRILL", total=Decimal("4000.50"))
    orders = load_orders(conn, [10, 11, 99])
    assert set(orders) == {10, 11}
    assert orders[10]["total"] == 5489.0
    assert orders[11]["total"] == 4000.5
    assert orders[10]["lines"][1] == {
        "sku": "COVER", "name": "Cover", "product_group": "grills", "brand": "Weber", "quantity": 1.0,
        "unit_price": 499.0, "line_total": 499.0, "is_accessory": True,
    }  # fmt: skip


def test_cart_items_are_completed_from_the_products(conn: sa.Connection) -> None:
    items = {
        "items": [{"sku": "GRILL", "quantity": 2}, {"sku": "NEW", "name": "New thing", "price": 10, "quantity": 1}]
    }
    conn.execute(
        cart_t.insert().values(
            id=5, source="web", external_id="C5", customer_id=1, updated_at=NOW, items_json=items, loaded_at=NOW
        )
    )
    (cart,) = load_carts(conn, [5]).values()
    assert [(i["sku"], i["name"], i["unit_price"], i["line_total"]) for i in cart["items"]] == [
        ("GRILL", "Grill", 4990.0, 9980.0),
        ("NEW", "New thing", 10.0, 10.0),
    ]
    assert cart["items"][0]["product_group"] == "grills"


def test_accessories_rank_by_popularity_and_leave_out_what_the_customer_has(conn: sa.Connection) -> None:
    add_order(conn, 20, 2, "APRON")
    add_order(conn, 21, 2, "APRON")
    add_order(conn, 22, 2, "BRUSH")
    add_order(conn, 23, 3, "TONGS")  # customer 3 was merged into 1: customer 1 has the tongs
    got = recommend_accessories(conn, {"kari": (1, ["GRILL"], []), "ola": (2, ["GRILL"], ["COVER"])}, limit=3)
    assert [item["sku"] for item in got["kari"]] == ["APRON", "BRUSH", "COVER"]
    assert [item["sku"] for item in got["ola"]] == ["TONGS"]  # owns apron and brush, has the cover in the cart
    assert got["kari"][0] == {"sku": "APRON", "name": "Apron", "price": 299.0, "product_group": None, "brand": "Weber"}


def test_accessories_follow_the_relation_order_when_equally_popular(conn: sa.Connection) -> None:
    got = recommend_accessories(conn, {1: (1, ["GRILL"], [])}, limit=10)
    assert [item["sku"] for item in got[1]] == ["COVER", "BRUSH", "TONGS", "APRON"]  # GONE is no product


def test_a_deleted_accessory_is_never_offered(conn: sa.Connection) -> None:
    product = Product.__table__  # type: ignore[attr-defined]
    conn.execute(product.update().where(product.c.sku == "BRUSH").values(deleted_at=datetime.now(UTC)))
    got = recommend_accessories(conn, {1: (1, ["GRILL"], [])}, limit=10)
    assert [item["sku"] for item in got[1]] == ["COVER", "TONGS", "APRON"]


def test_no_accessories_without_relations_or_limit(conn: sa.Connection) -> None:
    assert recommend_accessories(conn, {1: (1, ["COVER"], [])}, limit=3) == {1: []}
    assert recommend_accessories(conn, {1: (1, ["GRILL"], [])}, limit=0) == {1: []}


def test_the_payload_is_json_safe_and_has_the_event_blocks(conn: sa.Connection) -> None:
    add_order(conn, 10, 1, "GRILL")
    order = load_orders(conn, [10])[10]
    view = {"customer": {"id": 1, "first_name": "Kari", "email": "k@x.no", "birth_date": "1980-03-10"}}
    customer = customer_block(view, {"tier": "A", "last_order_at": NOW, "monetary_lifetime": 4990.0})
    payload = build_payload(
        trigger="pp",
        message_type="post_purchase",
        on="order_placed",
        fired_at=NOW,
        branch="care",
        variant="a",
        customer=customer,
        facts={"order_id": 10, "product_groups": ["grills"]},
        order=order,
        accessories=[{"sku": "COVER", "name": "Cover", "price": Decimal("499.00")}],
    )
    assert json.loads(json.dumps(payload)) == payload
    assert payload["customer"]["tier"] == "A"
    assert payload["customer"]["last_order_at"] == NOW.isoformat()
    assert payload["order"]["placed_at"] == NOW.isoformat()
    assert payload["order"]["store"] == "600"
    assert "is_accessory" not in payload["order"]["lines"][0]
    assert payload["accessories"] == [{"sku": "COVER", "name": "Cover", "price": 499.0}]
    assert payload["event"] == {"type": "order_placed", "at": NOW.isoformat()}
    assert "cart" not in payload and "segment" not in payload


POINTS = {"points": 250, "expires_on": "2025-03-20"}
BIRTHDAY = {"date": "2025-03-10", "age": 45}


@pytest.mark.parametrize(
    ("on", "facts", "key", "value"),
    [
        ("segment_entered", {"segment": "tier_a"}, "segment", "tier_a"),
        ("points_expiring", POINTS, "points", POINTS),
        ("birthday", BIRTHDAY, "event", {"type": "birthday", "at": NOW.isoformat(), **BIRTHDAY}),
    ],
)
def test_each_event_kind_carries_its_own_block(on: str, facts: dict[str, Any], key: str, value: Any) -> None:
    payload = build_payload(
        trigger="t", message_type="m", on=on, fired_at=NOW + timedelta(0), branch=None, variant=None,
        customer={"id": 1}, facts=facts,
    )  # fmt: skip
    assert payload[key] == value
