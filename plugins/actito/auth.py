"""Actito's API-key exchange: ``GET /auth/token`` with the raw key gives a bearer token for 15 minutes.

:class:`hub.delivery.auth.TokenAuth` does the caching, the renewal before expiry and the single renewal on a 401;
this subclass only knows Actito's request (``Authorization: <apiKey>``, no scheme) and answer
(``{"accessToken": ..., "expiresIn": "900s"}``).
"""

from __future__ import annotations

import re

import httpx
from pydantic import SecretStr

from hub.delivery.auth import Token, TokenAuth, TokenError

TOKEN_PATH = "/auth/token"
#: Actito says 15 minutes; used when the answer gives no readable ``expiresIn``.
DEFAULT_TTL = 900.0
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*s?\s*$")


class ActitoTokenAuth(TokenAuth):
    """Bearer tokens from Actito's key exchange. The key is held as a ``SecretStr`` and sent only to the token URL."""

    def __init__(self, api_key: SecretStr, *, margin: float = 60.0, **options: object) -> None:
        super().__init__(margin=margin, **options)  # type: ignore[arg-type]
        self._api_key = api_key

    def token_request(self, request: httpx.Request) -> httpx.Request:
        return httpx.Request(
            "GET",
            request.url.join(TOKEN_PATH),
            headers={"Authorization": self._api_key.get_secret_value(), "Accept": "application/json"},
        )

    def parse_token(self, response: httpx.Response) -> Token:
        try:
            body = response.json()
        except ValueError as exc:
            raise TokenError(f"{TOKEN_PATH} answered HTTP {response.status_code} without JSON", response) from exc
        token = body.get("accessToken") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise TokenError(f"{TOKEN_PATH} answered HTTP {response.status_code} without an accessToken", response)
        return Token(token, self._clock() + expires_in(body.get("expiresIn")))


def expires_in(value: object) -> float:
    """``"900s"``, ``"900"`` or ``900`` as seconds; anything else is Actito's documented 15 minutes."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str) and (match := _SECONDS.match(value)):
        return float(match.group(1)) or DEFAULT_TTL
    return DEFAULT_TTL
