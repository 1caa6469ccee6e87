"""Computed attributes: every figure equals a plain-Python computation over the same generated orders."""

from __future__ import annotations

import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
import sqlalchemy as sa

from hub.audience.attributes import compute_attributes, read_attributes, touched_customers
from hub.audience.rfm import rfm_segment
from hub.audience.types import AttributeSpec
from hub.config._audience import AttributesConfig, TierConfig
from hub.db import make_engine
from hub.models import Customer, CustomerAttributes, CustomerGroup, CustomerMerge, Order, OrderLine, Product
from hub.models.commerce import ProductRelation
from hub.schema import upgrade

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2022, 1, 1, tzinfo=UTC)
customers_t: sa.Table = Customer.__table__  # type: ignore[attr-defined]
orders_t: sa.Table = Order.__table__  # type: ignore[attr-defined]
lines_t: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]
products_t: sa.Table = Product.__table__  # type: ignore[attr-defined]
relations_t: sa.Table = ProductRelation.__table__  # type: ignore[attr-defined]
attributes_t: sa.Table = CustomerAttributes.__table__  # type: ignore[attr-defined]
groups_t: sa.Table = CustomerGroup.__table__  # type: ignore[attr-defined]


@pytest.fixture
def engine(sqlite_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def add_customers(conn: sa.Connection, *ids: int, at: datetime = T0, **columns: Any) -> None:
    conn.execute(sa.insert(customers_t), [{"id": i, "created_at": at, "updated_at": at, **columns} for i in ids])


def add_order(
    conn: sa.Connection,
    order_id: int,
    customer_id: int,
    placed_at: datetime,
    total: float | None,
    *,
    is_return: bool = False,
    channel: str | None = None,
    store: str | None = None,
    lines: list[tuple[str, float]] = (),  # type: ignore[assignment]
    loaded_at: datetime = T0,
) -> None:
    conn.execute(
        sa.insert(orders_t).values(
            id=order_id,
            source="pos",
            external_id=str(order_id),
            customer_id=customer_id,
            placed_at=placed_at,
            total=total,
            is_return=is_return,
            channel=channel,
            store_external_id=store,
            loaded_at=loaded_at,
        )
    )
    for line_no, (sku, line_total) in enumerate(lines, 1):
        conn.execute(
            sa.insert(lines_t).values(order_id=order_id, line_no=line_no, sku=sku, quantity=1, line_total=line_total)
        )


def add_product(conn: sa.Connection, sku: str, group: str | None, *, accessory: bool = False) -> None:
    conn.execute(
        sa.insert(products_t).values(sku=sku, product_group=group, is_accessory=accessory, source="erp", loaded_at=T0)
    )


def stored(conn: sa.Connection) -> dict[int, dict[str, Any]]:
    return {row["customer_id"]: dict(row) for row in conn.execute(sa.select(attributes_t)).mappings()}


# ------------------------------------------------------------------------------------------ the reference


def ntile5(ordered: list[int]) -> dict[int, int]:
    """SQL's NTILE(5) over an ordered list: the first len % 5 buckets hold one more."""
    n, scores, index = len(ordered), {}, 0
    for bucket in range(5):
        size = n // 5 + (1 if bucket < n % 5 else 0)
        for customer in ordered[index : index + size]:
            scores[customer] = bucket + 1
        index += size
    return scores


def reference(orders: list[dict[str, Any]], customers: list[int], now: datetime, config: AttributesConfig) -> dict:
    """The attributes, computed the obvious way, one customer at a time."""
    by_customer: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for order in orders:
        if order["placed_at"] <= now:
            by_customer[order["customer_id"]].append(order)
    result: dict[int, dict[str, Any]] = {}
    for customer in customers:
        mine = by_customer[customer]
        bought = [o for o in mine if not o["is_return"]]
        returned = [o for o in mine if o["is_return"]]
        value = {o["id"]: -abs(o["value"]) if o["is_return"] else o["value"] for o in mine}
        purchased = sum(value[o["id"]] for o in bought)
        returns = sum(-value[o["id"]] for o in returned)
        monetary = sum(value.values())
        start = now - config.window
        days = sorted({o["placed_at"].date() for o in bought})
        gaps = [(b - a).days for a, b in pairwise(days)]
        mean = (days[-1] - days[0]).days / (len(days) - 1) if len(days) > 1 else None
        last = max((o["placed_at"] for o in bought), default=None)

        def favourite(key: str, orders: list[dict[str, Any]] = bought) -> str | None:
            counts = Counter(o[key] for o in orders if o[key] is not None)
            if not counts:
                return None
            latest = {k: max(o["placed_at"] for o in orders if o[key] == k) for k in counts}
            return sorted(counts, key=lambda k: (-counts[k], -latest[k].timestamp(), k))[0]

        result[customer] = {
            "first_order_at": min((o["placed_at"] for o in bought), default=None),
            "last_order_at": last,
            "orders_lifetime": len(bought),
            "orders_window": sum(1 for o in bought if o["placed_at"] >= start),
            "monetary_lifetime": monetary,
            "monetary_window": sum(value[o["id"]] for o in mine if o["placed_at"] >= start),
            "returns_value": returns,
            "return_rate": returns / purchased if purchased > 0 else None,
            "avg_order_value": monetary / len(bought) if bought else None,
            "mean_days_between": mean,
            "median_days_between": statistics.median(gaps) if gaps else None,
            "expected_next_order_at": last + timedelta(seconds=round(mean * 86400)) if mean is not None else None,
            "favourite_store": favourite("store"),
            "favourite_channel": favourite("channel"),
        }
    buyers = [c for c in customers if result[c]["orders_lifetime"] > 0]
    r = ntile5(sorted(buyers, key=lambda c: (result[c]["last_order_at"], c)))
    f = ntile5(sorted(buyers, key=lambda c: (result[c]["orders_lifetime"], c)))
    m = ntile5(sorted(buyers, key=lambda c: (result[c]["monetary_lifetime"], c)))
    for c in customers:
        scores = (r.get(c), f.get(c), m.get(c))
        result[c].update(r_score=scores[0], f_score=scores[1], m_score=scores[2], rfm_segment=rfm_segment(*scores))
    # Tiers: walk down the value ranking; a tier holds while the value before the customer is under its bound.
    by = config.tiers.by
    total = sum(max(result[c][by], 0) for c in customers)
    names, before = list(config.tiers.shares), 0.0
    for c in sorted(customers, key=lambda c: (-result[c][by], c)):
        value = result[c][by]
        tier, bound = names[-1], 0.0
        if value > 0:
            for name in names:
                bound += config.tiers.shares[name]
                if before / total < bound:
                    tier = name
                    break
        result[c]["tier"] = tier
        before += max(value, 0)
    return result


def generate(conn: sa.Connection, rng: random.Random, customers: int) -> list[dict[str, Any]]:
    """Random orders: same-day repeats, returns, NULL totals (value from the lines), a few future orders."""
    add_customers(conn, *range(1, customers + 1))
    add_product(conn, "sku-1", "grills")
    orders, order_id = [], 0
    for customer in range(1, customers + 1):
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 5, 8])):
            order_id += 1
            placed = NOW - timedelta(days=rng.randint(-3, 900), seconds=rng.randint(0, 86399))
            if orders and rng.random() < 0.15 and orders[-1]["customer_id"] == customer:
                placed = orders[-1]["placed_at"].replace(hour=23, minute=59)  # same day, later
            value = round(rng.uniform(5, 500), 2)
            order = {
                "id": order_id,
                "customer_id": customer,
                "placed_at": placed,
                "value": value,
                "is_return": rng.random() < 0.1,
                "store": rng.choice([None, "S1", "S2", "S3"]),
                "channel": rng.choice(["web", "store", "app"]),
            }
            orders.append(order)
            from_lines = rng.random() < 0.2
            add_order(
                conn,
                order_id,
                customer,
                placed,
                None if from_lines else (-value if order["is_return"] else value),
                is_return=order["is_return"],
                channel=order["channel"],
                store=order["store"],
                lines=[("sku-1", value / 2), ("sku-1", value / 2)] if from_lines else [],
            )
    return orders


