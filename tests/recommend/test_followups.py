"""The follow-up analysis: planted "bought next" patterns come out on top, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.config._audience import FollowupConfig
from hub.db import make_engine
from hub.models import ProductFollowup
from hub.recommend.followups import compute_followups, last_computed, read_followups
from hub.schema import upgrade
from tests.recommend._planted import BESTSELLER, NOW, START, Plant, Shop, plant

followup_t: sa.Table = ProductFollowup.__table__  # type: ignore[attr-defined]


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite(sqlite_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def bystanders(shop: Shop, n: int = 20) -> None:
    """Customers who bought only paint: without them every product would be bought by everyone (lift 1)."""
    for _ in range(n):
        shop.order(shop.customer(), START, "PAINT1")


def top(conn: sa.Connection, kind: str, antecedent: str) -> list[str]:
    return [rule.sku for rule in read_followups(conn, kind, [antecedent], per_antecedent=5).get(antecedent, [])]  # type: ignore[arg-type]


def test_planted_pairs_rank_first_for_their_product_and_their_group(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        plant(conn, random.Random(7))
        summary = compute_followups(conn, FollowupConfig(), NOW)
    with engine.connect() as conn:
        assert top(conn, "product", "CONSOLE1")[0] == "GAME3"
        assert top(conn, "product", "DRILL2")[0] == "BITS4"
        assert top(conn, "group", "consoles")[0] == "GAME3"
        assert BESTSELLER not in top(conn, "product", "CONSOLE1")  # taken by 40 % of everyone: lift near 1
    assert summary.products > 0 and summary.groups > 0


def test_the_rule_carries_support_buyers_confidence_and_lift(sqlite: sa.Engine) -> None:
    with sqlite.begin() as conn:
        shop = Shop(conn)
        shop.products()
        for n in range(10):  # ten console buyers; eight buy the game a week later
            person = shop.customer()
            at = START + timedelta(days=n)
            shop.order(person, at, "CONSOLE1")
            if n < 8:
                shop.order(person, at + timedelta(days=7), "GAME3")
        bystanders(shop, 10)
        shop.flush()
        compute_followups(conn, FollowupConfig(min_support=2), NOW)
        (rule,) = read_followups(conn, "product", ["CONSOLE1"], per_antecedent=5)["CONSOLE1"]
    assert (rule.sku, rule.support, rule.buyers) == ("GAME3", 8, 10)
    assert rule.confidence == pytest.approx(0.8)
    assert rule.lift == pytest.approx(0.8 / (8 / 20))  # 8 of the 20 buying customers bought the game
    assert rule.score == pytest.approx((8 - 10 * 0.4) / (10 + 10))


def test_the_same_order_and_after_the_window_are_not_next(sqlite: sa.Engine) -> None:
    with sqlite.begin() as conn:
        shop = Shop(conn)
        shop.products()
        for n in range(5):
            shop.order(shop.customer(), START + timedelta(days=n), "CONSOLE1", "GAME1")  # bought together
            person = shop.customer()
            shop.order(person, START, "CONSOLE1")
            shop.order(person, START + timedelta(days=100), "GAME2")  # after the 90-day window
            person = shop.customer()
            shop.order(person, START, "CONSOLE1")
            shop.order(person, START + timedelta(days=89), "GAME3")
        bystanders(shop)
        shop.flush()
        compute_followups(conn, FollowupConfig(), NOW)
        assert top(conn, "product", "CONSOLE1") == ["GAME3"]


def test_returns_are_not_purchases_and_merged_customers_count_as_one(sqlite: sa.Engine) -> None:
    with sqlite.begin() as conn:
        shop = Shop(conn)
        shop.products()
        for _ in range(4):
            person = shop.customer()
            duplicate = shop.customer(merged_into=person)
            shop.order(person, START, "CONSOLE1")
            shop.order(duplicate, START + timedelta(days=3), "GAME3")  # the same person, on another record
            shop.order(person, START + timedelta(days=4), "GAME4", is_return=True)
        bystanders(shop)
        shop.flush()
        compute_followups(conn, FollowupConfig(), NOW)
        assert top(conn, "product", "CONSOLE1") == ["GAME3"]


def test_pairs_below_the_minimum_support_are_dropped(sqlite: sa.Engine) -> None:
    with sqlite.begin() as conn:
        shop = Shop(conn)
        shop.products()
        for n in range(3):
            person = shop.customer()
            shop.order(person, START, "CONSOLE1")
            shop.order(person, START + timedelta(days=1), "GAME3" if n < 2 else "GAME4")
        bystanders(shop)
        shop.flush()
        compute_followups(conn, FollowupConfig(min_support=2), NOW)
        assert top(conn, "product", "CONSOLE1") == ["GAME3"]


def test_a_rebuild_replaces_the_rules_and_notes_when(sqlite: sa.Engine) -> None:
    with sqlite.begin() as conn:
        plant(conn, random.Random(1), customers=120)
        first = compute_followups(conn, FollowupConfig(), NOW)
        second = compute_followups(conn, FollowupConfig(), NOW + timedelta(days=1))
        rows = conn.execute(sa.select(sa.func.count()).select_from(followup_t)).scalar_one()
        noted = last_computed(conn)
    assert rows == first.products + first.groups == second.products + second.groups
    assert noted is not None and noted["at"] == (NOW + timedelta(days=1)).isoformat()


@settings(max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture])  # tables emptied per example
@given(
    seed=st.integers(0, 2**32 - 1),
    probability=st.floats(0.5, 0.95),
    within=st.integers(3, 60),
    reach=st.floats(0.2, 0.5),
)
def test_a_planted_pattern_ranks_first_whatever_its_strength_and_window(
    sqlite: sa.Engine, seed: int, probability: float, within: int, reach: float
) -> None:
    pattern = Plant("GRILL2", "COVER5", probability=probability, within=within, reach=reach)
    with sqlite.begin() as conn:
        for table in ("order_line", "orders", "customer", "product", "product_followup"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
        plant(conn, random.Random(seed), customers=200, plants=[pattern])
        compute_followups(conn, FollowupConfig(), NOW)
        assert top(conn, "product", "GRILL2")[0] == "COVER5"
