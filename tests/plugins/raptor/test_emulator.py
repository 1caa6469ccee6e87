"""The Raptor emulator over loopback HTTP: tracking is recorded and never refused; the recommendations API answers
as the notes describe, and refuses what a real account would; inspection is never faulted."""

import httpx
import pytest

from hub.sandbox.faults import FaultInjector, Faults
from hub_plugins.raptor._state import RaptorState
from hub_plugins.raptor.emulator import DEFAULT_API_KEY, PIXEL


def test_tracking_gets_are_recorded_and_answered_with_a_pixel(base_url: str, state: RaptorState) -> None:
    params = {"p1": "buy", "p2": "GRL-1", "p21": "R1", "ruid": "YUB4Lm5v", "source": "webhook"}

    stream = httpx.get(f"{base_url}/4711.stream", params=params)
    page = httpx.get(f"{base_url}/4711.rsa", params={"p1": "visit", "p2": "GRL-1"})

    assert stream.status_code == page.status_code == 200
    assert stream.headers["content-type"] == "image/gif" and stream.content == PIXEL
    assert [e["endpoint"] for e in state.events] == ["stream", "rsa"]
    assert state.buys() == [{"order": "R1", "product": "GRL-1", "ruid": "YUB4Lm5v", "params": params}]


def test_the_account_reads_positions_as_its_live_tracking_map_says(base_url: str, state: RaptorState) -> None:
    httpx.post(f"{base_url}/_emulator/config", json={"live_tracking": {"order": "p9"}})

    httpx.get(f"{base_url}/4711.stream", params={"p1": "buy", "p2": "A", "p9": "R9"})

    assert state.buy_counts() == {("R9", "A"): 1}


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        ("/v1/4711/GetUserRecommendations/5/wrong", {"UserIdentifier": "u", "json": "True"}, 401),
        ("/v1/9999/GetUserRecommendations/5/" + DEFAULT_API_KEY, {"UserIdentifier": "u", "json": "True"}, 404),
        ("/v1/4711/NoSuchModule/5/" + DEFAULT_API_KEY, {"UserIdentifier": "u", "json": "True"}, 404),
        ("/v1/4711/GetUserRecommendations/0/" + DEFAULT_API_KEY, {"UserIdentifier": "u", "json": "True"}, 400),
        ("/v1/4711/GetUserRecommendations/5/" + DEFAULT_API_KEY, {"json": "True"}, 400),
        ("/v1/4711/GetUserRecommendations/5/" + DEFAULT_API_KEY, {"UserIdentifier": "u"}, 400),
    ],
)
def test_the_recommendations_api_refuses_what_an_account_would(
    base_url: str, path: str, query: dict[str, str], status: int
) -> None:
    assert httpx.get(base_url + path, params=query).status_code == status


def test_recommendations_are_a_json_array_of_recommended_id_and_priority(base_url: str, state: RaptorState) -> None:
    for order, products in {"1": ("A", "B"), "2": ("A", "B", "C"), "3": ("A", "C"), "4": ("A", "B")}.items():
        for product in products:
            state.track("4711", "stream", {"p1": "buy", "p2": product, "p21": order, "ruid": f"u{order}"})
    url = f"{base_url}/v1/4711/GetOtherCustomersAlsoBought/2/{DEFAULT_API_KEY}"

    answer = httpx.get(url, params={"ProductId": "A", "json": "True"})
    history = httpx.get(
        f"{base_url}/v1/4711/GetUserIdHistory/10/{DEFAULT_API_KEY}", params={"UserIdentifier": "u2", "json": "True"}
    ).json()

    assert answer.json() == [{"RecommendedId": "B", "Priority": 1}, {"RecommendedId": "C", "Priority": 2}]
    assert [h["RecommendedId"] for h in history] == ["C", "B", "A"] and "CreateDate" in history[0]


def test_inspection_plants_resets_and_is_never_faulted(
    base_url: str, state: RaptorState, injector: FaultInjector
) -> None:
    injector.faults = Faults(error_rate=1.0)
    planted = httpx.post(
        f"{base_url}/_emulator/recommendations", json={"method": "GetUserRecommendations", "id": "u", "products": ["X"]}
    )
    snapshot = httpx.get(f"{base_url}/_emulator/state").json()
    reset = httpx.post(f"{base_url}/_emulator/reset")

    assert planted.json() == {"planted": 1} and snapshot["planted"] == 1
    assert reset.status_code == 200 and state.table == {}
    assert httpx.get(f"{base_url}/4711.stream").status_code in (500, 502, 503)
