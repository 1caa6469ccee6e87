"""``SourceHttp``: what is retried and how long it waits, what is returned, what gives up, and pacing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from hub import SourceError
from hub.delivery.auth import TokenError
from hub.sandbox import FaultInjector, Faults, serve
from hub.sources.http import RetryPolicy, SourceHttp, describe, use_policy


class FakeTime:
    """A clock that only sleeping moves; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds

    def clock(self) -> float:
        return self.now


Answer = httpx.Response | Exception


def scripted(*answers: Answer) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport answering in order (the last answer repeats); it records each request."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle), seen


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_http(fake_time: FakeTime) -> Iterator[Callable[..., SourceHttp]]:
    made: list[SourceHttp] = []

    def make(transport: httpx.BaseTransport, **options: object) -> SourceHttp:
        options.setdefault("policy", RetryPolicy(attempts=4, backoff=1.0, max_backoff=8.0, max_wait=60.0))
        http = SourceHttp(
            "https://api.example.com/v1/",
            name="shop",
            transport=transport,
            sleep=fake_time.sleep,
            clock=fake_time.clock,
            **options,  # type: ignore[arg-type]
        )
        made.append(http)
        return http

    yield make
    for http in made:
        http.close()


def ok(body: object = None) -> httpx.Response:
    return httpx.Response(200, json=body if body is not None else {"data": []})


def test_a_5xx_is_retried_after_a_backoff_and_the_good_answer_returned(make_http, fake_time):
    transport, seen = scripted(httpx.Response(503), httpx.Response(502), ok({"n": 1}))

    response = make_http(transport).get("customers")

    assert response.json() == {"n": 1}
    assert len(seen) == 3
    assert len(fake_time.sleeps) == 2 and all(0 <= s <= 8 for s in fake_time.sleeps)


def test_a_429_waits_as_long_as_retry_after_says(make_http, fake_time):
    transport, _ = scripted(httpx.Response(429, headers={"Retry-After": "7"}), ok())

    make_http(transport).get("customers")

    assert sum(fake_time.sleeps) == pytest.approx(7.0)


def test_a_429_holds_the_requests_that_follow_too(make_http, fake_time):
    transport, _ = scripted(httpx.Response(429, headers={"Retry-After": "5"}), ok())
    http = make_http(transport)
    http.get("customers")
    fake_time.sleeps.clear()

    http.get("orders")

    assert fake_time.sleeps == []  # the 5 s were waited once, by the retry


def test_a_wait_longer_than_max_wait_gives_up_at_once_and_says_how_long(make_http, fake_time):
    transport, seen = scripted(httpx.Response(429, headers={"Retry-After": "3600"}))

    with pytest.raises(SourceError, match=r"shop: GET /v1/customers asks to wait 3600 s .*longer than 60 s"):
        make_http(transport).get("customers")

    assert len(seen) == 1 and fake_time.sleeps == []


def test_a_transport_error_is_retried(make_http):
    transport, seen = scripted(httpx.ConnectError("refused"), httpx.RemoteProtocolError("cut"), ok())

    assert make_http(transport).get("customers").status_code == 200
    assert len(seen) == 3


def test_giving_up_names_the_path_and_the_last_answer_but_not_the_query(make_http):
    transport, seen = scripted(httpx.Response(500))

    with pytest.raises(SourceError) as caught:
        make_http(transport).get("customers", params={"consumer_secret": "cs_very_secret"})

    assert len(seen) == 4
    assert str(caught.value).startswith("shop: GET /v1/customers failed 4 times over")
    assert "500 Internal Server Error" in str(caught.value)
    assert "cs_very_secret" not in str(caught.value)


@pytest.mark.parametrize("status", [200, 301, 400, 401, 404, 422])
def test_other_answers_are_returned_unretried(make_http, status):
    transport, seen = scripted(httpx.Response(status, json={"errors": "nope"}))

    assert make_http(transport).get("customers").status_code == status
    assert len(seen) == 1


