"""Agillic's OAuth2 client credentials as an ``httpx.Auth``, with the 20-calls-in-flight ceiling built in.

Tokens come from ``POST /oauth2/token`` (form-encoded ``grant_type=client_credentials``) and live two hours;
:class:`hub.delivery.auth.TokenAuth` renews them ``margin`` seconds early and once on a 401. Two additions:

- Every call, the token request included, holds one of ``max_concurrent`` slots while it is in flight, so hub never
  has more than Agillic's 20 concurrent calls open whatever ``delivery.concurrency`` says (the 21st would be a 429).
- :meth:`AgillicAuth.failed_before_call` tells, after a transport error, whether it struck the token request (the
  call itself never left, so nothing changed and the message is simply retried) or the call.
"""

from __future__ import annotations

import threading
from collections.abc import Generator

import httpx
from pydantic import SecretStr

from hub.delivery.auth import Token, TokenAuth
from hub_plugins.agillic.limits import MAX_CONCURRENT

TOKEN_PATH = "/oauth2/token"


class AgillicAuth(TokenAuth):
    """Bearer tokens from the client credentials grant; the secret is read only to build the token request."""

    def __init__(
        self,
        client_id: str,
        client_secret: SecretStr,
        *,
        margin: float = 300.0,
        max_concurrent: int = MAX_CONCURRENT,
    ) -> None:
        super().__init__(margin=margin)
        self._client_id = client_id
        self._client_secret = client_secret
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._phase = threading.local()

    def token_request(self, request: httpx.Request) -> httpx.Request:
        self._phase.value = "token"
        return httpx.Request(
            "POST",
            request.url.join(TOKEN_PATH),
            data={
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret.get_secret_value(),
            },
            headers={"Accept": "application/json"},
        )

    def apply(self, request: httpx.Request, token: Token) -> None:
        self._phase.value = "call"
        super().apply(request, token)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._phase.value = "start"
        with self._slots:
            yield from super().auth_flow(request)

    def failed_before_call(self) -> bool:
        """True when this thread's last request failed while fetching a token: the call itself was not sent
        (or was refused with a 401, which changes nothing)."""
        return getattr(self._phase, "value", None) in ("start", "token")
