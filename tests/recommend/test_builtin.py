"""The built-in recommender's cascade: follow-ups, group follow-ups, PIM accessories, bestsellers; never owned."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hub.config._audience import FollowupConfig, RecommendConfig, RecommendExclusions
from hub.connectors import RecommendationRequest
from hub.db import make_engine
from hub.recommend.builtin import recommend_builtin
from hub.recommend.followups import compute_followups
from hub.schema import upgrade
from tests.recommend._planted import NOW, START, Shop

SETTINGS = RecommendConfig(followups=FollowupConfig(min_support=2))


def shop_with_consoles(conn: sa.Connection) -> Shop:
    """CONSOLE1 buyers buy GAME3 next, CONSOLE2 buyers GAME4; GAME6 is CONSOLE1's accessory in the PIM; GAME7
    sells on its own; 30 others buy paint."""
    shop = Shop(conn)
    shop.products()
    for console, game in (("CONSOLE1", "GAME3"), ("CONSOLE2", "GAME4")):
        for n in range(10):
            person = shop.customer()
            shop.order(person, START + timedelta(days=n), console)
            shop.order(person, START + timedelta(days=n + 5), game)
    for _ in range(5):
        shop.order(shop.customer(), START, "GAME7")
    for _ in range(30):
        shop.order(shop.customer(), START, "PAINT1")
    shop.relation("CONSOLE1", "GAME6")
    shop.flush()
    compute_followups(conn, SETTINGS.followups, NOW)
    return shop


@pytest.fixture
def conn(sqlite_url: str) -> Iterator[sa.Connection]:
    engine = make_engine(sqlite_url)
    upgrade(engine)
    with engine.begin() as conn:
        yield conn
    engine.dispose()


def ask(conn: sa.Connection, settings: RecommendConfig = SETTINGS, **request: object) -> list[tuple[str, str]]:
    found = recommend_builtin(conn, {"r": RecommendationRequest(**request)}, NOW, settings)  # type: ignore[arg-type]
    return [(item.sku, item.reason) for item in found["r"]]


def test_the_cascade_goes_followups_group_followups_accessories_then_bestsellers(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    try:
        with engine.begin() as conn:
            shop_with_consoles(conn)
            got = ask(conn, customer_id=None, products=("CONSOLE1",), limit=4)
    finally:
        engine.dispose()
    assert [sku for sku, _ in got] == ["GAME3", "GAME4", "GAME6", "GAME7"]
    reasons = [reason for _, reason in got]
    assert reasons[0] == "bought next by 100% (10 of 10) of buyers of Console1 within 90d, lift 5.5"
    assert reasons[1].startswith("bought next by 50% (10 of 20) of consoles buyers within 90d, lift 2.8")
    assert reasons[2] == "accessory of Console1 (PIM), bought by 0 customers in 365d"
    assert reasons[3] == "bestseller in consoles accessories: bought by 5 customers in 365d"


def test_what_the_customer_owns_or_returned_and_what_is_excluded_is_never_suggested(conn: sa.Connection) -> None:
    shop = shop_with_consoles(conn)
    person = shop.customer()
    shop.order(person, NOW - timedelta(days=3), "CONSOLE1", "GAME3")
    shop.order(person, NOW - timedelta(days=2), "GAME4", is_return=True)
    shop.flush()
    settings = SETTINGS.model_copy(update={"exclude": RecommendExclusions(skus=["GAME6"])})
    got = [sku for sku, _ in ask(conn, settings, customer_id=person, products=("CONSOLE1",), limit=10)]
    assert got and not {"CONSOLE1", "GAME3", "GAME4", "GAME6"} & set(got)
    assert got[0] == "GAME7"


def test_an_excluded_group_is_never_suggested(conn: sa.Connection) -> None:
    shop_with_consoles(conn)
    settings = SETTINGS.model_copy(update={"exclude": RecommendExclusions(product_groups=["consoles"])})
    assert ask(conn, settings, customer_id=None, products=("CONSOLE1",), limit=5) == []


def test_a_customer_alone_gets_the_followups_of_what_they_bought_lately(conn: sa.Connection) -> None:
    shop = shop_with_consoles(conn)
    person = shop.customer()
    shop.order(person, NOW - timedelta(days=200), "CONSOLE1")  # long ago: its follow-ups are stale
    shop.order(person, NOW - timedelta(days=10), "CONSOLE2")
    shop.flush()
    assert ask(conn, customer_id=person, limit=1)[0][0] == "GAME4"


def test_a_customer_with_no_purchases_gets_the_overall_bestsellers(conn: sa.Connection) -> None:
    shop = shop_with_consoles(conn)
    person = shop.customer()
    shop.flush()
    assert [sku for sku, _ in ask(conn, customer_id=person, limit=2)] == ["PAINT1", "CONSOLE1"]
