"""The built-in recommender's cascade: follow-ups, group follow-ups, PIM accessories, bestsellers; never owned."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hub.config._audience import FollowupConfig, RecommendConfig, RecommendExclusions
from hub.connectors import RecommendationRequest
from hub.db import make_engine
from hub.engine.load import load_batch
from hub.recommend.builtin import recommend_builtin
from hub.recommend.followups import compute_followups
from hub.records import Mapped
from hub.schema import upgrade
from tests.recommend._planted import NOW, START, Shop, product_t

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


def delete(conn: sa.Connection, *skus: str) -> None:
    """Mark ``skus`` deleted, as a source's tombstone does (:mod:`hub.engine.deletions`)."""
    conn.execute(product_t.update().where(product_t.c.sku.in_(skus)).values(deleted_at=NOW - timedelta(days=1)))


def test_a_deleted_product_is_not_recommended_as_a_followup(conn: sa.Connection) -> None:
    shop = shop_with_consoles(conn)
    for n in range(6):  # GAME5 follows CONSOLE1 too, less often than GAME3
        person = shop.customer()
        shop.order(person, START + timedelta(days=n), "CONSOLE1")
        shop.order(person, START + timedelta(days=n + 5), "GAME5")
    shop.flush()
    compute_followups(conn, SETTINGS.followups, NOW)
    assert ask(conn, customer_id=None, products=("CONSOLE1",), limit=1)[0][0] == "GAME3"

    delete(conn, "GAME3")
    got = ask(conn, customer_id=None, products=("CONSOLE1",), limit=10)

    assert "GAME3" not in [sku for sku, _ in got]
    assert got[0] == ("GAME5", "bought next by 38% (6 of 16) of buyers of Console1 within 90d, lift 3.8")


def test_a_deleted_product_is_not_recommended_as_a_group_followup(conn: sa.Connection) -> None:
    shop_with_consoles(conn)  # nobody bought CONSOLE3: only its group's follow-ups, GAME3 and GAME4 alike
    assert ask(conn, customer_id=None, products=("CONSOLE3",), limit=1)[0][0] == "GAME3"

    delete(conn, "GAME3")
    got = ask(conn, customer_id=None, products=("CONSOLE3",), limit=1)

    assert got == [("GAME4", "bought next by 50% (10 of 20) of consoles buyers within 90d, lift 2.8")]


def test_a_deleted_product_is_not_recommended_as_an_accessory(conn: sa.Connection) -> None:
    shop = shop_with_consoles(conn)  # nobody bought tools: DRILL1's only suggestions are its PIM accessories
    shop.relation("DRILL1", "BITS1")
    shop.relation("DRILL1", "BITS2")
    assert [sku for sku, _ in ask(conn, customer_id=None, products=("DRILL1",), limit=10)] == ["BITS1", "BITS2"]

    delete(conn, "BITS1")
    got = ask(conn, customer_id=None, products=("DRILL1",), limit=10)

    assert got == [("BITS2", "accessory of Drill1 (PIM), bought by 0 customers in 365d")]


def test_a_deleted_product_is_not_recommended_as_a_bestseller_of_the_group(conn: sa.Connection) -> None:
    shop = shop_with_consoles(conn)
    for n in range(4):
        shop.order(shop.customer(), START + timedelta(days=1), "BITS3", *(["BITS5"] if n < 2 else []))
    shop.flush()
    assert [sku for sku, _ in ask(conn, customer_id=None, products=("DRILL1",), limit=1)] == ["BITS3"]

    delete(conn, "BITS3")
    got = ask(conn, customer_id=None, products=("DRILL1",), limit=10)

    assert got == [("BITS5", "bestseller in tools accessories: bought by 2 customers in 365d")]


def test_a_deleted_product_is_not_recommended_as_an_overall_bestseller(conn: sa.Connection) -> None:
    shop = shop_with_consoles(conn)
    person = shop.customer()
    shop.flush()

    delete(conn, "PAINT1")

    assert [sku for sku, _ in ask(conn, customer_id=person, limit=2)] == ["CONSOLE1", "CONSOLE2"]


def test_a_deleted_product_loaded_again_is_recommended_again(conn: sa.Connection) -> None:
    shop_with_consoles(conn)
    delete(conn, "GAME3")
    assert "GAME3" not in [sku for sku, _ in ask(conn, customer_id=None, products=("CONSOLE1",), limit=10)]

    row = {"sku": "GAME3", "name": "Game3", "product_group": "consoles", "is_accessory": True}
    load_batch(conn, [Mapped(rows={"product": [row]})], [None], source="pim", now=NOW)  # clears deleted_at

    assert conn.execute(sa.select(product_t.c.deleted_at).where(product_t.c.sku == "GAME3")).scalar() is None
    assert ask(conn, customer_id=None, products=("CONSOLE1",), limit=1)[0][0] == "GAME3"
