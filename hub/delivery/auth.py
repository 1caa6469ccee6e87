"""Short-lived bearer tokens (OAuth2 client credentials, API-key exchanges) as an ``httpx.Auth``.

A destination or source returns a :class:`TokenAuth` subclass in ``ClientOptions.auth`` (or passes it to its own
client), and never handles tokens in its request code: the token is fetched on first use, shared by every thread
of the client, renewed ``margin`` seconds before it expires, and renewed once (then the request retried once) when
the API answers 401 anyway, e.g. because the token was revoked or the server's clock runs ahead. A second 401 is
returned to the caller, which classifies it as an ``auth`` outcome: the credentials themselves are refused.

The token request goes through the same client, transport and limits as every other request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from dataclasses import dataclass

import httpx


class TokenError(httpx.HTTPError):
    """The token endpoint refused or did not answer with a token; the message says which and never holds secrets."""

    def __init__(self, message: str, response: httpx.Response | None = None) -> None:
        super().__init__(message)
        self.response = response


@dataclass(frozen=True, slots=True)
class Token:
    """A bearer token and when (``time.monotonic()``) it stops being valid."""

    value: str
    expires_at: float


class TokenAuth(httpx.Auth):
    """Bearer-token authentication with renewal. Subclasses say how to ask for a token and how to read the answer.

    ``margin``: renew this many seconds before the expiry the token endpoint announced.
    """

    requires_response_body = True

    def __init__(self, *, margin: float = 60.0, clock=time.monotonic) -> None:
        self.margin = margin
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Token | None = None
        self.renewals = 0

    # -- what a subclass provides ----------------------------------------------------------------------------------

    def token_request(self, request: httpx.Request) -> httpx.Request:
        """The request that obtains a token for ``request`` (build its URL with ``request.url.join("/token")``:
        requests an auth flow yields are sent as they are, not resolved against the client's base URL)."""
        raise NotImplementedError

    def parse_token(self, response: httpx.Response) -> Token:
        """Read the token endpoint's answer. The default reads OAuth2's ``access_token`` and ``expires_in``."""
        try:
            body = response.json()
        except ValueError as exc:
            raise TokenError(f"token endpoint answered HTTP {response.status_code} without JSON", response) from exc
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenError(f"token endpoint answered HTTP {response.status_code} without an access_token", response)
        expires_in = body.get("expires_in", 3600)
        try:
            seconds = float(expires_in)
        except (TypeError, ValueError):
            seconds = 3600.0
        return Token(token, self._clock() + seconds)

    def apply(self, request: httpx.Request, token: Token) -> None:
        """Put the token on a request; the default is ``Authorization: Bearer``."""
        request.headers["Authorization"] = f"Bearer {token.value}"

    # -- the flow ---------------------------------------------------------------------------------------------------

    def invalidate(self, token: Token | None = None) -> None:
        """Forget the token (only if it is still ``token``, so one 401 on many threads renews it once)."""
        with self._lock:
            if token is None or self._token is token:
                self._token = None

    def _valid(self) -> Token | None:
        token = self._token
        if token is not None and self._clock() < token.expires_at - self.margin:
            return token
        return None

    def _fetch(self, original: httpx.Request) -> Generator[httpx.Request, httpx.Response, Token]:
        request = self.token_request(original)
        response = yield request
        if response.status_code >= 400:
            raise TokenError(
                f"token endpoint {request.url.path} refused with HTTP {response.status_code}: {response.text[:300]}",
                response,
            )
        token = self.parse_token(response)
        self.renewals += 1
        return token

    def _token_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, Token]:
        # The lock is not held across the yield (another thread may need the transport); two threads may both
        # fetch a token once, which token endpoints allow, and the later one wins.
        token = self._valid()
        if token is None:
            token = yield from self._fetch(request)
            with self._lock:
                self._token = token
        return token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = yield from self._token_flow(request)
        self.apply(request, token)
        response = yield request
        if response.status_code == 401:
            # Forget this token (unless another thread already replaced it), then take or fetch the current one.
            self.invalidate(token)
            token = yield from self._token_flow(request)
            self.apply(request, token)
            yield request
