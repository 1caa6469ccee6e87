"""``hub compute`` rebuilds the follow-up rules on a full compute; ``recommend:`` sets the defaults of payloads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from hub.app import Hub
from hub.audience.pipeline import compute
from hub.audience.triggers import recommendation_settings
from hub.config import HubConfig
from hub.recommend.builtin import settings_of
from hub.recommend.followups import last_computed, read_followups
from tests.recommend._planted import NOW, START, Shop


def console_shop(hub: Hub) -> None:
    with hub.engine.begin() as conn:
        shop = Shop(conn)
        shop.products()
        for n in range(10):
            person = shop.customer()
            shop.order(person, START + timedelta(days=n), "CONSOLE1")
            shop.order(person, START + timedelta(days=n + 3), "GAME3")
            shop.order(shop.customer(), START, "PAINT1")
        shop.flush()


def test_a_full_compute_rebuilds_the_followups_and_an_incremental_one_leaves_them(
    make_hub: Callable[..., Hub],
) -> None:
    hub = make_hub()
    console_shop(hub)
    compute(hub, now=NOW, full=True)
    compute(hub, now=NOW + timedelta(hours=1), full=False)
    with hub.engine.connect() as conn:
        rules = read_followups(conn, "product", ["CONSOLE1"], per_antecedent=3)
        noted = last_computed(conn)
    assert [rule.sku for rule in rules["CONSOLE1"]] == ["GAME3"]
    assert noted is not None and noted["at"] == NOW.isoformat() and noted["products"] == 1


@pytest.mark.skipif(
    "recommend" not in HubConfig.model_fields, reason="HubConfig has no recommend: block yet (hub/config/_hub.py)"
)
def test_recommend_sets_the_window_and_the_recommendations_of_every_trigger(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(
        recommend={"followups": {"window": "30d", "min_support": 5}, "triggers": {"limit": 4}},
        contact_pressure={"message_types": {"m": {}}},
        triggers={
            "plain": {"on": "birthday", "message_type": "m", "to": {"esp": {"trigger_id": "b"}}},
            "own": {
                "on": "birthday",
                "message_type": "m",
                "to": {"esp": {"trigger_id": "b"}},
                "recommendations": {"limit": 0},
            },
        },
    )
    assert settings_of(hub.config).followups.window == timedelta(days=30)
    plain = recommendation_settings(hub.config, hub.config.triggers["plain"])
    assert plain is not None and plain.limit == 4
    own = recommendation_settings(hub.config, hub.config.triggers["own"])
    assert own is not None and own.limit == 0
