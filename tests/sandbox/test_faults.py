"""Fault injection as a client sees it, over real loopback HTTP: codes, headers, hangs, lost responses, rates."""

from __future__ import annotations

import logging
import time
from collections import Counter

import httpx
import pytest
from pydantic import ValidationError

from hub.sandbox import Faults

from .tiny import Served


def outcome(client: httpx.Client, method: str = "POST", path: str = "/items", **kwargs) -> str | int:
    """What the client saw: a status code, or the name of the transport error."""
    try:
        return client.request(method, path, json={"n": 1} if method == "POST" else None, **kwargs).status_code
    except httpx.TransportError as exc:
        return type(exc).__name__


def test_errors_are_mixed_5xx_answered_before_the_app(served: Served, faulty):
    faulty(error_rate=1, seed=3)
    seen = Counter(outcome(served.client) for _ in range(60))
    assert set(seen) == {500, 502, 503}
    assert served.notes.items == {}


def test_an_error_body_says_it_was_injected(served: Served, faulty):
    faulty(error_rate=1)
    response = served.client.post("/items", json={"n": 1})
    assert response.headers["content-type"] == "application/json"
    assert response.json()["injected"] is True
    assert response.json()["status"] == response.status_code


@pytest.mark.parametrize(("retry_after", "header"), [(3, "3"), (0, "0"), (None, None)])
def test_a_429_carries_retry_after_as_configured(served: Served, faulty, retry_after, header):
    faulty(rate_429=1, retry_after=retry_after)
    response = served.client.post("/items", json={"n": 1})
    assert response.status_code == 429
    assert response.headers.get("retry-after") == header
    assert served.notes.items == {}


def test_a_timeout_fires_the_clients_read_timeout_and_the_request_is_never_processed(served: Served, faulty):
    injector = faulty(timeout_rate=1, hang_seconds=2)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        served.client.post("/items", json={"n": 1}, timeout=httpx.Timeout(5, read=0.3))
    assert time.monotonic() - started < 1.5
    injector.faults = Faults()
    time.sleep(0.3)  # the hang ended when the client went away, without processing
    assert served.client.get("/items").json() == []
    assert injector.stats["timeout"] == 1


def test_a_hang_the_client_outwaits_ends_in_a_504_without_processing(served: Served, faulty):
    faulty(timeout_rate=1, hang_seconds=0.2)
    response = served.client.post("/items", json={"n": 1})
    assert response.status_code == 504
    assert served.notes.items == {}


def test_a_drop_processes_the_request_then_loses_the_response(served: Served, faulty, caplog):
    faulty(drop_rate=1)
    with caplog.at_level(logging.INFO, logger="uvicorn.error"), pytest.raises(httpx.RemoteProtocolError):
        served.client.post("/items", json={"order": "A1"})
    assert list(served.notes.items.values()) == [{"order": "A1"}]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # a deliberate cut is not an app error


def test_a_drop_cuts_a_response_that_has_no_body_too(served: Served, faulty):
    served.notes.items[7] = {"n": 7}
    faulty(drop_rate=1, methods=["DELETE"])
    with pytest.raises(httpx.RemoteProtocolError):
        served.client.delete("/items/7")
    assert served.notes.items == {}


def test_a_drop_with_a_delay_is_a_read_timeout_after_the_request_was_processed(served: Served, faulty):
    faulty(drop_rate=1, drop_delay=3)
    with pytest.raises(httpx.ReadTimeout):
        served.client.post("/items", json={"order": "A2"}, timeout=httpx.Timeout(5, read=0.3))
    assert list(served.notes.items.values()) == [{"order": "A2"}]


def test_latency_delays_requests_the_faults_apply_to(served: Served, faulty):
    injector = faulty(latency=0.3)
    started = time.monotonic()
    assert served.client.post("/items", json={"n": 1}).status_code == 201
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert served.client.get("/_emulator/received").status_code == 200
    assert time.monotonic() - started < 0.3
    assert injector.stats["delayed"] == 1


def test_rates_add_up_and_the_client_sees_what_stats_count(served: Served, faulty):
    injector = faulty(error_rate=0.1, rate_429=0.1, timeout_rate=0.05, hang_seconds=0.001, drop_rate=0.05, seed=11)
    seen = Counter(outcome(served.client) for _ in range(400))
    kinds = Counter(
        {
            "error": seen[500] + seen[502] + seen[503],
            "rate_429": seen[429],
            "timeout": seen[504],
            "drop": seen["RemoteProtocolError"],
            "passed": seen[201],
        }
    )
    assert sum(kinds.values()) == 400
    assert abs(kinds["error"] - 40) <= 20 and abs(kinds["rate_429"] - 40) <= 20
    assert abs(kinds["timeout"] - 20) <= 14 and abs(kinds["drop"] - 20) <= 14
    assert abs(400 - kinds["passed"] - 120) <= 30  # 30% faulty
    assert injector.stats == {**kinds, "delayed": 0}
    assert len(served.notes.items) == kinds["passed"] + kinds["drop"]


