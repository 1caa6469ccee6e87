"""Trigger payloads take recommendations from the configured connector when it answers in time, else from the
built-in, and say which one did; a batch never waits one timeout per candidate."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hub.app import Hub
from hub.audience.pipeline import run_audience
from hub.connectors import ConnectorContext, Recommendation, RecommendationRequest
from hub.models import AudienceCandidate
from hub.recommend.fallback import FallbackStats, ask
from tests.recommend._planted import NOW, START, Shop
from tests.recommend.conftest import SlowRecommender, SlowSettings

candidate_t: sa.Table = AudienceCandidate.__table__  # type: ignore[attr-defined]


def programme(recommender: dict[str, Any], **recommendations: Any) -> dict[str, Any]:
    """A post-purchase trigger whose payload asks ``raptorish`` for two recommendations within 200 ms."""
    return {
        "connectors": {"raptorish": {"plugin": "slowrec", "settings": recommender}},
        "contact_pressure": {"message_types": {"post_purchase": {"priority": "transactional"}}},
        "triggers": {
            "post_purchase": {
                "on": "order_placed",
                "message_type": "post_purchase",
                "max_age": "30d",
                "to": {"esp": {"trigger_id": "pp"}},
                "recommendations": {"from": "raptorish", "limit": 2, "timeout": "200ms", **recommendations},
            }
        },
    }


def console_buyers(hub: Hub, buyers: int) -> list[int]:
    """Twenty past console buyers who bought GAME3 next, and ``buyers`` who bought a console yesterday."""
    with hub.engine.begin() as conn:
        shop = Shop(conn)
        shop.products()
        for n in range(20):
            person = shop.customer()
            shop.order(person, START + timedelta(days=n), "CONSOLE1")
            shop.order(person, START + timedelta(days=n + 3), "GAME3")
            shop.order(shop.customer(), START, "PAINT1")
        fresh = []
        for _ in range(buyers):
            fresh.append(shop.customer())
            shop.order(fresh[-1], NOW - timedelta(days=1), "CONSOLE1")
        shop.flush()
    return fresh


def payloads(hub: Hub) -> dict[int, dict[str, Any]]:
    with hub.engine.connect() as conn:
        rows = conn.execute(sa.select(candidate_t.c.customer_id, candidate_t.c.payload))
        return {customer: payload for customer, payload in rows}


def test_the_payload_names_the_connector_when_it_answers_and_builtin_when_it_times_out(
    make_hub: Callable[..., Hub],
) -> None:
    hub = make_hub(**programme({"delay": 2.0, "slow_for": [42, 44]}))
    fresh = console_buyers(hub, 6)
    assert {42, 44} < set(fresh)
    run_audience(hub, now=NOW)
    blocks = {customer: payload["recommendations"] for customer, payload in payloads(hub).items()}
    assert set(blocks) == set(fresh)
    for customer, block in blocks.items():
        if customer in (42, 44):
            assert block["source"] == "builtin"
            assert block["items"][0]["sku"] == "GAME3"  # what console buyers bought next
        else:
            assert block["source"] == "raptorish"
            assert [item["sku"] for item in block["items"]] == ["GAME8", "GAME7"]
    assert blocks[fresh[0]]["items"][0] == {
        "sku": "GAME8", "name": "Game8", "price": 100.0, "product_group": "consoles", "brand": "Acme", "score": 1.0,
    }  # fmt: skip


def test_a_batch_of_50_with_a_200_ms_timeout_is_over_in_well_under_50_timeouts(
    make_hub: Callable[..., Hub],
) -> None:
    hub = make_hub(**programme({"delay": 1.0}))
    fresh = console_buyers(hub, 50)
    summary = run_audience(hub, now=NOW)
    sources = {payload["recommendations"]["source"] for payload in payloads(hub).values()}
    assert len(payloads(hub)) == len(fresh) == 50
    assert sources == {"builtin"}
    assert summary.seconds["decide"] < 2.0  # 50 x 0.2 s would be 10 s


def test_the_connector_is_asked_with_what_the_customer_owns_left_out(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(**programme({}))
    fresh = console_buyers(hub, 1)
    run_audience(hub, now=NOW)
    connector = hub.connector("raptorish")
    assert isinstance(connector, SlowRecommender)
    (request,) = connector.calls
    assert request.customer_id == fresh[0]
    assert request.products == ("CONSOLE1",)
    assert "CONSOLE1" in request.exclude
    assert request.limit == 2
    assert request.keys["email"] == f"c{fresh[0]}@example.no"


def recommender(tmp_path: Path, **settings: Any) -> SlowRecommender:
    return SlowRecommender(SlowSettings(**settings), ConnectorContext(name="raptorish", project_dir=tmp_path))


def builtin(requests: Mapping[int, RecommendationRequest]) -> dict[int, list[Recommendation]]:
    return {key: [Recommendation("BUILTIN", reason="the built-in")] for key in requests}


def requests(n: int, **values: Any) -> dict[int, RecommendationRequest]:
    return {key: RecommendationRequest(customer_id=key, **values) for key in range(1, n + 1)}


def test_calls_run_concurrently_so_fifty_answers_take_a_few_waves_not_fifty(tmp_path: Path) -> None:
    stats = FallbackStats()
    started = time.monotonic()
    answers = ask(recommender(tmp_path, delay=0.1), requests(50), builtin, timeout=0.2, concurrency=8, stats=stats)
    elapsed = time.monotonic() - started
    assert {answer.source for answer in answers.values()} == {"raptorish"}
    assert stats.answered == 50
    assert elapsed < 2.0  # seven waves of 0.1 s; one after the other would be 5 s


def test_a_service_that_hangs_costs_one_timeout_then_the_rest_is_not_even_tried(tmp_path: Path) -> None:
    connector = recommender(tmp_path, delay=1.0)
    stats = FallbackStats()
    started = time.monotonic()
    answers = ask(connector, requests(50), builtin, timeout=0.2, concurrency=8, stats=stats)
    elapsed = time.monotonic() - started
    assert {answer.source for answer in answers.values()} == {"builtin"}
    assert stats.fallbacks["timeout"] == 8 and stats.fallbacks["cancelled"] == 42
    assert len(connector.calls) == 8
    assert elapsed < 0.6


def test_errors_and_empty_or_excluded_answers_are_answered_by_the_builtin(tmp_path: Path) -> None:
    failing = ask(recommender(tmp_path, fail=True), requests(2), builtin, timeout=0.2)
    assert {(a.source, a.fallback) for a in failing.values()} == {("builtin", "error")}
    excluded = ask(
        recommender(tmp_path, answer=["GAME8"]), requests(1, exclude=frozenset({"GAME8"})), builtin, timeout=0.2
    )
    assert excluded[1].source == "builtin" and excluded[1].fallback == "empty"
    assert excluded[1].items == [Recommendation("BUILTIN", reason="the built-in")]


def test_the_connectors_answer_is_cut_to_the_limit_without_the_excluded(tmp_path: Path) -> None:
    connector = recommender(tmp_path, answer=["A", "B", "A", "C", "D"])
    (answer,) = ask(connector, requests(1, exclude=frozenset({"B"}), limit=2), builtin, timeout=0.2).values()
    assert [item.sku for item in answer.items] == ["A", "C"]


def test_an_answer_that_is_not_recommendations_counts_as_a_failed_call(tmp_path: Path) -> None:
    class Garbled(SlowRecommender):
        def recommend(self, request: RecommendationRequest, *, timeout: float) -> list[Recommendation]:
            return ["GAME8"]  # type: ignore[list-item]

    connector = Garbled(SlowSettings(), ConnectorContext(name="raptorish", project_dir=tmp_path))
    (answer,) = ask(connector, requests(1), builtin, timeout=0.2).values()
    assert (answer.source, answer.fallback) == ("builtin", "error")
