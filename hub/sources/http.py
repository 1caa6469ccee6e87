"""HTTP for source connectors: one pooled client per source that retries what is transient and paces itself.

A source reads, and reads are idempotent, so every request (a GraphQL or JSON-RPC ``POST`` included) is retried
when the answer says "not now": a transport error (refused connection, read timeout, connection cut mid-body),
408, 500, 502, 503, 504, a 429 (after its ``Retry-After``, seconds or an HTTP date; else after a backoff), and
whatever API-specific throttle answer the source recognises (``throttle``: e.g. Shopify's HTTP 200 with
``THROTTLED``, which says how long its bucket takes to refill). Anything else (2xx, 3xx, 4xx) is returned for the
source to judge, because only it knows what a 404 or a 401 means for its API.

When the attempts run out, or an API asks to wait longer than :attr:`RetryPolicy.max_wait`, the request raises
:class:`hub.SourceError` in plain words, naming the method and path but never the query string (which may hold
a key). The engine then marks the stream failed; the batches before stay committed and the next sync resumes.

Pacing: ``rate_limit`` spaces request starts evenly, and :meth:`SourceHttp.pause` holds the next request, for
APIs that announce their budget (``extensions.cost.throttleStatus``, ``X-Shopify-Shop-Api-Call-Limit``) so a
source is never throttled in steady state.

Tests make the backoff short with :func:`use_policy`, a context variable, so no source needs a test-only setting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from hub.delivery.auth import TokenError
from hub.delivery.outcomes import retry_after_seconds
from hub.errors import SourceError

#: Statuses that mean "try again later" for a read.
RETRY_STATUSES = frozenset({408, 500, 502, 503, 504})

#: Given a response, the seconds an API-specific throttle answer asks to wait, or None when it is no throttle.
Throttle = Callable[[httpx.Response], float | None]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard a source tries one request.

    ``attempts``: tries in all (the first included). ``backoff``: the scale of the exponential, jittered wait
    between tries when the API does not say how long (doubling from ``backoff`` up to ``max_backoff``).
    ``max_wait``: the longest wait an API may ask for (``Retry-After``, a throttle); asking longer fails the
    read at once with the wait in the message, since holding a sync for an hour helps nobody.
    """

    attempts: int = 6
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_wait: float = 120.0


DEFAULT_POLICY = RetryPolicy()
_policy: ContextVar[RetryPolicy | None] = ContextVar("hub_source_retry_policy", default=None)


@contextmanager
def use_policy(policy: RetryPolicy) -> Iterator[RetryPolicy]:
    """Within the block, every :class:`SourceHttp` without a policy of its own uses ``policy`` (tests: fast backoff)."""
    token = _policy.set(policy)
    try:
        yield policy
    finally:
        _policy.reset(token)


def describe(response: httpx.Response, limit: int = 200) -> str:
    """``"401 Unauthorized from GET /admin/api/customers.json: <start of the body>"``; never the query string."""
    request = response.request
    head = f"{response.status_code} {response.reason_phrase} from {request.method} {request.url.path}"
    try:
        text = " ".join(response.text.split())
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        text = ""
    return f"{head}: {text[:limit]}" if text else head