def test_the_same_seed_gives_the_same_faults(served: Served, faulty):
    runs = []
    for _ in range(2):
        faulty(error_rate=0.2, rate_429=0.2, seed=42)
        runs.append([outcome(served.client) for _ in range(50)])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) > 2


def test_one_draw_picks_one_fault_in_bands_laid_end_to_end():
    faults = Faults(error_rate=0.3, rate_429=0.1, timeout_rate=0.1, drop_rate=0.1)
    assert [faults.choose(d) for d in (0.0, 0.15, 0.29, 0.35, 0.45, 0.55, 0.6, 0.99)] == [
        ("error", 500),
        ("error", 502),
        ("error", 503),
        ("rate_429", 429),
        ("timeout", 504),
        ("drop", 0),
        None,
        None,
    ]


def test_faults_are_replaced_at_runtime_over_http(served: Served):
    assert served.client.put("/_emulator/faults", json={"error_rate": 1}).json()["error_rate"] == 1
    assert outcome(served.client) in (500, 502, 503)
    patched = served.client.patch("/_emulator/faults", json={"error_rate": 0, "rate_429": 1, "retry_after": 5})
    assert patched.status_code == 200
    assert served.client.get("/_emulator/faults").json() == Faults(rate_429=1, retry_after=5).model_dump(mode="json")
    assert served.client.post("/items", json={}).headers["retry-after"] == "5"


def test_invalid_faults_over_http_are_refused_and_change_nothing(served: Served, faulty):
    faulty(error_rate=0.5)
    refused = served.client.put("/_emulator/faults", json={"error_rate": 0.7, "rate_429": 0.7})
    assert refused.status_code == 422
    assert "more than 1" in refused.text
    assert served.client.patch("/_emulator/faults", json={"bogus": 1}).status_code == 422
    assert served.client.put("/_emulator/faults", content=b"[1]").status_code == 400
    assert served.client.get("/_emulator/faults").json()["error_rate"] == 0.5


def test_emulator_paths_are_never_faulted(served: Served, faulty):
    faulty(error_rate=0.5, rate_429=0.5, paths=["*", "/_emulator/*"])
    assert {outcome(served.client, "GET", "/_emulator/received") for _ in range(20)} == {200}
    assert served.client.get("/_emulator/faults/stats").status_code == 200


def test_paths_and_methods_choose_the_requests_to_fault(served: Served, faulty):
    faulty(error_rate=1, paths=["/items*"], methods=["post"])
    assert outcome(served.client, "POST", "/items") in (500, 502, 503)
    assert outcome(served.client, "GET", "/items") == 200
    assert outcome(served.client, "DELETE", "/items/1") == 204
    assert outcome(served.client, "POST", "/other") == 404


def test_stats_count_each_fault_and_can_be_reset(served: Served, faulty):
    faulty(error_rate=0.5, seed=1)
    for _ in range(10):
        outcome(served.client)
    stats = served.client.get("/_emulator/faults/stats").json()
    assert stats["error"] + stats["passed"] == 10 and stats["error"] > 0
    assert served.client.delete("/_emulator/faults/stats").json()["error"] == 0
    assert served.injector.stats == dict.fromkeys(stats, 0)


def test_a_faulted_request_with_a_body_leaves_the_connection_usable(served: Served, faulty):
    faulty(error_rate=1, methods=["POST"])
    with httpx.Client(base_url=served.url, limits=httpx.Limits(max_connections=1), timeout=2) as client:
        for _ in range(3):
            assert client.post("/items", content=b"x" * 200_000).status_code >= 500
            assert client.get("/items").status_code == 200


def test_faults_parse_from_the_command_line_form():
    faults = Faults.parse("error_rate=0.1, rate_429=0.05,retry_after=null,methods=post|put,paths=/v2/*|/v3/*,seed=7")
    assert (faults.error_rate, faults.rate_429, faults.retry_after, faults.seed) == (0.1, 0.05, None, 7)
    assert faults.methods == ["POST", "PUT"] and faults.paths == ["/v2/*", "/v3/*"]
    with pytest.raises(ValueError, match="error_rate"):
        Faults.parse("error_rate=lots")
    with pytest.raises(ValueError, match="NAME=VALUE"):
        Faults.parse("error_rate")


def test_rates_that_add_up_to_more_than_one_are_refused():
    with pytest.raises(ValidationError, match="more than 1"):
        Faults(error_rate=0.5, drop_rate=0.6)