def test_a_post_is_retried_with_its_body(make_http):
    transport, seen = scripted(httpx.Response(502), ok())

    make_http(transport).post("graphql.json", json={"query": "{ shop { name } }"})

    assert [json.loads(request.content) for request in seen] == [{"query": "{ shop { name } }"}] * 2


def test_an_api_specific_throttle_answer_waits_as_long_as_it_asks(make_http, fake_time):
    throttled = httpx.Response(200, json={"errors": [{"extensions": {"code": "THROTTLED"}}], "wait": 2.5})
    transport, seen = scripted(throttled, ok({"data": {"customers": []}}))

    def throttle(response: httpx.Response) -> float | None:
        body = response.json()
        return body["wait"] if body.get("errors") else None

    response = make_http(transport, throttle=throttle).post("graphql.json", json={})

    assert response.json() == {"data": {"customers": []}}
    assert len(seen) == 2
    assert sum(fake_time.sleeps) == pytest.approx(2.5)


def test_a_token_endpoint_that_answers_5xx_is_retried(make_http):
    transport, seen = scripted(TokenError("the token endpoint answered 503", httpx.Response(503)), ok())

    assert make_http(transport).get("customers").status_code == 200
    assert len(seen) == 2


def test_a_refused_token_is_a_source_error_in_its_own_words(make_http):
    transport, _ = scripted(TokenError("the token endpoint refused the client credentials (401)"))

    with pytest.raises(SourceError, match=r"^shop: the token endpoint refused the client credentials \(401\)$"):
        make_http(transport).get("customers")


def test_rate_limit_spaces_request_starts(make_http, fake_time):
    transport, _ = scripted(ok())
    http = make_http(transport, rate_limit=4)

    for _ in range(3):
        http.get("customers")

    assert fake_time.sleeps == [0.25, 0.25]


def test_pause_holds_the_next_request(make_http, fake_time):
    transport, _ = scripted(ok())
    http = make_http(transport)

    http.pause(1.5)
    http.get("customers")

    assert fake_time.sleeps == [1.5]


def test_a_stream_is_retried_until_its_headers_are_good_then_read_line_by_line(make_http):
    transport, seen = scripted(httpx.Response(503), httpx.Response(200, content=b'{"id": 1}\n{"id": 2}\n'))

    with make_http(transport).stream("GET", "https://storage.example.com/bulk.jsonl") as response:
        lines = [json.loads(line) for line in response.iter_lines()]

    assert lines == [{"id": 1}, {"id": 2}]
    assert len(seen) == 2


def test_use_policy_applies_to_clients_without_a_policy_of_their_own(make_http, fake_time):
    transport, seen = scripted(httpx.Response(500))

    with use_policy(RetryPolicy(attempts=2, backoff=0.001)), pytest.raises(SourceError, match="failed 2 times"):
        make_http(transport, policy=None).get("customers")

    assert len(seen) == 2


def test_describe_gives_status_method_path_and_the_start_of_the_body_without_the_query():
    request = httpx.Request("GET", "https://api.example.com/v1/customers?api_key=secret")
    response = httpx.Response(401, json={"errors": "[API] Invalid API key or access token"}, request=request)

    assert (
        describe(response)
        == '401 Unauthorized from GET /v1/customers: {"errors":"[API] Invalid API key or access token"}'
    )


def test_reads_over_loopback_survive_30_percent_transient_faults():
    async def app(scope, receive, send):
        body = json.dumps({"path": scope["path"]}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    faults = Faults(error_rate=0.15, rate_429=0.1, drop_rate=0.05, retry_after=0, seed=3)
    injector = FaultInjector(app, faults)
    with serve(injector) as base_url, SourceHttp(base_url, name="shop", policy=RetryPolicy(10, 0.01, 0.05)) as http:
        answers = [http.get(f"/page/{n}").json() for n in range(40)]

    assert answers == [{"path": f"/page/{n}"} for n in range(40)]
    assert injector.stats["error"] + injector.stats["rate_429"] + injector.stats["drop"] > 5
