"""The HTTP client every destination sends through: pooled, with explicit timeouts and the adaptive limits.

The limits live in the transport, below the plugin's code, so no plugin can forget them: each request waits
for a concurrency slot and a rate token, and its answer (429 or success) feeds the rate back.

A request keeps its slot until its answer's body has been read, not just its headers: with ``concurrency`` slots
and as many pooled connections, no request then waits in httpcore's own queue, where a connection assigned to a
waiting request can be closed under it once it has started (httpcore #1110: ``ReadError: Bad file descriptor``
after the server processed it, which parks an at-most-once message as uncertain).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import httpx

from hub.delivery.outcomes import retry_after_seconds
from hub.delivery.ratelimit import DestinationLimits

if TYPE_CHECKING:
    from hub.config._models import DeliveryConfig
    from hub.connectors import Destination


class LimitedTransport(httpx.BaseTransport):
    """Wraps a transport: a slot and a token before every request, the answer fed back to the rate limiter."""

    def __init__(self, inner: httpx.BaseTransport, limits: DestinationLimits) -> None:
        self.inner = inner
        self.limits = limits

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        held = contextlib.ExitStack()
        held.enter_context(self.limits.request())
        try:
            response = self.inner.handle_request(request)
        except BaseException:
            held.close()
            raise
        if response.status_code == 429:
            self.limits.rate.on_throttle(retry_after_seconds(response))
        elif response.status_code < 500:
            self.limits.rate.on_success()
        response.stream = _Releasing(response.stream, held.close)  # type: ignore[arg-type]
        return response

    def close(self) -> None:
        self.inner.close()


class _Releasing(httpx.SyncByteStream):
    """An answer's body that frees the request's slot when it is closed (httpx closes it once read)."""

    def __init__(self, stream: httpx.SyncByteStream, release: Callable[[], object]) -> None:
        self._stream = stream
        self._release = release

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._release()


def rate_limit_for(destination: Destination, config: DeliveryConfig) -> float | None:
    """Requests per second: the configuration's ``rate_limit``, else the type's ``default_rate_limit``, else none."""
    if config.rate_limit is not None:
        return config.rate_limit
    default = getattr(type(destination), "default_rate_limit", None)
    return float(default) if default else None


def timeouts(config: DeliveryConfig) -> httpx.Timeout:
    return httpx.Timeout(
        connect=config.connect_timeout,
        read=config.read_timeout,
        write=config.write_timeout,
        pool=config.pool_timeout,
    )


#: Seconds a pooled connection may sit idle before it is dropped. Below the servers' own idle timeouts (5 s is
#: common, uvicorn's and some APIs'; httpx's default is also 5 s): a connection reused just as the server closes
#: it loses the request with a reset, and nobody knows whether it was processed, so an at-most-once message is
#: parked for review. Reconnecting after two quiet seconds costs a handshake, not a message.
KEEPALIVE_EXPIRY = 2.0


def make_client(
    destination: Destination,
    config: DeliveryConfig,
    *,
    limits: DestinationLimits | None = None,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """Build ``destination.http`` from its ``client_options()`` and its ``delivery:`` configuration.

    The pool holds ``concurrency`` connections (one per dispatcher thread, kept alive between batches, for at
    most :data:`KEEPALIVE_EXPIRY` idle); ``limits`` defaults to a fresh :class:`DestinationLimits`, ``transport``
    (tests) to httpx's own.
    """
    options = destination.client_options()
    if limits is None:
        limits = DestinationLimits(rate_limit_for(destination, config), config.concurrency)
    pool = httpx.Limits(
        max_connections=config.concurrency,
        max_keepalive_connections=config.concurrency,
        keepalive_expiry=KEEPALIVE_EXPIRY,
    )
    inner = transport or httpx.HTTPTransport(limits=pool, retries=0)
    return httpx.Client(
        base_url=options.base_url,
        headers=dict(options.headers),
        auth=options.auth,
        timeout=timeouts(config),
        transport=LimitedTransport(inner, limits),
    )
