"""Recommendations from Raptor: what ``recommend`` returns, the cache, and how fast it gives up when Raptor is slow
or down (the core then answers with its built-in recommender)."""

import base64
import socket
import time
from collections.abc import Callable

import pytest

from hub.connectors import RecommendationRequest
from hub.sandbox.faults import FaultInjector, Faults
from hub_plugins.raptor._state import RaptorState
from hub_plugins.raptor.connector import RaptorConnector
from hub_plugins.raptor.recommendations import RaptorUnavailable, TTLCache


def ruid(email: str) -> str:
    return base64.b64encode(email.encode()).decode()


def buy(state: RaptorState, email: str, order: str, *products: str) -> None:
    for product in products:
        state.track("4711", "stream", {"p1": "buy", "p2": product, "p21": order, "ruid": ruid(email)})


@pytest.fixture
def bought(state: RaptorState) -> RaptorState:
    """Console buyers also bought controllers (3 of them) and games (2), a cable once."""
    buy(state, "a@x.no", "1", "CONSOLE", "CONTROLLER", "GAME")
    buy(state, "b@x.no", "2", "CONSOLE", "CONTROLLER", "GAME")
    buy(state, "c@x.no", "3", "CONSOLE", "CONTROLLER", "CABLE")
    buy(state, "d@x.no", "4", "CONTROLLER", "HEADSET")
    return state


def test_product_recommendations_follow_co_purchases_and_never_suggest_what_is_excluded(
    connector: RaptorConnector, bought: RaptorState
) -> None:
    request = RecommendationRequest(customer_id=1, products=("CONSOLE",), exclude=frozenset({"GAME"}), limit=3)

    found = connector.recommend(request, timeout=2)

    assert [r.sku for r in found] == ["CONTROLLER", "CABLE"]
    assert found[0].score is not None and found[0].score > found[1].score
    assert found[0].reason == "Raptor GetOtherCustomersAlsoBought for CONSOLE"


def test_a_customer_is_asked_about_by_ruid_and_fills_up_what_the_products_leave(
    connector: RaptorConnector, bought: RaptorState
) -> None:
    request = RecommendationRequest(customer_id=1, products=("HEADSET",), keys={"email": "C@x.no"}, limit=3)

    found = connector.recommend(request, timeout=2)

    # HEADSET's one co-purchase, then the customer's own (GAME; HEADSET too, but it is the request's product)
    assert [(r.sku, r.reason) for r in found] == [
        ("CONTROLLER", "Raptor GetOtherCustomersAlsoBought for HEADSET"),
        ("GAME", "Raptor GetUserRecommendations for the customer"),
    ]


def test_answers_are_cached_for_their_ttl(
    make: Callable[..., RaptorConnector], base_url: str, bought: RaptorState
) -> None:
    connector = make(base_url, recommend={"cache_ttl": 0.2})
    request = RecommendationRequest(customer_id=1, products=("CONSOLE",))

    first = connector.recommend(request, timeout=2)
    again = connector.recommend(request, timeout=2)
    asked = bought.recommendation_requests
    time.sleep(0.25)
    connector.recommend(request, timeout=2)

    assert first == again and asked == 1
    assert bought.recommendation_requests == 2


def test_planted_answers_are_served_as_raptor_ranks_them(connector: RaptorConnector, state: RaptorState) -> None:
    state.set_recommendations("GetOtherCustomersAlsoBought", "GRILL", ["COVER", "TONGS", "BRUSH", "GAS"])

    found = connector.recommend(RecommendationRequest(customer_id=1, products=("GRILL",), limit=2), timeout=2)

    assert [r.sku for r in found] == ["COVER", "TONGS"]


def test_slow_raptor_raises_within_the_timeout_and_then_is_not_asked_during_the_cooldown(
    connector: RaptorConnector, injector: FaultInjector, state: RaptorState
) -> None:
    injector.faults = Faults(latency=1.0, paths=["/v1/*"])
    request = RecommendationRequest(customer_id=1, products=("CONSOLE",))

    started = time.monotonic()
    with pytest.raises(RaptorUnavailable, match="no answer within"):
        connector.recommend(request, timeout=0.3)
    slow = time.monotonic() - started
    started = time.monotonic()
    with pytest.raises(RaptorUnavailable, match="not asked again"):
        connector.recommend(request, timeout=0.3)
    cooling = time.monotonic() - started

    assert slow < 0.8, f"took {slow:.2f} s for a 0.3 s budget"
    assert cooling < 0.05 and injector.stats["delayed"] == 1, "asked again during the cooldown"


def test_raptor_down_raises_at_once_without_the_key_in_the_message(make: Callable[..., RaptorConnector]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    connector = make(closed, api_key="very-secret-key")

    started = time.monotonic()
    with pytest.raises(RaptorUnavailable) as raised:
        connector.recommend(RecommendationRequest(customer_id=1, products=("X",)), timeout=1)

    assert time.monotonic() - started < 0.5
    assert "very-secret-key" not in str(raised.value) and "unreachable" in str(raised.value)


def test_a_refused_key_raises_and_no_api_key_means_no_recommendations(
    make: Callable[..., RaptorConnector], base_url: str, state: RaptorState
) -> None:
    request = RecommendationRequest(customer_id=1, products=("X",))
    with pytest.raises(RaptorUnavailable, match="HTTP 401"):
        make(base_url, api_key="wrong-key").recommend(request, timeout=1)
    asked = state.recommendation_requests

    assert make(base_url, api_key=None).recommend(request, timeout=1) == []
    assert state.recommendation_requests == asked


def test_the_cache_drops_the_oldest_past_its_size() -> None:
    cache = TTLCache(ttl=60, size=2)
    for key in "abc":
        cache.put(key, key.upper())

    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (None, "B", "C")
