"""``recommendations:`` on a trigger (and ``recommend:``): durations in milliseconds, and ``from`` must name a
configured recommender connector, with the file, line and key of the mistake."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hub.app import Hub
from hub.config import HubConfig
from hub.config._audience import RecommendationsConfig
from hub.errors import ConfigError
from hub.recommend.connectors import configured_recommenders
from tests.recommend.conftest import SlowRecommender


def trigger(**recommendations: Any) -> dict[str, Any]:
    return {
        "triggers": {
            "post_purchase": {
                "on": "order_placed",
                "message_type": "post_purchase",
                "to": {"esp": {"trigger_id": "pp"}},
                "recommendations": recommendations,
            }
        },
        "connectors": {"raptorish": {"plugin": "slowrec"}},
        "contact_pressure": {"message_types": {"post_purchase": {}}},
    }


@pytest.mark.parametrize(("text", "seconds"), [("800ms", 0.8), ("1.5s", 1.5), (2, 2.0), ("250 ms", 0.25)])
def test_a_timeout_is_written_in_seconds_or_milliseconds(text: Any, seconds: float) -> None:
    assert RecommendationsConfig.model_validate({"timeout": text}).timeout == seconds


def test_a_timeout_in_other_units_says_how_to_write_it() -> None:
    with pytest.raises(ValueError, match=r"use seconds or milliseconds: 800ms, 1\.5s, 2"):
        RecommendationsConfig.model_validate({"timeout": "1m"})


def test_a_trigger_takes_its_recommendations_from_a_configured_recommender(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(**trigger(**{"from": "raptorish", "limit": 4, "timeout": "800ms"}))
    settings = hub.config.triggers["post_purchase"].recommendations
    assert settings == RecommendationsConfig(from_="raptorish", limit=4, timeout=0.8)
    (connector,) = configured_recommenders(hub).values()
    assert isinstance(connector, SlowRecommender) and connector.name == "raptorish"


def test_an_unknown_connector_is_reported_with_file_line_and_key(make_hub: Callable[..., Hub]) -> None:
    with pytest.raises(ConfigError) as caught:
        make_hub(**trigger(**{"from": "raptr"}))
    message = str(caught.value)
    assert "hub.yaml:" in message
    assert "triggers.post_purchase.recommendations.from: unknown connector 'raptr'" in message


def test_a_connector_that_is_not_a_recommender_is_refused(make_hub: Callable[..., Hub]) -> None:
    with pytest.raises(ConfigError, match=r"connector 'esp' .*is not a recommender"):
        configured_recommenders(make_hub(**trigger(**{"from": "esp"})))


def test_builtin_needs_no_connector_and_no_block_means_no_recommendations() -> None:
    config = HubConfig.model_validate(
        {"triggers": {"t": {"on": "birthday", "message_type": "m", "to": {"esp": {"trigger_id": "x"}}}}}
    )
    assert config.triggers["t"].recommendations is None
    assert RecommendationsConfig().from_ == "builtin"
