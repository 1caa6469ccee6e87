"""The delivery error taxonomy: what a destination says happened to each message, and what the core does about it.

A destination's ``send`` returns one :class:`Outcome` per message, in order. The core alone decides what an
outcome means for the outbox row, so every plugin gets the same retries, dead letters and pauses:

==============  ==========================================================================================
``sent``        delivered; ``ref`` (e.g. the remote contact id) is remembered for the customer.
``invalid``     caught before sending (missing identifier, bad field): never sent, dead with the reason.
``rejected``    the destination refused it (validation, 4xx): dead at once, with the response body.
``auth``        credentials refused: the destination is paused, loudly; its rows stay pending.
``retryable``   transient (connect error, timeout before processing, 5xx, 429): retried with backoff and
                jitter, honouring ``retry_after``; dead once its attempts are spent.
``unknown``     the request left but no answer came back (read timeout, dropped connection): retried if the
                kind is at-least-once, parked as dead for review if it is at-most-once.
``skipped``     nothing to do (e.g. deleting a contact the destination never had): recorded, not an error.
==============  ==========================================================================================

``batch=True`` on a ``rejected`` outcome says "the whole batch was refused because of some row in it": the
core splits the batch in halves and sends each again until the bad row is isolated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

OutcomeStatus = Literal["sent", "invalid", "rejected", "auth", "retryable", "unknown", "skipped"]

#: How a kind behaves when the outcome of a request is unknown (sent, no answer).
Guarantee = Literal["at_least_once", "at_most_once"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one message. Build it with the class methods; they read like the taxonomy."""

    status: OutcomeStatus
    code: int | None = None
    body: str | None = None
    retry_after: float | None = None
    ref: str | None = None
    batch: bool = False

    @classmethod
    def sent(cls, ref: str | None = None, *, code: int | None = None) -> Outcome:
        return cls("sent", code=code, ref=ref)

    @classmethod
    def invalid(cls, reason: str) -> Outcome:
        return cls("invalid", body=reason)

    @classmethod
    def rejected(cls, code: int | None, body: str | None, *, batch: bool = False) -> Outcome:
        return cls("rejected", code=code, body=body, batch=batch)

    @classmethod
    def auth(cls, code: int | None, body: str | None) -> Outcome:
        return cls("auth", code=code, body=body)

    @classmethod
    def retryable(cls, code: int | None, body: str | None, *, retry_after: float | None = None) -> Outcome:
        return cls("retryable", code=code, body=body, retry_after=retry_after)

    @classmethod
    def unknown(cls, reason: str) -> Outcome:
        return cls("unknown", body=reason)

    @classmethod
    def skipped(cls, reason: str) -> Outcome:
        return cls("skipped", body=reason)

    @classmethod
    def from_response(cls, response: httpx.Response, *, ref: str | None = None) -> Outcome:
        """Classify an HTTP response: 2xx sent; 429, 408 and 5xx retryable (504 unknown: the gateway gave up,
        the backend may have processed it); 401 and 403 auth; any other 4xx rejected, with the body."""
        code = response.status_code
        if code < 300:
            return cls.sent(ref, code=code)
        body = _body(response)
        if code in (401, 403):
            return cls.auth(code, body)
        if code == 504:
            return cls("unknown", code=code, body=body)
        if code in (408, 425, 429) or code >= 500:
            return cls.retryable(code, body, retry_after=retry_after_seconds(response))
        return cls.rejected(code, body)

    @classmethod
    def from_error(cls, error: Exception) -> Outcome:
        """Classify a transport error: failures before the request left are retryable; a request that left and
        got no answer (read timeout, dropped connection) is unknown."""
        text = f"{type(error).__name__}: {error}".strip().rstrip(":")
        if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.WriteTimeout):
            return cls.retryable(None, text)
        if isinstance(error, httpx.TransportError):
            return cls.unknown(text)
        raise error


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The ``Retry-After`` header in seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _body(response: httpx.Response, limit: int = 4000) -> str:
    try:
        text = response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        text = repr(response.content[:limit])
    return text[:limit]


class InvalidMessage(ValueError):
    """Raised by ``Destination.prepare`` when a payload cannot be sent at all (e.g. no identifier)."""