def check_against_reference(engine: sa.Engine, seed: int) -> None:
    rng = random.Random(seed)
    config = AttributesConfig(tiers=TierConfig(by="monetary_lifetime", shares={"A": 0.5, "B": 0.3, "C": 0.2}))
    with engine.begin() as conn:
        orders = generate(conn, rng, 120)
        compute_attributes(conn, config, NOW)
        got = stored(conn)
    expected = reference(orders, list(range(1, 121)), NOW, config)
    assert sorted(got) == sorted(expected)
    for customer, want in expected.items():
        row = got[customer]
        for name, value in want.items():
            if isinstance(value, float):
                assert row[name] == pytest.approx(value, abs=1e-6), (customer, name)
            else:
                assert row[name] == value, (customer, name)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_attributes_equal_a_straightforward_computation_on_generated_data(engine, seed):
    check_against_reference(engine, seed)


def test_the_sql_computes_the_same_figures_on_each_dialect(database_url):
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        check_against_reference(engine, 4)
    finally:
        engine.dispose()


def test_the_default_tiers_follow_the_window_value(engine):
    with engine.begin() as conn:
        add_customers(conn, 1, 2, 3, 4, 5)
        for customer, value in ((1, 50.0), (2, 30.0), (3, 10.0), (4, 10.0)):
            add_order(conn, customer, customer, NOW - timedelta(days=10), value)
        add_order(conn, 9, 3, NOW - timedelta(days=400), 1000.0)  # outside the 365-day window
        summary = compute_attributes(conn, AttributesConfig(), NOW)
        tiers = {c: row["tier"] for c, row in stored(conn).items()}
    # 1 makes the first 50 %; 2 starts at 50 % (B until 80 %); 3 and 4 start at 80 % and 90 %; 5 has nothing.
    assert tiers == {1: "A", 2: "B", 3: "C", 4: "C", 5: "C"}
    assert summary.tiers == {"A": 1, "B": 1, "C": 3}


