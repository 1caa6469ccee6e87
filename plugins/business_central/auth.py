"""OAuth2 client credentials from Microsoft Entra ID, as a :class:`hub.delivery.auth.TokenAuth`.

``POST https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`` with a form body ``grant_type=
client_credentials``, ``client_id``, ``client_secret`` and ``scope=https://api.businesscentral.dynamics.com/.default``
answers ``{"token_type": "Bearer", "expires_in": 3599, "access_token": ...}``. A refusal is an OAuth2 error body,
``{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided. ..."}``: its
code and the first sentence of the description (which never holds the secret) are kept in :attr:`refusal` for
``check()``, and the :class:`~hub.delivery.auth.TokenError` says the same in plain words.
"""

from __future__ import annotations

from collections.abc import Generator
from urllib.parse import urlencode

import httpx

from hub.delivery.auth import Token, TokenAuth, TokenError

#: Renew this long before a token expires (Entra ID tokens live about an hour).
MARGIN = 120.0


class ClientCredentials(TokenAuth):
    """Bearer tokens for one app registration; ``token_url`` is absolute (the token host is not the API's)."""

    def __init__(self, *, token_url: str, client_id: str, client_secret: str, scope: str) -> None:
        super().__init__(margin=MARGIN)
        self.token_url = token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": scope,
        }
        #: Why the token endpoint last refused the credentials (``invalid_client: AADSTS7000215 ...``); None once
        #: a token was granted. Never holds the secret.
        self.refusal: str | None = None

    def token_request(self, request: httpx.Request) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.token_url,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            content=urlencode(self._form).encode(),
        )

    def parse_token(self, response: httpx.Response) -> Token:
        token = super().parse_token(response)
        lifetime = token.expires_at - self._clock()
        self.margin = min(MARGIN, lifetime / 5)
        return token

    def _fetch(self, original: httpx.Request) -> Generator[httpx.Request, httpx.Response, Token]:
        request = self.token_request(original)
        response = yield request
        if response.status_code >= 400:
            reason = oauth_error(response)
            if response.status_code < 500 and response.status_code != 429:
                self.refusal = reason
            raise TokenError(
                f"the token endpoint {request.url.host} refused the app's credentials ({reason})", response
            )
        token = self.parse_token(response)
        self.refusal = None
        self.renewals += 1
        return token


def oauth_error(response: httpx.Response) -> str:
    """``"invalid_client: AADSTS7000215: Invalid client secret provided"`` from an OAuth2 error answer."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return f"HTTP {response.status_code} {response.reason_phrase}"
    description = body.get("error_description")
    first = description.split("\r\n")[0].split(". ")[0].strip().rstrip(".") if isinstance(description, str) else ""
    return f"{body['error']}: {first}" if first else str(body["error"])
