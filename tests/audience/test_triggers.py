"""Triggers: which events fire candidates (once), and how a due candidate is prepared (branch, variant, payload)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub.audience.triggers import fire_triggers, prepare_due, state_name
from hub.audience.variants import pick_variant
from hub.config import HubConfig
from hub.db import make_engine
from hub.models import (
    AudienceCandidate,
    AudienceState,
    Cart,
    Customer,
    CustomerAttributes,
    Event,
    Order,
    OrderLine,
    Product,
    ProductRelation,
    SegmentChange,
    SegmentMembership,
    VariantAssignment,
)
from hub.schema import upgrade

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
TO = {"esp": {"trigger_id": "T-pp"}}

candidate_t: sa.Table = AudienceCandidate.__table__  # type: ignore[attr-defined]
state_t: sa.Table = AudienceState.__table__  # type: ignore[attr-defined]
customer_t: sa.Table = Customer.__table__  # type: ignore[attr-defined]
attributes_t: sa.Table = CustomerAttributes.__table__  # type: ignore[attr-defined]
order_t: sa.Table = Order.__table__  # type: ignore[attr-defined]
line_t: sa.Table = OrderLine.__table__  # type: ignore[attr-defined]
product_t: sa.Table = Product.__table__  # type: ignore[attr-defined]
relation_t: sa.Table = ProductRelation.__table__  # type: ignore[attr-defined]
cart_t: sa.Table = Cart.__table__  # type: ignore[attr-defined]
event_t: sa.Table = Event.__table__  # type: ignore[attr-defined]
change_t: sa.Table = SegmentChange.__table__  # type: ignore[attr-defined]
membership_t: sa.Table = SegmentMembership.__table__  # type: ignore[attr-defined]
variant_t: sa.Table = VariantAssignment.__table__  # type: ignore[attr-defined]

_ids = itertools.count(1)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade(engine)
    with engine.begin() as conn:
        for sku, group, brand, accessory, price in (
            ("GRILL", "grills", "Weber", False, 4990),
            ("GRILL2", "grills", "Napoleon", False, 3990),
            ("COVER", "grills", "Weber", True, 499),
            ("BRUSH", None, "Weber", False, 99),  # an accessory only through its relation
            ("TONGS", None, "Weber", False, 149),
            ("APRON", None, None, False, 299),
            ("PAINT", "paint", "Jotun", False, 399),
        ):
            conn.execute(
                product_t.insert().values(
                    sku=sku, name=sku.title(), product_group=group, brand=brand, is_accessory=accessory,
                    price=Decimal(price), source="pim", loaded_at=NOW,
                )
            )  # fmt: skip
        for sku, related in (("GRILL", "COVER"), ("GRILL", "BRUSH"), ("GRILL", "TONGS"), ("GRILL", "APRON")):
            conn.execute(
                relation_t.insert().values(sku=sku, related_sku=related, kind="accessory", source="pim", loaded_at=NOW)
            )
    yield engine
    engine.dispose()


def config(timezone: str = "Europe/Oslo", accessory_window: str = "30d", **triggers: dict[str, Any]) -> HubConfig:
    return HubConfig.model_validate(
        {"timezone": timezone, "attributes": {"accessory_window": accessory_window}, "triggers": triggers}
    )


def post_purchase(**extra: Any) -> dict[str, Any]:
    return {
        "on": "order_placed",
        "message_type": "post_purchase",
        "filter": {"product_groups": ["grills"]},
        "branches": [
            {"name": "care", "when": "has_accessory_for_group", "to": {"esp": {"trigger_id": "T-care"}}},
            {"name": "accessories", "to": {"esp": {"trigger_id": "T-acc"}}},
        ],
        **extra,
    }


def add_customer(conn: sa.Connection, **values: Any) -> int:
    customer_id = next(_ids)
    values = {"email": f"c{customer_id}@example.no", "first_name": "Kari", "created_at": NOW, **values}
    conn.execute(customer_t.insert().values(id=customer_id, updated_at=NOW, **values))
    return customer_id


def add_order(
    conn: sa.Connection, customer_id: int | None, at: datetime, *skus: str, is_return: bool = False, **values: Any
) -> int:
    order_id = next(_ids)
    conn.execute(
        order_t.insert().values(
            id=order_id, source="pos", external_id=f"R{order_id}", customer_id=customer_id, placed_at=at,
            is_return=is_return, loaded_at=at, currency="NOK", **values,
        )
    )  # fmt: skip
    prices = {"GRILL": 4990, "GRILL2": 3990, "COVER": 499, "BRUSH": 99, "TONGS": 149, "APRON": 299, "PAINT": 399}
    for number, sku in enumerate(skus, 1):
        quantity = -1 if is_return else 1
        conn.execute(
            line_t.insert().values(
                order_id=order_id, line_no=number, sku=sku, quantity=quantity, unit_price=prices[sku],
                line_total=quantity * prices[sku],
            )
        )  # fmt: skip
    return order_id


def add_cart(conn: sa.Connection, customer_id: int, at: datetime, *skus: str, status: str | None = None) -> int:
    cart_id = next(_ids)
    conn.execute(
        cart_t.insert().values(
            id=cart_id, source="web", external_id=f"C{cart_id}", customer_id=customer_id, updated_at=at,
            status=status, items_json=[{"sku": sku, "quantity": 1} for sku in skus], total=100, loaded_at=at,
        )
    )  # fmt: skip
    return cart_id


def add_attributes(conn: sa.Connection, customer_id: int, **values: Any) -> None:
    values = {"product_groups": [], "extra": {}, **values}
    conn.execute(attributes_t.insert().values(customer_id=customer_id, computed_at=NOW, **values))


def fire(engine: sa.Engine, hub: HubConfig, now: datetime = NOW) -> dict[str, int]:
    with engine.begin() as conn:
        return fire_triggers(conn, hub, now)


def candidates(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(candidate_t).order_by(candidate_t.c.id)))


def prepare(engine: sa.Engine, hub: HubConfig, now: datetime = NOW) -> list[Any]:
    with engine.begin() as conn:
        rows = list(conn.execute(sa.select(candidate_t).order_by(candidate_t.c.customer_id, candidate_t.c.id)))
        return prepare_due(conn, hub, rows, now)


# -- order_placed -----------------------------------------------------------------------------------------------------


def test_an_order_of_a_trigger_group_fires_one_candidate(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        order = add_order(conn, kari, NOW - timedelta(hours=1), "GRILL", "PAINT")
    assert fire(engine, config(pp=post_purchase(to=TO, delay="2h"))) == {"pp": 1}
    (row,) = candidates(engine)
    assert row.key == f"pp:{kari}:order:{order}"
    assert (row.customer_id, row.status, row.message_type) == (kari, "waiting", "post_purchase")
    assert row.facts == {"order_id": order, "product_groups": ["grills"], "order_total": 5389.0, "channel": None}
    assert row.fired_at == NOW - timedelta(hours=1)
    assert row.due_at == NOW + timedelta(hours=1)


def test_firing_again_creates_nothing_new(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_order(conn, add_customer(conn), NOW - timedelta(hours=1), "GRILL")
    hub = config(pp=post_purchase(to=TO))
    assert fire(engine, hub) == {"pp": 1}
    assert fire(engine, hub, NOW + timedelta(minutes=5)) == {"pp": 0}
    with engine.begin() as conn:  # even with the watermark lost, the key keeps the event from firing twice
        conn.execute(state_t.delete())
    assert fire(engine, hub) == {"pp": 0}
    assert len(candidates(engine)) == 1


def test_one_candidate_per_order_even_with_several_trigger_products(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_order(conn, add_customer(conn), NOW - timedelta(hours=1), "GRILL", "GRILL2", "COVER")
    assert fire(engine, config(pp=post_purchase(to=TO))) == {"pp": 1}


def test_history_older_than_max_age_does_not_fire_on_the_first_run(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        add_order(conn, kari, NOW - timedelta(days=3), "GRILL")
        recent = add_order(conn, kari, NOW - timedelta(days=1), "GRILL")
    assert fire(engine, config(pp=post_purchase(to=TO, max_age="2d"))) == {"pp": 1}
    assert [row.ref for row in candidates(engine)] == [str(recent)]


def test_an_order_placed_after_now_fires_when_its_time_comes(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        add_order(conn, kari, NOW + timedelta(hours=1), "GRILL")
        add_order(conn, kari, NOW - timedelta(hours=1), "GRILL")
    hub = config(pp=post_purchase(to=TO))
    assert fire(engine, hub) == {"pp": 1}
    assert fire(engine, hub, NOW + timedelta(hours=2)) == {"pp": 1}


@pytest.mark.parametrize(
    ("filter_", "fires"),
    [
        ({"product_groups": ["paint"]}, True),
        ({"product_groups": ["garden"]}, False),
        ({"brands": ["Weber"]}, True),
        ({"brands": ["Napoleon"]}, False),
        ({"product_groups": ["grills"], "brands": ["Jotun"]}, False),  # one line must match both
        ({"channels": ["store"]}, True),
        ({"channels": ["web"]}, False),
        ({"campaigns": ["summer"]}, True),
        ({"campaigns": ["winter"]}, False),
        ({"min_total": 5000}, True),
        ({"min_total": 6000}, False),
    ],
)
def test_the_filter_decides_which_orders_fire(engine: sa.Engine, filter_: dict[str, Any], fires: bool) -> None:
    with engine.begin() as conn:
        add_order(
            conn, add_customer(conn), NOW - timedelta(hours=1), "GRILL", "PAINT", channel="store", campaign="summer"
        )
    assert fire(engine, config(pp=post_purchase(to=TO, filter=filter_))) == {"pp": int(fires)}


def test_min_total_uses_the_order_total_when_there_is_one(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_order(conn, add_customer(conn), NOW - timedelta(hours=1), "GRILL", total=Decimal(100))
    assert fire(engine, config(pp=post_purchase(to=TO, filter={"min_total": 500}))) == {"pp": 0}


def test_returns_and_anonymous_orders_do_not_fire(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_order(conn, add_customer(conn), NOW - timedelta(hours=1), "GRILL", is_return=True)
        add_order(conn, None, NOW - timedelta(hours=1), "GRILL")
    assert fire(engine, config(pp=post_purchase(to=TO))) == {"pp": 0}


def test_where_filters_the_customers(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        shop = add_customer(conn, is_b2b=True)
        kari = add_customer(conn)
        add_order(conn, shop, NOW - timedelta(hours=1), "GRILL")
        add_order(conn, kari, NOW - timedelta(hours=1), "GRILL")
    assert fire(engine, config(pp=post_purchase(to=TO, where="not is_b2b"))) == {"pp": 1}
    assert [row.customer_id for row in candidates(engine)] == [kari]


def test_an_order_of_a_merged_customer_fires_for_the_survivor(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        survivor = add_customer(conn)
        merged = add_customer(conn, merged_into=survivor)
        add_order(conn, merged, NOW - timedelta(hours=1), "GRILL")
    fire(engine, config(pp=post_purchase(to=TO)))
    assert [row.customer_id for row in candidates(engine)] == [survivor]


# -- cart_abandoned ---------------------------------------------------------------------------------------------------


def cart_trigger(**extra: Any) -> dict[str, Any]:
    return {"on": "cart_abandoned", "message_type": "cart", "after": "2h", "to": TO, **extra}


def test_a_cart_fires_after_the_quiet_time_without_an_order(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        cart = add_cart(conn, kari, NOW - timedelta(hours=3), "GRILL")
        add_cart(conn, add_customer(conn), NOW - timedelta(hours=1), "GRILL")  # not quiet long enough
    assert fire(engine, config(cart=cart_trigger())) == {"cart": 1}
    (row,) = candidates(engine)
    assert row.key == f"cart:{kari}:cart:{cart}:{(NOW - timedelta(hours=3)).isoformat()}"
    assert row.fired_at == NOW - timedelta(hours=1)


def test_a_cart_followed_by_an_order_does_not_fire(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        add_cart(conn, kari, NOW - timedelta(hours=3), "GRILL")
        add_order(conn, kari, NOW - timedelta(hours=2, minutes=30), "GRILL")
        ola = add_customer(conn)
        add_order(conn, ola, NOW - timedelta(hours=4), "GRILL")  # an order before the cart does not count
        add_cart(conn, ola, NOW - timedelta(hours=3), "GRILL")
    fire(engine, config(cart=cart_trigger()))
    assert [row.customer_id for row in candidates(engine)] == [ola]


def test_empty_converted_and_old_carts_do_not_fire(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_cart(conn, add_customer(conn), NOW - timedelta(hours=3))
        add_cart(conn, add_customer(conn), NOW - timedelta(hours=3), "GRILL", status="Converted")
        add_cart(conn, add_customer(conn), NOW - timedelta(days=5), "GRILL")
    assert fire(engine, config(cart=cart_trigger())) == {"cart": 0}


def test_a_cart_changed_after_firing_fires_again(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        cart = add_cart(conn, add_customer(conn), NOW - timedelta(hours=3), "GRILL")
    hub = config(cart=cart_trigger())
    assert fire(engine, hub) == {"cart": 1}
    assert fire(engine, hub) == {"cart": 0}
    with engine.begin() as conn:
        conn.execute(cart_t.update().where(cart_t.c.id == cart).values(updated_at=NOW))
    assert fire(engine, hub, NOW + timedelta(hours=3)) == {"cart": 1}


# -- segment_entered / segment_left -----------------------------------------------------------------------------------


def add_change(conn: sa.Connection, customer_id: int, change: str, at: datetime = NOW, segment: str = "tier_a") -> int:
    """A segment change, and the membership it leaves behind (as segment evaluation writes both)."""
    member = (membership_t.c.segment == segment) & (membership_t.c.customer_id == customer_id)
    conn.execute(membership_t.delete().where(member))
    if change == "entered":
        conn.execute(membership_t.insert().values(segment=segment, customer_id=customer_id, since=at))
    return conn.execute(
        change_t.insert().values(segment=segment, customer_id=customer_id, change=change, at=at)
    ).inserted_primary_key[0]


def segment_trigger(on: str = "segment_entered") -> dict[str, Any]:
    return {"on": on, "message_type": "welcome_a", "segment": "tier_a", "to": TO}


def test_entering_a_segment_fires_once(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        change = add_change(conn, kari, "entered")
        add_change(conn, kari, "entered", segment="other")
    hub = config(a=segment_trigger())
    assert fire(engine, hub) == {"a": 1}
    assert fire(engine, hub, NOW + timedelta(hours=1)) == {"a": 0}
    assert [row.key for row in candidates(engine)] == [f"a:{kari}:change:{change}"]
    with engine.connect() as conn:
        state = conn.execute(sa.select(state_t.c.value).where(state_t.c.name == state_name("a"))).scalar()
    assert state == {"change_id": change}


def test_entering_again_after_leaving_fires_again(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        add_change(conn, kari, "entered")
    hub = config(a=segment_trigger(), gone=segment_trigger("segment_left"))
    assert fire(engine, hub) == {"a": 1, "gone": 0}
    with engine.begin() as conn:
        add_change(conn, kari, "left", NOW + timedelta(days=1))
    assert fire(engine, hub, NOW + timedelta(days=1)) == {"a": 0, "gone": 1}
    with engine.begin() as conn:
        add_change(conn, kari, "entered", NOW + timedelta(days=2))
    assert fire(engine, hub, NOW + timedelta(days=2)) == {"a": 1, "gone": 0}


@pytest.mark.parametrize(
    ("on", "then", "error"),
    [
        ("segment_entered", "left", "left segment tier_a before the message was due"),
        ("segment_left", "entered", "is back in segment tier_a"),
    ],
)
def test_a_delayed_segment_message_is_dropped_when_the_change_was_undone_before_it_was_due(
    engine: sa.Engine, on: str, then: str, error: str
) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        ola = add_customer(conn)
        if on == "segment_left":
            add_change(conn, kari, "entered", NOW - timedelta(days=30))
            add_change(conn, ola, "entered", NOW - timedelta(days=30))
        for customer in (kari, ola):
            add_change(conn, customer, "left" if on == "segment_left" else "entered")
    hub = config(a={**segment_trigger(on), "delay": "2d"})
    assert fire(engine, hub) == {"a": 2}
    with engine.begin() as conn:
        add_change(conn, kari, then, NOW + timedelta(days=1))  # undone before the two days have passed
    prepared = {p.customer_id: p for p in prepare(engine, hub, NOW + timedelta(days=2))}
    assert error in prepared[kari].error
    assert prepared[ola].error is None


def test_old_segment_changes_do_not_fire_on_the_first_run(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_change(conn, add_customer(conn), "entered", NOW - timedelta(days=10))
    assert fire(engine, config(a=segment_trigger())) == {"a": 0}


# -- dates ------------------------------------------------------------------------------------------------------------


def birthday() -> dict[str, Any]:
    return {"on": "birthday", "message_type": "birthday", "to": TO}


def test_birthday_is_today_in_the_hub_timezone(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        march_11 = add_customer(conn, birth_date=date(1980, 3, 11))
        add_customer(conn, birth_date=date(1980, 3, 10))
    late_evening_utc = datetime(2025, 3, 10, 23, 30, tzinfo=UTC)  # already 11 March in Oslo
    assert fire(engine, config(b=birthday()), late_evening_utc) == {"b": 1}
    (row,) = candidates(engine)
    assert (row.customer_id, row.key, row.facts["age"]) == (march_11, f"b:{march_11}:2025", 45)


def test_a_birthday_fires_once_a_year(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_customer(conn, birth_date=date(1980, 3, 10))
    hub = config(b=birthday())
    assert fire(engine, hub) == {"b": 1}
    assert fire(engine, hub, NOW + timedelta(hours=2)) == {"b": 0}
    assert fire(engine, hub, NOW + timedelta(days=365)) == {"b": 1}


@pytest.mark.parametrize(
    ("today", "fires"),
    [(date(2025, 2, 28), True), (date(2025, 3, 1), False), (date(2024, 2, 28), False), (date(2024, 2, 29), True)],
)
def test_a_29_february_birthday_is_on_the_28th_in_common_years(engine: sa.Engine, today: date, fires: bool) -> None:
    with engine.begin() as conn:
        add_customer(conn, birth_date=date(1992, 2, 29))
    now = datetime(today.year, today.month, today.day, 10, tzinfo=UTC)
    assert fire(engine, config(b=birthday()), now) == {"b": int(fires)}


def test_a_missed_day_is_caught_up_within_max_age(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_customer(conn, birth_date=date(1980, 3, 11))
        add_customer(conn, birth_date=date(1980, 3, 5))
    hub = config(b=birthday())
    assert fire(engine, hub) == {"b": 0}  # first run, 10 March: nobody; 5 March is history
    assert fire(engine, hub, NOW + timedelta(days=2)) == {"b": 1}  # 11 March was missed, 12 March is today


def test_first_order_anniversary_in_the_hub_timezone(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        old = add_customer(conn)
        add_attributes(conn, old, first_order_at=datetime(2023, 3, 9, 23, 30, tzinfo=UTC))  # 10 March in Oslo
        new = add_customer(conn)
        add_attributes(conn, new, first_order_at=datetime(2025, 3, 10, 8, tzinfo=UTC))  # not a year yet
    assert fire(engine, config(anniversary={"on": "first_order_anniversary", "message_type": "m", "to": TO})) == {
        "anniversary": 1
    }
    (row,) = candidates(engine)
    assert (row.customer_id, row.facts["years"], row.key) == (old, 2, f"anniversary:{old}:2025")


def win_back(**extra: Any) -> dict[str, Any]:
    return {"on": "win_back", "message_type": "win_back", "factor": 1.5, "min_orders": 2, "to": TO, **extra}


@pytest.mark.parametrize(
    ("days_ago", "orders", "fires"),
    [(46, 3, True), (44, 3, False), (46, 1, False), (60, 3, False)],
    ids=["overdue", "not-yet", "no-rhythm", "lapsed-long-ago"],
)
def test_win_back_at_the_customers_own_rhythm(engine: sa.Engine, days_ago: int, orders: int, fires: bool) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        last = NOW - timedelta(days=days_ago)
        add_attributes(conn, kari, last_order_at=last, orders_lifetime=orders, mean_days_between=30.0)
    assert fire(engine, config(wb=win_back())) == {"wb": int(fires)}


def test_win_back_fires_once_per_lapse(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        add_attributes(conn, kari, last_order_at=NOW - timedelta(days=46), orders_lifetime=3, mean_days_between=30.0)
    hub = config(wb=win_back())
    assert fire(engine, hub) == {"wb": 1}
    assert fire(engine, hub, NOW + timedelta(days=1)) == {"wb": 0}
    with engine.begin() as conn:  # bought again, and lapsed again
        conn.execute(attributes_t.update().values(last_order_at=NOW + timedelta(days=10)))
    assert fire(engine, hub, NOW + timedelta(days=56)) == {"wb": 1}


def add_points_event(conn: sa.Connection, customer_id: int, expires_on: str) -> int:
    event_id = next(_ids)
    conn.execute(
        event_t.insert().values(
            id=event_id, source="loyalty", external_id=f"E{event_id}", customer_id=customer_id,
            type="points_expiring", at=NOW - timedelta(days=30), loaded_at=NOW,
            payload_json={"points": 250, "expires_on": expires_on},
        )
    )  # fmt: skip
    return event_id


def test_points_expiring_fires_within_before_of_expiry(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        soon = add_customer(conn)
        event = add_points_event(conn, soon, "2025-03-20")
        add_points_event(conn, add_customer(conn), "2025-04-30")  # too far ahead
        add_points_event(conn, add_customer(conn), "2025-03-10")  # expires today: too late
    hub = config(points={"on": "points_expiring", "message_type": "points", "before": "14d", "to": TO})
    assert fire(engine, hub) == {"points": 1}
    assert fire(engine, hub, NOW + timedelta(days=1)) == {"points": 0}
    (row,) = candidates(engine)
    assert row.key == f"points:{soon}:points:{event}"
    assert row.facts == {"event_id": event, "points": 250, "expires_on": "2025-03-20"}


def test_a_campaign_reaches_the_segment_once_per_tick(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        members = [add_customer(conn), add_customer(conn)]
        add_customer(conn)
        for customer_id in members:
            conn.execute(membership_t.insert().values(segment="news", customer_id=customer_id, since=NOW))
    campaign = {"on": "campaign", "message_type": "newsletter", "segment": "news", "schedule": "0 9 * * *", "to": TO}
    hub = config(news=campaign)
    morning = datetime(2025, 3, 10, 8, 5, tzinfo=UTC)  # 09:05 in Oslo
    assert fire(engine, hub, morning) == {"news": 2}
    assert fire(engine, hub, morning + timedelta(hours=3)) == {"news": 0}
    assert fire(engine, hub, morning + timedelta(days=1)) == {"news": 2}
    keys = {row.key for row in candidates(engine)}
    assert f"news:{members[0]}:2025-03-10T08:00:00+00:00" in keys


# -- prepare_due ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accessory_at", "branch"),
    [
        (None, "accessories"),
        (timedelta(0), "care"),  # in the same order
        (timedelta(days=-10), "care"),
        (timedelta(days=-40), "accessories"),  # outside the 30-day window
        (timedelta(hours=20), "care"),  # bought after the order, before now
    ],
    ids=["none", "same-order", "10-days-before", "40-days-before", "after"],
)
def test_the_accessory_branch_is_chosen_by_the_accessory_window(
    engine: sa.Engine, accessory_at: timedelta | None, branch: str
) -> None:
    placed = NOW - timedelta(days=1)
    with engine.begin() as conn:
        kari = add_customer(conn)
        if accessory_at == timedelta(0):
            add_order(conn, kari, placed, "GRILL", "COVER")
        else:
            add_order(conn, kari, placed, "GRILL")
            if accessory_at is not None:
                add_order(conn, kari, placed + accessory_at, "COVER")
    hub = config(pp=post_purchase(max_age="3d"))
    fire(engine, hub, placed + timedelta(minutes=1))
    (prepared,) = prepare(engine, hub)
    assert prepared.error is None
    assert prepared.branch == branch
    assert set(prepared.views) == {"esp"}
    assert prepared.views["esp"]["trigger_id"] == ("T-care" if branch == "care" else "T-acc")


def test_a_related_accessory_counts_and_another_groups_does_not(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari, ola = add_customer(conn), add_customer(conn)
        add_order(conn, kari, NOW - timedelta(hours=1), "GRILL", "BRUSH")  # BRUSH is related to GRILL
        add_order(conn, ola, NOW - timedelta(hours=1), "GRILL", "PAINT")
    hub = config(pp=post_purchase())
    fire(engine, hub)
    assert {p.customer_id: p.branch for p in prepare(engine, hub)} == {kari: "care", ola: "accessories"}


def test_the_payload_carries_customer_order_and_accessories(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn, first_name="Kari", member_no="7001")
        add_order(conn, kari, NOW - timedelta(days=200), "TONGS")  # already has the tongs
        order = add_order(conn, kari, NOW - timedelta(hours=1), "GRILL", "PAINT")
        for _ in range(3):  # the apron sells more than the cover and the brush
            add_order(conn, add_customer(conn), NOW - timedelta(days=100), "APRON")
    hub = config(pp=post_purchase(accessories=2, to={"esp": {"trigger_id": "T-pp"}}))
    fire(engine, hub)
    (prepared,) = prepare(engine, hub)
    payload = prepared.payload
    assert (payload["trigger"], payload["message_type"], payload["branch"]) == ("pp", "post_purchase", "accessories")
    assert payload["customer"]["first_name"] == "Kari"
    assert payload["customer"]["member_no"] == "7001"
    assert payload["order"]["id"] == order
    assert [line["sku"] for line in payload["order"]["lines"]] == ["GRILL", "PAINT"]
    assert payload["order"]["lines"][0] == {
        "sku": "GRILL", "name": "Grill", "product_group": "grills", "brand": "Weber",
        "quantity": 1.0, "unit_price": 4990.0, "line_total": 4990.0,
    }  # fmt: skip
    assert [item["sku"] for item in payload["accessories"]] == ["APRON", "COVER"]
    assert payload["product_groups"] == ["grills"]
    assert prepared.views["esp"]["data"] == payload
    assert prepared.views["esp"]["_hub"]["customer_id"] == kari
    assert prepared.views["esp"]["_hub"]["member_no"] == "7001"


def test_variants_are_assigned_stably_and_stored(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        buyers = [add_customer(conn) for _ in range(6)]
        for customer_id in buyers:
            add_order(conn, customer_id, NOW - timedelta(hours=1), "GRILL")
    hub = config(pp=post_purchase(to=TO, variants={"a": 1, "b": 1}))
    fire(engine, hub)
    first = {p.customer_id: p.variant for p in prepare(engine, hub)}
    again = {p.customer_id: p.variant for p in prepare(engine, hub, NOW + timedelta(hours=1))}
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.select(variant_t.c.customer_id, variant_t.c.variant)).all())
    assert first == again == stored == {c: pick_variant("pp", c, {"a": 1, "b": 1}) for c in buyers}


def test_a_branch_may_test_the_variant(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_order(conn, add_customer(conn), NOW - timedelta(hours=1), "GRILL")
    trigger = post_purchase(to=TO, variants={"b": 1}, branches=[{"name": "b_arm", "when": 'variant == "b"'}])
    hub = config(pp=trigger)
    fire(engine, hub)
    (prepared,) = prepare(engine, hub)
    assert (prepared.variant, prepared.branch, prepared.payload["variant"]) == ("b", "b_arm", "b")


def test_a_candidate_whose_source_vanished_gets_an_error(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn)
        order = add_order(conn, kari, NOW - timedelta(hours=1), "GRILL")
        ola = add_customer(conn)
        add_cart(conn, ola, NOW - timedelta(hours=3), "GRILL")
    hub = config(pp=post_purchase(to=TO), cart=cart_trigger())
    fire(engine, hub)
    with engine.begin() as conn:
        conn.execute(line_t.delete().where(line_t.c.order_id == order))
        conn.execute(order_t.delete().where(order_t.c.id == order))
        add_order(conn, ola, NOW - timedelta(minutes=10), "PAINT")
    errors = {p.trigger: p.error for p in prepare(engine, hub)}
    assert errors["pp"] == f"order {order} no longer exists"
    assert "ordered after abandoning cart" in errors["cart"]
    removed = {p.trigger: p.error for p in prepare(engine, config(cart=cart_trigger()))}
    assert removed["pp"] == "trigger pp is no longer in hub.yaml"


def test_no_branch_that_applies_is_an_error(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        add_order(conn, add_customer(conn), NOW - timedelta(hours=1), "GRILL")
    hub = config(pp=post_purchase(branches=[{"name": "care", "when": "has_accessory_for_group", "to": TO}]))
    fire(engine, hub)
    (prepared,) = prepare(engine, hub)
    assert prepared.error == "no branch of trigger pp applies"


def test_the_trigger_order_in_the_config_is_kept(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        kari = add_customer(conn, birth_date=date(1980, 3, 10))
        add_order(conn, kari, NOW - timedelta(hours=1), "GRILL")
    hub = config(b=birthday(), pp=post_purchase(to=TO))
    fire(engine, hub)
    assert {p.trigger: p.order for p in prepare(engine, hub)} == {"b": 0, "pp": 1}


def test_preparing_a_batch_costs_the_same_queries_for_2_or_20_candidates(engine: sa.Engine) -> None:
    hub = config(pp=post_purchase(to=TO, variants={"a": 1, "b": 1}), cart=cart_trigger())

    def statements(buyers: int) -> int:
        with engine.begin() as conn:
            conn.execute(candidate_t.delete())
            for _ in range(buyers):
                customer_id = add_customer(conn)
                add_order(conn, customer_id, NOW - timedelta(hours=4), "GRILL")
                add_cart(conn, customer_id, NOW - timedelta(hours=3), "PAINT")
        fire(engine, hub)
        seen: list[str] = []

        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            seen.append(statement)

        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            prepared = prepare(engine, hub)
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)
        assert len(prepared) >= 2 * buyers
        return len(seen)

    assert statements(2) == statements(20)


# -- dialects ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def any_engine(database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(database_url)
    upgrade(engine)
    with engine.begin() as conn:
        for sku, group, accessory in (("GRILL", "grills", False), ("COVER", "grills", True), ("PAINT", "paint", False)):
            conn.execute(
                product_t.insert().values(
                    sku=sku, name=sku, product_group=group, is_accessory=accessory, price=1, source="p", loaded_at=NOW
                )
            )
    yield engine
    engine.dispose()


def test_the_dialect_specific_kinds_fire_and_prepare_on_each_database(any_engine: sa.Engine) -> None:
    """Month-day matching, day arithmetic, JSON extraction and the accessory query, on SQLite and PostgreSQL."""
    with any_engine.begin() as conn:
        buyer = add_customer(conn, birth_date=date(1992, 2, 29))
        add_order(conn, buyer, NOW - timedelta(hours=1), "GRILL", "COVER")
        add_attributes(
            conn, buyer, first_order_at=datetime(2023, 2, 28, 9, tzinfo=UTC), last_order_at=NOW - timedelta(days=46),
            orders_lifetime=3, mean_days_between=30.0,
        )  # fmt: skip
        add_points_event(conn, buyer, "2025-03-01")
        add_cart(conn, buyer, NOW - timedelta(hours=3), "PAINT")
        add_change(conn, buyer, "entered")
    hub = config(
        pp=post_purchase(to=TO, where="orders_lifetime >= 2"),
        b=birthday(),
        anniversary={"on": "first_order_anniversary", "message_type": "m", "to": TO},
        wb=win_back(),
        points={"on": "points_expiring", "message_type": "points", "before": "14d", "to": TO},
        cart=cart_trigger(),
        a=segment_trigger(),
    )
    feb_28 = NOW - timedelta(days=10)  # 2025-02-28, 12:00 UTC
    with any_engine.begin() as conn:
        conn.execute(order_t.update().values(placed_at=feb_28 - timedelta(hours=1)))
        conn.execute(cart_t.update().values(updated_at=feb_28 - timedelta(hours=3)))
        conn.execute(change_t.update().values(at=feb_28))
        conn.execute(attributes_t.update().values(last_order_at=feb_28 - timedelta(days=46)))
    fired = fire(any_engine, hub, feb_28)
    assert fired == {"pp": 1, "b": 1, "anniversary": 1, "wb": 1, "points": 1, "cart": 0, "a": 1}
    assert fire(any_engine, hub, feb_28) == dict.fromkeys(fired, 0)
    prepared = {p.trigger: p for p in prepare(any_engine, hub, feb_28)}
    assert prepared["pp"].branch == "care"
    assert all(p.error is None for p in prepared.values())
