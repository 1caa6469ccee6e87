"""How the plugin reads Actito's failures: refused tokens, lost answers, and rows that wait for their profile."""

from __future__ import annotations

from typing import Any

import httpx

from hub.delivery.auth import TokenError
from hub.delivery.outcomes import Outcome
from hub_plugins.actito.auth import TOKEN_PATH

#: Seconds before a row whose profile Actito does not have yet is tried again (its contact may be on the way).
PROFILE_PENDING_RETRY = 60.0


def json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def failure(exc: Exception) -> Outcome:
    """The outcome of a request that raised. A refused token is ``auth`` (or ``retryable`` when the token
    endpoint itself failed); a transport error on the token request is ``retryable`` (the real request never
    left); any other transport error is classified by :meth:`Outcome.from_error`."""
    if isinstance(exc, TokenError):
        code = exc.response.status_code if exc.response is not None else None
        if code in (400, 401, 403):
            return Outcome.auth(code, str(exc))
        return Outcome.retryable(code, str(exc))
    if isinstance(exc, httpx.TransportError):
        try:
            path = exc.request.url.path
        except RuntimeError:
            path = ""
        if path.endswith(TOKEN_PATH):
            return Outcome.retryable(None, f"token request failed: {type(exc).__name__}: {exc}".rstrip(": "))
        return Outcome.from_error(exc)
    raise exc


def waits_for_reference(code: str | None) -> bool:
    """A record refused because what it references (its profile, a line's order) does not exist yet."""
    return code == "FOREIGN_KEY_VIOLATION"


def record_outcome(response: httpx.Response, *, ref: str | None = None) -> Outcome:
    """A custom-record or segmentation answer: a missing profile (or a line's missing order) is retried later,
    as hub may not have delivered it yet; the rest is classified as usual."""
    body = json_body(response)
    if response.status_code == 400 and waits_for_reference(body.get("code")):
        return Outcome.retryable(400, response.text[:4000], retry_after=PROFILE_PENDING_RETRY)
    if response.status_code == 404 and body.get("code") == "PROFILE_NOT_FOUND":
        return Outcome.retryable(404, response.text[:4000], retry_after=PROFILE_PENDING_RETRY)
    return Outcome.from_response(response, ref=ref)
