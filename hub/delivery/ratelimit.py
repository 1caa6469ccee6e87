"""Client-side limits per destination: an adaptive token bucket (requests per second) and a concurrency cap.

The bucket is AIMD, like TCP: a 429 halves the rate (never below a floor) and, when the answer carries
``Retry-After``, stops every thread of the destination until that moment; each success adds back a small step
until the rate is reached again. So a remote rate limit slows a sync down instead of failing it.

The rate climbs back to 90 % of the one that was refused, not to the configured one at once (that ceiling rises
again by 0.1 % of the configured rate a second without a 429): a rate configured at the API's very limit (200/s
against "200 requests a second") otherwise meets a 429 every few seconds, and each one stops everybody for its
``Retry-After``, which costs far more than sending 10 % slower.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: After a 429 at rate r, successes climb back to this share of r ...
CEILING_SHARE = 0.9
#: ... and that ceiling rises by this share of the configured rate per second without a 429.
CEILING_RELAX = 0.001


class AdaptiveRateLimiter:
    """A thread-safe token bucket whose rate adapts to the remote end's 429s.

    ``rate=None`` means no limit of our own; ``Retry-After`` is still honoured by everybody, and a 429 starts a
    limit at ``unlimited_start`` requests per second (there is nothing to halve), which successes then raise.
    ``burst`` tokens may be spent at once (default: a tenth of a second's worth, at least one): an API that counts
    requests per one-second window then sees at most 10 % over its limit after a quiet moment, not twice it,
    and no tokens gather while a ``Retry-After`` pause holds everybody (the pause ends paced, not in a burst
    that earns the next 429).
    """

    def __init__(
        self,
        rate: float | None,
        *,
        floor: float | None = None,
        burst: float | None = None,
        unlimited_start: float = 50.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self.target = rate
        self._rate = rate
        self.floor = floor if floor is not None else (min(1.0, rate / 4) if rate else 0.5)
        self._burst = burst
        self._unlimited_start = unlimited_start
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self._capacity()
        self._stamp = clock()
        self._blocked_until = 0.0
        self._last_cut = -1e18
        self._learned: float | None = None  # the ceiling learned from the last 429, when it was learned
        self._learned_at = 0.0
        self.throttled = 0

    @property
    def rate(self) -> float | None:
        """The current rate in requests per second (None: unlimited)."""
        return self._rate

    def _capacity(self) -> float:
        if self._rate is None:
            return 0.0
        return self._burst if self._burst is not None else max(1.0, self._rate / 10)

    def _refill(self, now: float) -> None:
        if self._rate is not None:
            earned = max(0.0, now - max(self._stamp, self._blocked_until)) * self._rate
            self._tokens = min(self._capacity(), self._tokens + earned)
        self._stamp = now

    def delay(self) -> float:
        """Take a token if one is free (returns 0), else say how long to wait before asking again."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            if now < self._blocked_until:
                return self._blocked_until - now
            if self._rate is None:
                return 0.0
            if self._tokens >= 1.0 - 1e-9:  # float dust must not leave a caller waiting for nothing
                self._tokens = max(0.0, self._tokens - 1.0)
                return 0.0
            return max((1.0 - self._tokens) / self._rate, 1e-6)

    def acquire(self) -> None:
        """Block until this thread may send one request."""
        while (wait := self.delay()) > 0:
            self._sleep(wait)

    def on_throttle(self, retry_after: float | None = None) -> None:
        """A 429: halve the rate (at most once per interval, so one burst of 429s is one cut) and pause
        everybody for ``retry_after`` seconds."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            self.throttled += 1
            if retry_after:
                self._blocked_until = max(self._blocked_until, now + retry_after)
                self._tokens = 0.0
            interval = 1.0 / self._rate if self._rate else 0.0
            if now - self._last_cut < max(interval, 0.1):
                return
            self._last_cut = now
            if self._rate is None:
                self._rate = max(self.floor, self._unlimited_start)
            else:
                ceiling = self._ceiling(now)
                refused = self._rate if ceiling is None else min(self._rate, ceiling)
                self._learned, self._learned_at = max(self.floor, refused * CEILING_SHARE), now
                self._rate = max(self.floor, self._rate / 2)
            self._tokens = min(self._tokens, self._capacity())

    def on_success(self) -> None:
        """A success: step the rate back up towards the configured one (additively, a few percent a time)."""
        with self._lock:
            if self._rate is None:
                return
            target = self.target
            step = max((target or self._rate) * 0.05, 0.1)
            if target is None:
                # No configured limit: climb until the rate no longer binds, then drop the limit again.
                self._rate += step
                if self._rate >= self._unlimited_start * 4:
                    self._rate = None
                    self._tokens = 0.0
                return
            now = self._clock()
            ceiling = self._ceiling(now)
            assert ceiling is not None
            if self._rate < ceiling:
                self._refill(now)
                self._rate = min(ceiling, self._rate + step)

    def _ceiling(self, now: float) -> float | None:
        """How far successes may lift the rate: the configured rate, or less for a while after a 429."""
        if self.target is None or self._learned is None:
            return self.target
        return min(self.target, self._learned + (now - self._learned_at) * self.target * CEILING_RELAX)


class ConcurrencyLimit:
    """At most ``limit`` requests of one destination in flight at once."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._semaphore = threading.BoundedSemaphore(limit)

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self._semaphore:
            yield


class DestinationLimits:
    """The rate limiter and the concurrency cap of one destination, shared by every thread that talks to it."""

    def __init__(self, rate: float | None, concurrency: int, **limiter_options: object) -> None:
        self.rate = AdaptiveRateLimiter(rate, **limiter_options)  # type: ignore[arg-type]
        self.concurrency = ConcurrencyLimit(concurrency)

    @contextmanager
    def request(self) -> Iterator[None]:
        """Hold a concurrency slot and a rate token for the duration of one request."""
        with self.concurrency.slot():
            self.rate.acquire()
            yield
