"""Delivery views: JSON-ready, set-based (a fixed number of queries per batch), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

import hub.models  # noqa: F401  # registers every table
from hub.db import make_engine
from hub.delivery.views import contact_delete_view, customer_views, hub_keys, jsonable, order_views
from tests.delivery._changes_fixtures import (
    BIRTH,
    T0,
    add_consent,
    add_customer,
    add_identity,
    add_order,
    add_product,
    customer_t,
)


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(database_url)
    SQLModel.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def people(engine: sa.Engine) -> sa.Engine:
    with engine.begin() as conn:
        add_customer(conn, 1, email="kari@example.no", first_name="Kari", birth_date=BIRTH, is_b2b=False)
        add_identity(conn, 1, "email", "kari.old@example.no", at=T0 + timedelta(days=1))
        add_identity(conn, 1, "external_id", "K1", system="erp")
        add_identity(conn, 1, "external_id", "K9", system="erp", at=T0 + timedelta(days=2))
        add_consent(conn, 1, "email", "opt_in")
        add_customer(conn, 2, phone="+4791234567")
        add_customer(conn, 3, member_no="7001")
        conn.execute(customer_t.update().where(customer_t.c.id == 3).values(merged_into=1))
    return engine


def count_statements(engine: sa.Engine) -> list[str]:
    """The SELECTs run on ``engine`` from now on (SQLite's BEGIN is not a query)."""
    seen: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            seen.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    return seen


def test_a_customer_view_is_json_ready(people):
    with people.connect() as conn:
        views = customer_views(conn, [1, 2, 404])
    assert sorted(views) == [1, 2]
    kari = views[1]
    assert kari["customer"]["birth_date"] == "1980-05-17"
    assert kari["customer"]["created_at"] == "2025-03-01T12:00:00+00:00"
    assert kari["customer"]["is_b2b"] is False
    assert kari["identities"] == {
        "email": ["kari@example.no", "kari.old@example.no"],
        "phone": [],
        "member_no": [],
        "external_id": {"erp": "K1"},
    }
    assert kari["consents"] == {
        "email": {"status": "opt_in", "at": "2025-03-01T12:00:00+00:00", "source": "erp", "evidence": None}
    }
    assert views[2]["consents"] == {}


def test_customer_views_cost_three_queries_whatever_the_batch(people):
    with people.connect() as conn:
        seen = count_statements(people)
        customer_views(conn, [1])
        one = len(seen)
        customer_views(conn, [1, 2, 3, *range(100, 600)])
    assert one == 3
    assert len(seen) == 2 * one


def test_hub_keys_and_the_delete_view(people):
    with people.connect() as conn:
        views = customer_views(conn, [1, 3])
    assert hub_keys(views[1]) == {
        "customer_id": 1,
        "email": "kari@example.no",
        "phone": None,
        "member_no": None,
        "external_ids": {"erp": "K1"},
    }
    assert contact_delete_view(views[3], merged_into=1, remote_id="R-3")["_hub"] == {
        "customer_id": 3,
        "email": None,
        "phone": None,
        "member_no": "7001",
        "external_ids": {},
        "merged_into": 1,
        "remote_id": "R-3",
    }


def test_an_order_view_has_its_lines_products_and_the_survivors_keys(people):
    with people.begin() as conn:
        add_product(conn, "AB-1", "Espresso machine", "coffee")
        add_order(conn, 10, 3, lines=[("AB-1", "1", "4990.00"), ("ZZ-9", "-2", "19.50")])
        add_order(conn, 11, None)
    with people.connect() as conn:
        views = order_views(conn, [10, 11])
    order = views[10]
    assert order["order"] == {
        "id": 10,
        "source": "pos",
        "external_id": "R-10",
        "placed_at": "2025-03-01T12:00:00+00:00",
        "channel": "pos",
        "store_external_id": "S1",
        "currency": "NOK",
        "total": "4951.0000",
        "status": None,
        "is_return": False,
        "original_order_external_id": None,
    }
    assert order["lines"] == [
        {
            "line_no": 0,
            "sku": "AB-1",
            "quantity": "1.0000",
            "unit_price": "4990.0000",
            "discount": None,
            "line_total": "4990.0000",
            "product_name": "Espresso machine",
            "product_group": "coffee",
        },
        {
            "line_no": 1,
            "sku": "ZZ-9",
            "quantity": "-2.0000",
            "unit_price": "19.5000",
            "discount": None,
            "line_total": "-39.0000",
            "product_name": None,
            "product_group": None,
        },
    ]
    assert order["_hub"]["customer_id"] == 1  # merged away: the survivor's keys
    assert views[11] == {"order": views[11]["order"], "lines": [], "_hub": None}


def test_order_views_cost_the_same_queries_whatever_the_batch(people):
    with people.begin() as conn:
        for n in range(1, 40):
            add_order(conn, n, 1 + n % 3, lines=[("AB-1", "1", "10")])
    with people.connect() as conn:
        seen = count_statements(people)
        order_views(conn, [1])
        one = len(seen)
        order_views(conn, list(range(1, 40)))
    assert len(seen) == 2 * one


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2025, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=1))), "2025-03-01T12:00:00+00:00"),
        (datetime(2025, 3, 1, 12, 0, tzinfo=UTC), "2025-03-01T12:00:00+00:00"),
        (date(2025, 3, 1), "2025-03-01"),
        (Decimal("19.50"), "19.50"),
        (float("nan"), None),
        ((1, {2}), [1, [2]]),
        ({1: Decimal(1)}, {"1": "1"}),
        (True, True),
    ],
)
def test_jsonable(value, expected):
    assert jsonable(value) == expected
