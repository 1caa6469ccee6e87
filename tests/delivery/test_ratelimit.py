"""The adaptive rate limiter on a fake clock, and the limits as a real HTTP server sees them."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from hub.config._models import DeliveryConfig
from hub.connectors import ClientOptions
from hub.delivery.dispatcher import deliver
from hub.delivery.http import make_client
from hub.delivery.ratelimit import AdaptiveRateLimiter, ConcurrencyLimit
from hub.sandbox.server import serve


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def limiter(rate: float | None, **options) -> tuple[AdaptiveRateLimiter, FakeClock]:
    clock = FakeClock()
    return AdaptiveRateLimiter(rate, clock=clock, sleep=clock.sleep, **options), clock


def test_the_bucket_allows_a_tenth_of_a_seconds_burst_then_paces_requests_at_the_rate():
    bucket, clock = limiter(100.0)
    for _ in range(10):
        bucket.acquire()
    assert clock.slept == []
    for _ in range(5):
        bucket.acquire()
    assert clock.now - 100.0 == pytest.approx(0.05)


def test_no_tokens_gather_during_a_retry_after_pause():
    bucket, clock = limiter(100.0)
    bucket.on_throttle(retry_after=2.0)  # the rate is halved to 50/s, and everybody waits 2 s
    for _ in range(5):
        bucket.acquire()
    assert clock.now - 100.0 == pytest.approx(2.0 + 5 / 50)


def test_a_429_halves_the_rate_down_to_the_floor():
    bucket, clock = limiter(8.0, floor=1.5)
    rates = []
    for _ in range(4):
        bucket.on_throttle()
        rates.append(bucket.rate)
        clock.now += 5
    assert rates == [4.0, 2.0, 1.5, 1.5]


def test_a_burst_of_429s_cuts_the_rate_once():
    bucket, _ = limiter(8.0)
    for _ in range(5):
        bucket.on_throttle()
    assert bucket.rate == 4.0


def test_successes_bring_the_rate_back_up_to_nine_tenths_of_the_refused_one_then_slowly_to_the_configured_one():
    bucket, clock = limiter(10.0)
    bucket.on_throttle()
    assert bucket.rate == 5.0
    for _ in range(5):
        bucket.on_success()
    assert 5.0 < bucket.rate < 9.0
    for _ in range(100):
        bucket.on_success()
    assert bucket.rate == pytest.approx(9.0)
    clock.now += 50  # 0.1 % of the configured rate a second without a 429: half way back
    bucket.on_success()
    assert bucket.rate == pytest.approx(9.5)
    clock.now += 500
    for _ in range(100):
        bucket.on_success()
    assert bucket.rate == 10.0


def test_retry_after_stops_every_caller_until_it_has_passed():
    bucket, clock = limiter(100.0)
    bucket.on_throttle(retry_after=2.0)
    bucket.acquire()
    assert clock.now - 100.0 >= 2.0


def test_without_a_configured_rate_a_429_starts_one_and_successes_lift_it_again():
    bucket, clock = limiter(None, unlimited_start=10.0)
    bucket.acquire()
    assert clock.slept == []
    bucket.on_throttle()
    assert bucket.rate == 10.0
    for _ in range(1000):
        bucket.on_success()
    assert bucket.rate is None


def test_the_bucket_is_thread_safe_under_real_threads():
    bucket = AdaptiveRateLimiter(200.0, burst=1.0)
    started = time.monotonic()

    def take() -> None:
        for _ in range(10):
            bucket.acquire()

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - started >= 79 / 200


def test_the_concurrency_limit_holds_under_real_threads():
    limit = ConcurrencyLimit(3)
    active, peak, lock = [0], [0], threading.Lock()

    def work() -> None:
        with limit.slot():
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.01)
            with lock:
                active[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 3


# ------------------------------------------------------------------------------------------- over HTTP


class Server:
    """A tiny API: POST /messages answers from a per-key plan (429 with Retry-After, slow answers), else 200."""

    def __init__(self) -> None:
        self.plan: dict[str, list[tuple[int, dict[str, str], float]]] = {}
        self.received: list[tuple[float, str]] = []
        self.in_flight = 0
        self.peak = 0
        self.lock = threading.Lock()

    async def messages(self, request: Request) -> JSONResponse:
        import anyio

        body = await request.json()
        key = body["key"]
        with self.lock:
            self.received.append((time.monotonic(), key))
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            steps = self.plan.get(key)
            status, headers, delay = steps.pop(0) if steps else (200, {}, 0.0)
        try:
            await anyio.sleep(delay or 0.005)
        finally:
            with self.lock:
                self.in_flight -= 1
        return JSONResponse({"ok": status < 300}, status_code=status, headers=headers)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/messages", self.messages, methods=["POST"])])

    def times(self, key: str) -> list[float]:
        return [t for t, k in self.received if k == key]


@pytest.fixture
def server() -> Iterator[tuple[Server, str]]:
    api = Server()
    with serve(api.app()) as url:
        yield api, url


def webhook(url: str, **delivery) -> dict:
    return {"plugin": "webhook", "settings": {"base_url": url}, "delivery": {"backoff_initial": 0.01, **delivery}}


def test_retry_after_is_honoured_before_the_retry(make_env, server):
    api, url = server
    env = make_env({"hook": webhook(url)})
    key = env.enqueue(destination="hook")
    api.plan[key] = [(429, {"Retry-After": "1"}, 0.0)]
    deliver(env.hub)
    first, second = api.times(key)
    assert second - first >= 1.0
    assert env.status(key) == "sent"


def test_the_configured_rate_limit_paces_requests(make_env, server):
    _, url = server
    env = make_env({"hook": webhook(url, rate_limit=20, concurrency=4)})
    for _ in range(30):
        env.enqueue(destination="hook")
    started = time.monotonic()
    deliver(env.hub)
    # 20 tokens of burst, then 10 more at 20 per second.
    assert time.monotonic() - started >= 0.45
    assert set(env.statuses().values()) == {"sent"}


def test_a_destination_types_default_rate_limit_applies_without_configuration(make_env, server, monkeypatch):
    _, url = server
    env = make_env({"hook": webhook(url)})
    monkeypatch.setattr(env.hub.connector_types["webhook"], "default_rate_limit", 7.0)
    assert env.hub.limits("hook").rate.target == 7.0


def test_requests_in_flight_never_exceed_the_concurrency(make_env, server):
    api, url = server
    env = make_env({"hook": webhook(url, concurrency=2)})
    for _ in range(10):
        key = env.enqueue(destination="hook")
        api.plan[key] = [(200, {}, 0.05)]
    deliver(env.hub)
    assert api.peak == 2


def test_a_read_timeout_is_retried_for_at_least_once_and_parked_for_at_most_once(make_env, server):
    api, url = server
    env = make_env({"hook": webhook(url, read_timeout=0.2)})
    upsert = env.enqueue("contact_upsert", destination="hook")
    trigger = env.enqueue("trigger", destination="hook")
    api.plan[upsert] = [(200, {}, 0.6)]
    api.plan[trigger] = [(200, {}, 0.6)]
    deliver(env.hub)
    assert env.status(upsert) == "sent" and len(api.times(upsert)) == 2
    assert (env.status(trigger), env.row(trigger).error_class) == ("dead", "unknown")
    assert len(api.times(trigger)) == 1


class _Plain:
    """What make_client reads of a destination: where to send."""

    def __init__(self, url: str) -> None:
        self.url = url

    def client_options(self) -> ClientOptions:
        return ClientOptions(base_url=self.url)


def test_a_request_keeps_its_slot_until_its_body_is_read_so_the_next_one_never_waits_in_the_pool():
    """httpcore's queue can close a connection under a waiting request (httpcore #1110); hub's own slot must be
    where the next request waits, which also means httpx's pool timeout never fires for it."""

    async def slow(request: Request) -> StreamingResponse:
        import anyio

        async def body() -> AsyncIterator[bytes]:
            yield b"first half, "
            await anyio.sleep(0.6)
            yield b"second half"

        return StreamingResponse(body())

    async def fast(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/slow", slow), Route("/fast", fast)])
    with serve(app) as url:
        client = make_client(_Plain(url), DeliveryConfig(concurrency=1, pool_timeout=0.2))  # type: ignore[arg-type]
        outcome: list[object] = []

        def second() -> None:
            try:
                outcome.append(client.get("/fast").status_code)
            except httpx.HTTPError as exc:
                outcome.append(exc)

        with client.stream("GET", "/slow") as first:  # its headers are in, its body is still coming
            waiting = threading.Thread(target=second)
            waiting.start()
            time.sleep(0.4)  # past the pool timeout
            assert waiting.is_alive() and outcome == []
            assert first.read() == b"first half, second half"
        waiting.join(5)
        client.close()
    assert outcome == [200]
