"""The Shopify GraphQL Admin API over :class:`hub.sources.http.SourceHttp`: errors in plain words, and the cost bucket.

Shopify meters GraphQL by *cost*: every answer reports ``extensions.cost.throttleStatus`` (``maximumAvailable``,
``currentlyAvailable``, ``restoreRate`` points per second), and a query dearer than what is available is not run
but answered ``THROTTLED`` (HTTP 200). :class:`CostBucket` keeps the last status and, before each query, waits
until the bucket has refilled enough for what that query cost last time, so a steady read is never throttled; a
``THROTTLED`` answer is retried after exactly the refill time it implies (through ``SourceHttp``'s throttle hook).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson

from hub import SourceError
from hub.sources.http import SourceHttp, describe
from hub_plugins.shopify.settings import ShopifySettings

USER_AGENT = "hub-shopify/0.1"


class ShopifyAuthError(SourceError):
    """The shop refused the access token (401) or the token lacks a scope (403)."""


@dataclass(slots=True)
class ThrottleStatus:
    """The bucket as the last answer reported it, and when (monotonic seconds)."""

    maximum: float
    available: float
    restore_rate: float
    at: float

    def available_at(self, now: float) -> float:
        return min(self.maximum, self.available + self.restore_rate * max(0.0, now - self.at))


class CostBucket:
    """Shopify's leaky bucket as seen from the client: how long to wait before a query of a known cost."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.status: ThrottleStatus | None = None
        self.costs: dict[str, float] = {}  # query text -> its last requested cost

    def observe(self, query: str | None, cost: Any) -> None:
        """Record an answer's ``extensions.cost``: the query's requested cost and the bucket after it."""
        if not isinstance(cost, dict):
            return
        requested = cost.get("requestedQueryCost")
        if query is not None and isinstance(requested, int | float):
            self.costs[query] = float(requested)
        status = cost.get("throttleStatus")
        if isinstance(status, dict):
            with contextlib.suppress(KeyError, TypeError, ValueError):
                self.status = ThrottleStatus(
                    maximum=float(status["maximumAvailable"]),
                    available=float(status["currentlyAvailable"]),
                    restore_rate=float(status["restoreRate"]),
                    at=self.clock(),
                )

    def wait_before(self, query: str) -> float:
        """Seconds until the bucket holds what ``query`` asked for last time (0 when it already does)."""
        # A query not sent before is assumed as dear as the dearest so far: its first answer tells.
        cost, status = self.costs.get(query, max(self.costs.values(), default=None)), self.status
        if cost is None or status is None or status.restore_rate <= 0:
            return 0.0
        missing = min(cost, status.maximum) - status.available_at(self.clock())
        return max(0.0, missing / status.restore_rate)

    def throttled_wait(self, body: Any) -> float | None:
        """For a ``THROTTLED`` answer, the refill time its ``throttleStatus`` implies; None for any other answer."""
        if not isinstance(body, dict) or not _has_code(body.get("errors"), "THROTTLED"):
            return None
        cost = (body.get("extensions") or {}).get("cost") or {}
        self.observe(None, cost)
        status = cost.get("throttleStatus") or {}
        try:
            requested = float(cost["requestedQueryCost"])
            available = float(status["currentlyAvailable"])
            rate = float(status["restoreRate"])
        except (KeyError, TypeError, ValueError):
            return 1.0  # Shopify's own clients wait a second when they cannot tell
        if rate <= 0:
            return 1.0
        return max(0.0, (requested - available) / rate)


def _has_code(errors: Any, code: str) -> bool:
    if not isinstance(errors, list):
        return False
    return any(isinstance(e, dict) and (e.get("extensions") or {}).get("code") == code for e in errors)


def _messages(errors: Any) -> str:
    if isinstance(errors, str):
        return errors
    if isinstance(errors, list):
        return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors[:5])
    return str(errors)


class ShopifyGraphQL:
    """One shop's GraphQL endpoint. :meth:`execute` returns ``data`` or raises :class:`hub.SourceError`."""

    def __init__(self, settings: ShopifySettings, *, name: str, transport: httpx.BaseTransport | None = None) -> None:
        self.name = name
        self.path = settings.graphql_path()
        self.version = settings.api_version
        self.bucket = CostBucket()
        self.server_time: float | None = None  # epoch seconds from the last answer's Date header
        self.http = SourceHttp(
            settings.origin(),
            name=name,
            headers={
                "X-Shopify-Access-Token": settings.access_token.get_secret_value(),
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            timeout=settings.timeout,
            throttle=self._throttle,
            transport=transport,
        )

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        wait = self.bucket.wait_before(query)
        if wait:
            self.http.pause(wait)
        response = self.http.post(self.path, content=orjson.dumps({"query": query, "variables": variables or {}}))
        self._note_date(response)
        body = self._body(response)
        self.bucket.observe(query, (body.get("extensions") or {}).get("cost"))
        errors = body.get("errors")
        if errors:
            advice = ""
            if _has_code(errors, "MAX_COST_EXCEEDED"):
                advice = "; lower page_size in the connector's settings"
            raise SourceError(f"{self.name}: Shopify refused the query: {_messages(errors)}{advice}")
        data = body.get("data")
        if not isinstance(data, dict):
            raise SourceError(f"{self.name}: Shopify answered without data ({describe(response)})")
        return data

    def close(self) -> None:
        self.http.close()

    def _throttle(self, response: httpx.Response) -> float | None:
        if response.status_code != 200:
            return None
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return None
        return self.bucket.throttled_wait(body)

    def _note_date(self, response: httpx.Response) -> None:
        value = response.headers.get("date")
        if not value:
            return
        with contextlib.suppress(TypeError, ValueError):
            self.server_time = parsedate_to_datetime(value).timestamp()

    def _body(self, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if status == 401:
            raise ShopifyAuthError(
                f"{self.name}: the shop refused the access token (401); check access_token, and that the app is "
                "still installed on this shop"
            )
        if status == 403:
            raise ShopifyAuthError(
                f"{self.name}: the access token lacks a permission (403): {_rest_error(response)}; grant the app "
                "the read scopes it needs (read_customers, read_orders, read_products, read_inventory)"
            )
        if status == 402:
            raise SourceError(f"{self.name}: the shop is frozen (402 Payment Required); nothing can be read")
        if status == 404:
            raise SourceError(
                f"{self.name}: no GraphQL Admin API at {response.request.url.path} (404); check shop_url and "
                f"api_version ({self.version})"
            )
        if status >= 300:
            raise SourceError(f"{self.name}: {describe(response)}")
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise SourceError(f"{self.name}: the answer is not JSON ({describe(response)})") from None
        if not isinstance(body, dict):
            raise SourceError(f"{self.name}: the answer is not a JSON object ({describe(response)})")
        return body


def _rest_error(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.reason_phrase
    return _messages(body.get("errors")) if isinstance(body, dict) else response.reason_phrase
