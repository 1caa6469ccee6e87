"""The HTTP client every destination sends through: pooled, with explicit timeouts and the adaptive limits.

The limits live in the transport, below the plugin's code, so no plugin can forget them: each request waits
for a concurrency slot and a rate token, and its answer (429 or success) feeds the rate back.
"""

from __future__ import annotations

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
        with self.limits.request():
            response = self.inner.handle_request(request)
        if response.status_code == 429:
            self.limits.rate.on_throttle(retry_after_seconds(response))
        elif response.status_code < 500:
            self.limits.rate.on_success()
        return response

    def close(self) -> None:
        self.inner.close()


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


def make_client(
    destination: Destination,
    config: DeliveryConfig,
    *,
    limits: DestinationLimits | None = None,
    transport: httpx.BaseTransport | None = None,
) -> httpx.Client:
    """Build ``destination.http`` from its ``client_options()`` and its ``delivery:`` configuration.

    The pool holds ``concurrency`` connections (one per dispatcher thread, kept alive between batches);
    ``limits`` defaults to a fresh :class:`DestinationLimits`, ``transport`` (tests) to httpx's own.
    """
    options = destination.client_options()
    if limits is None:
        limits = DestinationLimits(rate_limit_for(destination, config), config.concurrency)
    pool = httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency)
    inner = transport or httpx.HTTPTransport(limits=pool, retries=0)
    return httpx.Client(
        base_url=options.base_url,
        headers=dict(options.headers),
        auth=options.auth,
        timeout=timeouts(config),
        transport=LimitedTransport(inner, limits),
    )