def test_every_live_customer_gets_a_row_and_merged_away_ones_none(engine):
    with engine.begin() as conn:
        add_customers(conn, 1, 2, 3)
        add_order(conn, 1, 1, NOW - timedelta(days=1), 10.0)
        compute_attributes(conn, AttributesConfig(), NOW)
        conn.execute(customers_t.update().where(customers_t.c.id == 3).values(merged_into=1))
        summary = compute_attributes(conn, AttributesConfig(), NOW)
        rows = stored(conn)
    assert sorted(rows) == [1, 2]
    assert summary.customers == 2 and summary.full
    assert rows[2]["orders_lifetime"] == 0 and rows[2]["r_score"] is None and rows[2]["tier"] == "C"
    assert rows[2]["product_groups"] == [] and rows[2]["extra"] == {}


def test_an_incremental_compute_equals_a_full_one(engine):
    rng = random.Random(7)
    config = AttributesConfig()
    with engine.begin() as conn:
        generate(conn, rng, 60)
        compute_attributes(conn, config, NOW)
        add_order(conn, 10_000, 5, NOW - timedelta(hours=1), 9999.0, channel="web")
        add_order(conn, 10_001, 6, NOW - timedelta(hours=2), 1.0, channel="web")
        conn.execute(customers_t.update().where(customers_t.c.id == 7).values(merged_into=5))
        summary = compute_attributes(conn, config, NOW, customer_ids=[5, 6, 7])
        incremental = stored(conn)
        compute_attributes(conn, config, NOW)
        full = stored(conn)
    assert summary.customers == 2 and not summary.full
    assert 7 not in incremental
    assert incremental == full


