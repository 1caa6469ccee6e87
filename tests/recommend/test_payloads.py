"""Which candidates get a ``recommendations`` block, and what the suggestions follow."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from hub.audience.triggers import prepare_due
from hub.config import HubConfig
from hub.config._audience import FollowupConfig
from hub.db import make_engine
from hub.models import Product
from hub.recommend.followups import compute_followups
from hub.schema import upgrade
from tests.recommend._planted import NOW, START, Shop


@pytest.fixture
def conn(sqlite_url: str) -> Iterator[sa.Connection]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    with engine.begin() as conn:
        shop = Shop(conn)
        shop.products()
        for n in range(10):
            person = shop.customer()
            shop.order(person, START + timedelta(days=n), "DRILL1")
            shop.order(person, START + timedelta(days=n + 2), "BITS2")
            shop.order(shop.customer(), START, "PAINT1")
        shop.order(shop.customer(), NOW - timedelta(days=5), "DRILL1")  # customer 21
        shop.flush()
        compute_followups(conn, FollowupConfig(), NOW)
        yield conn
    engine.dispose()


def config(**trigger: Any) -> HubConfig:
    birthday = {"on": "birthday", "message_type": "birthday", "to": {"esp": {"trigger_id": "b"}}, **trigger}
    return HubConfig.model_validate({"triggers": {"birthday": birthday}})


def candidate(customer_id: int) -> dict[str, Any]:
    return {
        "id": 1, "key": f"birthday:{customer_id}:2025", "trigger": "birthday", "message_type": "birthday",
        "customer_id": customer_id, "fired_at": NOW, "due_at": NOW, "status": "waiting", "facts": {"years": 40},
    }  # fmt: skip


def test_a_date_trigger_recommends_what_follows_the_customers_recent_purchases(conn: sa.Connection) -> None:
    (prepared,) = prepare_due(conn, config(recommendations={"limit": 2}), [candidate(21)], NOW)
    block = prepared.payload["recommendations"]  # type: ignore[index]
    assert block["source"] == "builtin"
    assert block["items"][0]["sku"] == "BITS2"


def test_a_trigger_without_recommendations_has_no_block(conn: sa.Connection) -> None:
    (prepared,) = prepare_due(conn, config(), [candidate(21)], NOW)
    assert prepared.payload is not None and "recommendations" not in prepared.payload


def test_a_limit_of_zero_means_no_block(conn: sa.Connection) -> None:
    (prepared,) = prepare_due(conn, config(recommendations={"limit": 0}), [candidate(21)], NOW)
    assert prepared.payload is not None and "recommendations" not in prepared.payload


def test_a_deleted_product_is_not_in_the_builtins_recommendations(conn: sa.Connection) -> None:
    Shop(conn).relation("DRILL1", "BITS4")  # suggested after BITS2, DRILL1's follow-up
    product = Product.__table__  # type: ignore[attr-defined]
    conn.execute(product.update().where(product.c.sku == "BITS2").values(deleted_at=NOW - timedelta(hours=1)))

    (prepared,) = prepare_due(conn, config(recommendations={"limit": 2}), [candidate(21)], NOW)

    block = prepared.payload["recommendations"]  # type: ignore[index]
    assert block["source"] == "builtin"
    assert [item["sku"] for item in block["items"]] == ["BITS4"]
