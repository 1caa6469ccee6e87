"""Raptor's recommendations API, read with a hard time budget, a TTL cache and a cool-down after failures.

``GET {api_url}/v1/{customerId}/{method}/{count}/{apiKey}?{parameter}={value}&json=True`` answers a JSON array of
``{"RecommendedId": ..., "Priority": ...}``. The core asks while it builds trigger payloads and falls back to its
built-in recommender when this raises, so the rules are: never wait past ``timeout``; after a failure or a slow
answer make no request for ``recommend.cooldown`` seconds (every call raises at once, so a batch of payloads does
not wait ``timeout`` each); keep answers ``recommend.cache_ttl`` seconds. The API key is part of the path: no
message raised or logged here contains the URL.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any
from urllib.parse import quote

import httpx

from hub.connectors import Recommendation, RecommendationRequest
from hub_plugins.raptor.settings import RaptorSettings
from hub_plugins.raptor.tracking import ruid

#: (RecommendedId, its rank from 1) in Raptor's order.
Ranked = list[tuple[str, int]]


class RaptorUnavailable(Exception):
    """Raptor did not answer in time, answered with an error, or is cooling down after that."""


class TTLCache:
    """A small thread-safe cache: entries expire ``ttl`` seconds after they are put; the oldest go past ``size``."""

    def __init__(self, ttl: float, size: int) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= time.monotonic():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, key: Hashable, value: Any) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (time.monotonic() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


class RaptorRecommendations:
    """The recommendation side of one ``raptor`` connector: its own HTTP client (not the delivery client, whose
    rate limiter could queue a request past the caller's deadline), cache and cool-down."""

    def __init__(self, settings: RaptorSettings) -> None:
        self.settings = settings
        self.cache = TTLCache(settings.recommend.cache_ttl, settings.recommend.cache_size)
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._quiet_until = 0.0
        self.requests = 0

    # -- the API ------------------------------------------------------------------------------------------------

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                client = httpx.Client(
                    base_url=self.settings.api(),
                    headers={"User-Agent": self.settings.user_agent, "Accept": "application/json"},
                )
                weakref.finalize(self, client.close)
                self._client = client
            return self._client

    def _path(self, method: str, count: int) -> str:
        assert self.settings.api_key is not None
        key = quote(self.settings.api_key.get_secret_value(), safe="")
        return f"/v1/{quote(self.settings.customer_id, safe='')}/{method}/{count}/{key}"

    def fetch(self, method: str, parameter: str, value: str, *, timeout: float) -> Ranked:
        """One call; raises :class:`RaptorUnavailable` (without the URL) on any failure or a late answer."""
        started = time.monotonic()
        with self._lock:
            self.requests += 1
        try:
            response = self._http().get(
                self._path(method, self.settings.recommend.fetch),
                params={parameter: value, "json": "True"},
                timeout=httpx.Timeout(timeout),
            )
        except httpx.TimeoutException as exc:
            raise RaptorUnavailable(f"Raptor {method} gave no answer within {timeout:.2g} s") from exc
        except httpx.TransportError as exc:
            raise RaptorUnavailable(f"Raptor {method} unreachable ({type(exc).__name__})") from exc
        if time.monotonic() - started > timeout:
            raise RaptorUnavailable(f"Raptor {method} answered after {timeout:.2g} s")
        if response.status_code != 200:
            raise RaptorUnavailable(f"Raptor {method} answered HTTP {response.status_code}")
        try:
            items = response.json()
        except ValueError as exc:
            raise RaptorUnavailable(f"Raptor {method} answered something that is not JSON") from exc
        if not isinstance(items, list):
            raise RaptorUnavailable(f"Raptor {method} answered JSON that is not a list")
        usable = [i for i in items if isinstance(i, dict) and i.get("RecommendedId") not in (None, "")]
        usable.sort(key=lambda i: i.get("Priority") if isinstance(i.get("Priority"), int | float) else 1e9)
        return [(str(item["RecommendedId"]), rank) for rank, item in enumerate(usable, 1)]

    def probe(self) -> str | None:
        """For ``check()``: None when the key and account give recommendations, else what is wrong, in words."""
        settings = self.settings.recommend
        try:
            self.fetch(settings.user_method, settings.user_parameter, "hub-check", timeout=10)
        except RaptorUnavailable as exc:
            text = str(exc)
            if "HTTP 401" in text or "HTTP 403" in text:
                return f"Raptor refused the API key for account {self.settings.customer_id}; check api_key"
            if "HTTP 404" in text:
                return (
                    f"Raptor knows no account {self.settings.customer_id} or module {settings.user_method}; "
                    "check customer_id and recommend.user_method"
                )
            return f"{text}; check api_url and the network"
        return None

    # -- recommend ----------------------------------------------------------------------------------------------

    def _queries(self, request: RecommendationRequest) -> list[tuple[str, str, str]]:
        """(method, parameter, value): the request's first products, then its customer."""
        settings = self.settings.recommend
        queries = [
            (settings.product_method, settings.product_parameter, sku) for sku in dict.fromkeys(request.products) if sku
        ][: settings.max_products]
        user = ruid(request.keys, self.settings)
        if user is not None:
            queries.append((settings.user_method, settings.user_parameter, user))
        return queries

    def recommend(self, request: RecommendationRequest, *, timeout: float) -> list[Recommendation]:
        """Up to ``request.limit`` suggestions, never one in ``request.exclude`` or among ``request.products``.

        Product answers come first (a product recommended for several of them ranks higher); the customer's own
        answer fills up when they leave too few. Raises :class:`RaptorUnavailable` when nothing could be asked,
        never later than ``timeout`` seconds.
        """
        if self.settings.api_key is None or request.limit <= 0:
            return []
        deadline = time.monotonic() + timeout
        unwanted = set(request.exclude) | set(request.products)
        user_method = self.settings.recommend.user_method
        scores: dict[str, list[float]] = {}  # sku -> [score from the products, score from the customer]
        reasons: dict[str, str] = {}
        failure: RaptorUnavailable | None = None
        for method, parameter, value in self._queries(request):
            by_user = method == user_method
            if by_user and len(scores) >= request.limit:
                break
            ranked = self.cache.get((method, value))
            if ranked is None:
                try:
                    ranked = self._ask(method, parameter, value, deadline)
                except RaptorUnavailable as exc:
                    failure = exc
                    break
                self.cache.put((method, value), ranked)
            for sku, rank in ranked:
                if sku in unwanted:
                    continue
                scores.setdefault(sku, [0.0, 0.0])[int(by_user)] += 1.0 / rank
                reasons.setdefault(sku, f"Raptor {method} for {'the customer' if by_user else value}")
        if not scores and failure is not None:
            raise failure
        best = sorted(scores.items(), key=lambda item: (-item[1][0], -item[1][1], item[0]))[: request.limit]
        return [Recommendation(sku=sku, score=round(sum(s), 6), reason=reasons[sku]) for sku, s in best]

    def _ask(self, method: str, parameter: str, value: str, deadline: float) -> Ranked:
        now = time.monotonic()
        with self._lock:
            quiet = self._quiet_until - now
        if quiet > 0:
            raise RaptorUnavailable(f"Raptor failed recently; not asked again for {quiet:.0f} s")
        if deadline - now <= 0:
            raise RaptorUnavailable("no time left to ask Raptor")
        try:
            return self.fetch(method, parameter, value, timeout=deadline - now)
        except RaptorUnavailable:
            with self._lock:
                self._quiet_until = time.monotonic() + self.settings.recommend.cooldown
            raise