class _Again(Exception):
    """One attempt failed transiently. ``delay``: what the API asked for (None: back off); ``reason``: for messages."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class SourceHttp:
    """A source's HTTP client: pooled connections, explicit timeouts, retries and pacing (see the module docstring).

    ``base_url``, ``headers``, ``auth`` and ``timeout`` are httpx's. ``name`` (the connector's) starts every
    error message. ``transport``, ``sleep`` and ``clock`` are for tests.
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        headers: Mapping[str, str] | None = None,
        auth: httpx.Auth | None = None,
        timeout: float | httpx.Timeout = 30.0,
        rate_limit: float | None = None,
        throttle: Throttle | None = None,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.throttle = throttle
        self.policy = policy
        self.client = httpx.Client(
            base_url=base_url,
            headers=dict(headers or {}),
            auth=auth,
            timeout=timeout,
            transport=transport or httpx.HTTPTransport(retries=0),
        )
        self._interval = 1.0 / rate_limit if rate_limit else 0.0
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._next_start = 0.0  # clock value before which no request may start

    # ------------------------------------------------------------------------------------------------ requests

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send with retries; the final response, whose body is read. ``kwargs``: httpx's (params, json, headers...)."""
        return self._retrying(method, url, kwargs, stream=False)

    @contextmanager
    def stream(self, method: str, url: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """Like :meth:`request`, but the body is not read: iterate it (``iter_lines``) inside the block.

        Retried until an answer that is not transient arrives; a connection cut while the caller reads the body
        is the caller's to handle (a bulk result is usually re-read from its URL).
        """
        response = self._retrying(method, url, kwargs, stream=True)
        try:
            yield response
        finally:
            response.close()

    def pause(self, seconds: float) -> None:
        """Hold the next request at least ``seconds`` from now (adaptive pacing from an API's announced budget)."""
        with self._lock:
            self._next_start = max(self._next_start, self._clock() + max(0.0, seconds))

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> SourceHttp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------------ inside

    def _retrying(self, method: str, url: str, kwargs: dict[str, Any], *, stream: bool) -> httpx.Response:
        policy = self.policy or _policy.get() or DEFAULT_POLICY
        backoff = wait_random_exponential(multiplier=policy.backoff, max=policy.max_backoff)

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, _Again) and error.delay is not None:
                return error.delay
            return float(backoff(state))

        started = self._clock()
        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts),
            wait=wait,
            retry=retry_if_exception_type(_Again),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._attempt(method, url, kwargs, stream=stream, policy=policy)
        except _Again as again:
            seconds = self._clock() - started
            raise SourceError(
                f"{self.name}: {method} {_path(self.client, url)} failed {_times(policy.attempts)} over "
                f"{seconds:.0f} s (last: {again.reason}); the API may be down or overloaded. The next sync resumes "
                "from the last committed batch"
            ) from None
        raise AssertionError("unreachable: tenacity either returns or re-raises")  # pragma: no cover

    def _attempt(
        self, method: str, url: str, kwargs: dict[str, Any], *, stream: bool, policy: RetryPolicy
    ) -> httpx.Response:
        self._wait_turn()
        request = self.client.build_request(method, url, **kwargs)
        try:
            response = self.client.send(request, stream=stream)
        except TokenError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status == 429 or status in RETRY_STATUSES:
                assert exc.response is not None
                raise _Again(str(exc), self._asked(exc.response, policy)) from None
            raise SourceError(f"{self.name}: {exc}") from None
        except httpx.TransportError as exc:
            raise _Again(f"{type(exc).__name__} on {method} {request.url.path}") from None
        status = response.status_code
        if status == 429 or status in RETRY_STATUSES:
            delay = self._asked(response, policy) if status == 429 else None
            reason = f"{status} {response.reason_phrase}"
            response.close()
            raise _Again(reason, delay)
        if self.throttle is not None and not stream:  # a streamed body is a download, not an API answer
            asked = self.throttle(response)
            if asked is not None:
                response.close()
                raise _Again(f"throttled by {request.url.path}", self._bounded(asked, response, policy))
        return response

    def _asked(self, response: httpx.Response, policy: RetryPolicy) -> float | None:
        """The wait a 429 asks for (Retry-After), bounded by ``policy.max_wait``; None: back off."""
        asked = retry_after_seconds(response)
        return None if asked is None else self._bounded(asked, response, policy)

    def _bounded(self, asked: float, response: httpx.Response, policy: RetryPolicy) -> float:
        if asked > policy.max_wait:
            response.close()
            raise SourceError(
                f"{self.name}: {response.request.method} {response.request.url.path} asks to wait {asked:.0f} s "
                f"({response.status_code} {response.reason_phrase}), longer than {policy.max_wait:.0f} s; "
                "run the sync again later"
            )
        self.pause(asked)  # later requests of this source wait too: the budget is the API's, not the request's
        return 0.0  # the pause above holds the retry; waiting twice would double the delay

    def _wait_turn(self) -> None:
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start)
            self._next_start = start + self._interval
        if start > now:
            self._sleep(start - now)


def _path(client: httpx.Client, url: str) -> str:
    return httpx.URL(str(client.base_url)).join(url).path


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"