def test_product_groups_and_accessories_by_flag_or_by_relation(engine):
    with engine.begin() as conn:
        add_customers(conn, 1, 2, 3)
        add_product(conn, "grill", "grills")
        add_product(conn, "cover", "grills", accessory=True)
        add_product(conn, "drill", "tools")
        add_product(conn, "charcoal", "fuel")
        conn.execute(
            sa.insert(relations_t).values(sku="grill", related_sku="charcoal", kind="accessory", source="erp",
                                          loaded_at=T0)
        )  # fmt: skip
        day = NOW - timedelta(days=5)
        add_order(conn, 1, 1, day, 100.0, lines=[("grill", 90.0), ("cover", 10.0)])
        add_order(conn, 2, 2, day, 100.0, lines=[("grill", 100.0)])
        add_order(conn, 3, 2, day + timedelta(days=1), 10.0, lines=[("charcoal", 10.0)])
        add_order(conn, 4, 3, day, 100.0, lines=[("grill", 50.0), ("drill", 50.0)])
        compute_attributes(conn, AttributesConfig(), NOW)
        groups = {(row.customer_id, row.product_group): row for row in conn.execute(sa.select(groups_t)).all()}
        attributes = stored(conn)
    assert sorted(groups) == [(1, "grills"), (2, "fuel"), (2, "grills"), (3, "grills"), (3, "tools")]
    assert groups[(1, "grills")].accessory_owned and groups[(1, "grills")].main_last_bought_at == day
    assert groups[(2, "grills")].accessory_owned  # charcoal is related to the grill as its accessory
    assert groups[(2, "grills")].accessory_last_bought_at == day + timedelta(days=1)
    assert not groups[(3, "grills")].accessory_owned and not groups[(3, "tools")].accessory_owned
    assert attributes[3]["product_groups"] == ["grills", "tools"]


def test_plugin_attributes_are_stored_in_extra_and_read_back(engine):
    seen: list[Any] = []

    def lucky(conn: sa.Connection, customer_ids: Any, now: datetime) -> list[tuple[int, Any]]:
        seen.append(customer_ids)
        return [(1, 7), (2, date(2020, 1, 2))]

    specs = {"lucky": AttributeSpec("lucky", "int", "a number", lucky)}
    with engine.begin() as conn:
        add_customers(conn, 1, 2, 3)
        compute_attributes(conn, AttributesConfig(), NOW, plugin_attributes=specs)
        values = read_attributes(conn, [1, 2, 3], NOW, plugin_attributes=specs)
    assert seen == [None]
    assert [values[c]["lucky"] for c in (1, 2, 3)] == [7, "2020-01-02", None]


def test_read_attributes_derives_the_virtual_ones_from_now(engine):
    with engine.begin() as conn:
        add_customers(conn, 1, email="a@example.com", birth_date=date(1990, 6, 2))
        add_customers(conn, 2, member_no="M2", is_b2b=True)
        add_order(conn, 1, 1, NOW - timedelta(days=30, hours=1), 10.0)
        add_order(conn, 2, 1, NOW - timedelta(days=10, hours=1), 10.0)
        compute_attributes(conn, AttributesConfig(), NOW)
        values = read_attributes(conn, [1, 2, 404], NOW)
    one, two = values[1], values[2]
    assert 404 not in values
    assert one["days_since_last_order"] == 10 and one["days_since_first_order"] == 30
    assert one["mean_days_between"] == 20.0 and one["overdue_factor"] == pytest.approx(0.5)
    assert one["days_overdue"] == pytest.approx(-(10 - 1 / 24))  # expected at last order + 20 days
    assert one["age"] == 34 and one["has_email"] and not one["is_member"]
    assert two["is_member"] and two["is_b2b"] and two["days_since_last_order"] is None
    assert two["orders_lifetime"] == 0


def test_touched_customers_counts_orders_rows_and_merges_for_the_survivor(engine):
    later = T0 + timedelta(days=1)
    with engine.begin() as conn:
        add_customers(conn, 1, 2, 3, 4, 5)
        add_order(conn, 1, 2, T0, 10.0, loaded_at=later)
        conn.execute(customers_t.update().where(customers_t.c.id == 3).values(updated_at=later))
        conn.execute(customers_t.update().where(customers_t.c.id == 5).values(merged_into=4, updated_at=later))
        conn.execute(
            sa.insert(CustomerMerge.__table__).values(  # type: ignore[attr-defined]
                survivor_id=4, merged_id=5, rule="email", keys=[], source="pos", at=later
            )
        )
        assert touched_customers(conn, later) == [2, 3, 4]
        assert touched_customers(conn, later + timedelta(seconds=1)) == []
