"""Ask a recommender connector for a batch of requests with a hard bound on the wait; the built-in answers the rest.

Each request is one call of :meth:`hub.connectors.Recommender.recommend`, run on a thread pool of
``concurrency`` workers, so a batch of N requests waits about ``timeout * ceil(N / concurrency)`` at worst, never
``N * timeout``. While the calls are in flight, the built-in recommender computes its own answer for the whole
batch on the caller's thread (it needs the database connection, the calls do not), so the wait is shared, not
added. A call is given up ``timeout`` after it started (its thread is left to finish on its own: a connector
must not block past ``timeout`` anyway); a call that raises, is given up, or answers nothing (after leaving out
what the request excludes) is answered by the built-in recommender. When a whole wave of calls fails in a row
(the service is down), the calls not yet started are cancelled rather than each left to time out.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import structlog

from hub.config._audience import BUILTIN
from hub.connectors import Recommendation, RecommendationRequest, Recommender

__all__ = ["BUILTIN", "Answer", "FallbackStats", "ask"]

K = TypeVar("K", bound=Hashable)
log = structlog.get_logger("hub.recommend")

Builtin = Callable[[Mapping[K, RecommendationRequest]], Mapping[K, list[Recommendation]]]


@dataclass(frozen=True, slots=True)
class Answer:
    """Who answered a request (a connector's name or ``builtin``), what, and why the built-in did if it did."""

    source: str
    items: list[Recommendation]
    fallback: str | None = None


@dataclass(slots=True)
class FallbackStats:
    """How a batch went: answers by the connector, fallbacks by cause (``timeout``, ``error``, ``empty``,
    ``cancelled``) and the time the whole batch took."""

    answered: int = 0
    fallbacks: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


@dataclass(slots=True)
class _Calls(Generic[K]):
    """The futures of one batch and when each call actually started (set by the worker thread)."""

    futures: dict[Future[list[Recommendation]], K] = field(default_factory=dict)
    started: dict[K, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _clean(items: list[Recommendation], request: RecommendationRequest) -> list[Recommendation]:
    """The connector's answer without what the request excludes, duplicates or more than ``limit``."""
    seen: set[str] = set()
    kept = []
    for item in items:
        if item.sku in request.exclude or item.sku in request.products or item.sku in seen:
            continue
        seen.add(item.sku)
        kept.append(item)
    return kept[: request.limit]


def ask(
    connector: Recommender | None,
    requests: Mapping[K, RecommendationRequest],
    builtin: Builtin[K],
    *,
    timeout: float,
    concurrency: int = 8,
    stats: FallbackStats | None = None,
) -> dict[K, Answer]:
    """Answer every request: from ``connector`` where it answers in time, else from ``builtin``.

    ``builtin`` is called once, with every request, on the caller's thread. Returns an answer per key.
    """
    stats = stats if stats is not None else FallbackStats()
    begun = time.monotonic()
    if connector is None or not requests:
        found = builtin(requests)
        stats.seconds = time.monotonic() - begun
        return {key: Answer(BUILTIN, list(found.get(key, ()))) for key in requests}

    calls: _Calls[K] = _Calls()
    workers = max(1, min(concurrency, len(requests)))

    def call(key: K, request: RecommendationRequest) -> list[Recommendation]:
        with calls.lock:
            calls.started[key] = time.monotonic()
        return connector.recommend(request, timeout=timeout)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"recommend-{connector.name}")
    try:
        for key, request in requests.items():
            calls.futures[pool.submit(call, key, request)] = key
        fallback = builtin(requests)
        outcomes = _collect(calls, requests, timeout, workers, stats)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)

    answers: dict[K, Answer] = {}
    for key in requests:
        outcome = outcomes.get(key, "cancelled")
        if isinstance(outcome, list):
            answers[key] = Answer(connector.name, outcome)
        else:
            answers[key] = Answer(BUILTIN, list(fallback.get(key, ())), fallback=outcome)
    stats.seconds = time.monotonic() - begun
    if stats.answered < len(requests):
        log.warning(
            "recommender fell back to builtin",
            connector=connector.name,
            requests=len(requests),
            answered=stats.answered,
            **stats.fallbacks,
        )
    return answers


def _collect(
    calls: _Calls[K],
    requests: Mapping[K, RecommendationRequest],
    timeout: float,
    workers: int,
    stats: FallbackStats,
) -> dict[K, list[Recommendation] | str]:
    """Wait for the calls, each until ``timeout`` after it started, the batch at most one timeout per wave.

    Returns key -> the cleaned answer, or the reason the built-in must answer (``timeout``, ``error``,
    ``empty``, ``cancelled``).
    """
    outcomes: dict[K, list[Recommendation] | str] = {}
    pending = set(calls.futures)
    waves = math.ceil(len(requests) / workers)
    batch_deadline = time.monotonic() + timeout * waves + timeout
    failures_in_a_row = 0

    def settle(future: Future[list[Recommendation]], outcome: list[Recommendation] | str) -> None:
        nonlocal failures_in_a_row
        pending.discard(future)
        outcomes[calls.futures[future]] = outcome
        if isinstance(outcome, list):
            stats.answered += 1
            failures_in_a_row = 0
            return
        stats.fallbacks[outcome] += 1
        if outcome in ("timeout", "error"):
            failures_in_a_row += 1

    while pending:
        now = time.monotonic()
        for future in [f for f in pending if f.done()]:
            key = calls.futures[future]
            if future.exception() is not None:
                settle(future, "error")
                continue
            try:
                items = _clean(list(future.result() or ()), requests[key])
            except (TypeError, AttributeError):  # not a list of Recommendation: a broken answer is a failed call
                settle(future, "error")
                continue
            settle(future, items if items else "empty")
        with calls.lock:
            started = {future: calls.started.get(calls.futures[future]) for future in pending}
        for future, at in started.items():
            if future not in pending:
                continue
            if at is not None and now - at >= timeout:
                settle(future, "timeout")
            elif now >= batch_deadline:
                settle(future, "cancelled" if future.cancel() else "timeout")
        if failures_in_a_row >= workers:  # a whole wave failed: the service is down, start no more calls
            for future in list(pending):
                if future.cancel():
                    settle(future, "cancelled")
        if not pending:
            break
        deadlines = [at + timeout for future, at in started.items() if future in pending and at is not None]
        next_check = min([*deadlines, batch_deadline, now + timeout])
        wait(pending, timeout=max(0.0, next_check - time.monotonic()) + 0.001, return_when=FIRST_COMPLETED)
    return outcomes
