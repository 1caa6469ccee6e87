"""Akeneo's OAuth2 password grant, renewed with the refresh token, as a :class:`hub.delivery.auth.TokenAuth`.

``POST /api/oauth/v1/token`` with ``Authorization: Basic base64(client_id:secret)`` and a JSON body: first
``{"grant_type": "password", "username", "password"}``, later ``{"grant_type": "refresh_token", "refresh_token"}``
(each answer brings a new refresh token, valid 14 days). When the refresh is refused (422: the refresh token
expired or was revoked), the same renewal logs in again with the password, as Akeneo's PHP client would have
its caller do; only a refused password surfaces, as a :class:`hub.delivery.auth.TokenError` saying so.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Generator

import httpx

from hub.delivery.auth import Token, TokenAuth, TokenError

TOKEN_PATH = "/api/oauth/v1/token"
#: Renew this long before a token expires (at most; a short-lived token is renewed at 80 % of its life).
MARGIN = 60.0


class AkeneoAuth(TokenAuth):
    """Bearer tokens for one API connection. ``refreshes`` and ``logins`` count the grants used (for tests)."""

    def __init__(self, *, base_path: str, client_id: str, secret: str, username: str, password: str) -> None:
        super().__init__(margin=MARGIN)
        self._path = base_path.rstrip("/") + TOKEN_PATH
        credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii")
        self._basic = f"Basic {credentials}"
        self._username = username
        self._password = password
        self._refresh_token: str | None = None
        self._refresh_lock = threading.Lock()
        self.refreshes = 0
        self.logins = 0
        #: Why the password grant was last refused (Akeneo's message), for ``check()``; None once one succeeds.
        self.refusal: str | None = None

    def token_request(self, request: httpx.Request) -> httpx.Request:
        """The password grant (a first login, or after a refused refresh)."""
        return self._grant(request, {"grant_type": "password", "username": self._username, "password": self._password})

    def parse_token(self, response: httpx.Response) -> Token:
        token = super().parse_token(response)
        body = response.json()
        lifetime = token.expires_at - self._clock()
        self.margin = min(MARGIN, lifetime / 5)
        refresh = body.get("refresh_token")
        with self._refresh_lock:
            self._refresh_token = refresh if isinstance(refresh, str) and refresh else None
        return token

    def _fetch(self, original: httpx.Request) -> Generator[httpx.Request, httpx.Response, Token]:
        with self._refresh_lock:
            refresh, self._refresh_token = self._refresh_token, None  # a refresh token is used once
        if refresh is not None:
            response = yield self._grant(original, {"grant_type": "refresh_token", "refresh_token": refresh})
            if response.status_code < 400:
                token = self.parse_token(response)
                self.refreshes += 1
                self.renewals += 1
                return token
            if response.status_code != 422:  # 429 or 5xx: the caller retries; the password grant is not the fix
                raise TokenError(
                    f"token endpoint {self._path} refused the refresh with HTTP {response.status_code}: "
                    f"{response.text[:300]}",
                    response,
                )
        try:
            token = yield from super()._fetch(original)
        except TokenError as exc:
            if exc.response is not None and 400 <= exc.response.status_code < 500:
                self.refusal = _message(exc.response)
            raise
        self.refusal = None
        self.logins += 1
        return token

    def _grant(self, request: httpx.Request, body: dict[str, str]) -> httpx.Request:
        return httpx.Request(
            "POST",
            request.url.join(self._path),
            headers={
                "Authorization": self._basic,
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
            content=json.dumps(body).encode(),
        )


def _message(response: httpx.Response) -> str:
    """Akeneo's ``message`` from an error answer, else its status."""
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        message = None
    text = message if isinstance(message, str) and message else response.reason_phrase
    return f"HTTP {response.status_code}: {text}"
