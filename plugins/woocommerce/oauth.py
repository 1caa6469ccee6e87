"""OAuth 1.0a one-legged signatures (RFC 5849) as WooCommerce takes them over plain HTTP, and its Basic auth.

WooCommerce tries Basic auth only when the request came over TLS (``is_ssl()``); over plain HTTP it wants every
request signed, with the OAuth parameters in the *query string* (not the ``Authorization`` header), no token,
the key ``consumer_secret&``, a timestamp within 15 minutes of its clock and a nonce it has not seen in that time.
Both sides of that live here, so the emulator checks exactly what the source signs:

- :func:`base_string` and :func:`sign`: RFC 5849 section 3.4.1 (method, base URI, normalised parameters) and
  3.4.2 (HMAC-SHA1; WooCommerce also accepts HMAC-SHA256, which its own clients send);
- :class:`OAuth1QueryAuth`: an ``httpx.Auth`` that signs each request afresh (a retry gets a new nonce);
- :func:`auth_for`: picks Basic, query-string credentials or OAuth 1.0a from the settings and the URL's scheme,
  as WooCommerce's official clients do.

Percent-encoding is RFC 3986's (only ``A-Z a-z 0-9 - . _ ~`` stay as they are), applied to the *decoded* query
parameters, so the result does not depend on how the HTTP client happened to encode the URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Generator, Iterable
from typing import Literal
from urllib.parse import quote

import httpx

SignatureMethod = Literal["HMAC-SHA1", "HMAC-SHA256"]
AuthMode = Literal["auto", "basic", "query", "oauth1"]
_HASHES = {"HMAC-SHA1": hashlib.sha1, "HMAC-SHA256": hashlib.sha256}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def encode(value: str) -> str:
    """RFC 3986 percent-encoding of UTF-8 text: everything but unreserved characters (RFC 5849 section 3.6)."""
    return quote(value.encode("utf-8"), safe="-._~")


def base_uri(url: httpx.URL) -> str:
    """The base string URI (RFC 5849 section 3.4.1.2): lower-case scheme and host, no default port, no query."""
    scheme, host = url.scheme.lower(), (url.host or "").lower()
    port = "" if url.port is None or url.port == _DEFAULT_PORTS.get(scheme) else f":{url.port}"
    return f"{scheme}://{host}{port}{url.raw_path.split(b'?', 1)[0].decode('ascii') or '/'}"


def normalised_parameters(params: Iterable[tuple[str, str]]) -> str:
    """Parameters encoded, sorted by name then value, joined (RFC 5849 section 3.4.1.3.2); no ``oauth_signature``."""
    pairs = sorted((encode(name), encode(value)) for name, value in params if name != "oauth_signature")
    return "&".join(f"{name}={value}" for name, value in pairs)


def base_string(method: str, url: httpx.URL, params: Iterable[tuple[str, str]]) -> str:
    """The signature base string (RFC 5849 section 3.4.1.1) of a request with these decoded parameters."""
    return "&".join((method.upper(), encode(base_uri(url)), encode(normalised_parameters(params))))


def sign(text: str, consumer_secret: str, method: SignatureMethod, token_secret: str = "") -> str:
    """Base64 HMAC of the base string under ``encode(consumer_secret)&encode(token_secret)`` (section 3.4.2)."""
    key = f"{encode(consumer_secret)}&{encode(token_secret)}".encode()
    digest = hmac.new(key, text.encode("utf-8"), _HASHES[method]).digest()
    return base64.b64encode(digest).decode("ascii")


class OAuth1QueryAuth(httpx.Auth):
    """Signs every request WooCommerce's way: OAuth parameters and the signature added to the query string.

    ``clock`` and ``nonce`` are for tests (known vectors); by default the time is now and the nonce is random.
    """

    def __init__(
        self,
        consumer_key: str,
        consumer_secret: str,
        *,
        method: SignatureMethod = "HMAC-SHA256",
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = lambda: secrets.token_hex(16),
    ) -> None:
        self.consumer_key = consumer_key
        self._secret = consumer_secret
        self.method = method
        self._clock = clock
        self._nonce = nonce

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        oauth = [
            ("oauth_consumer_key", self.consumer_key),
            ("oauth_nonce", self._nonce()),
            ("oauth_signature_method", self.method),
            ("oauth_timestamp", str(int(self._clock()))),
        ]
        params = [(name, value) for name, value in request.url.params.multi_items() if not name.startswith("oauth_")]
        text = base_string(request.method, request.url, [*params, *oauth])
        signature = sign(text, self._secret, self.method)
        query = httpx.QueryParams([*params, *oauth, ("oauth_signature", signature)])
        request.url = request.url.copy_with(query=str(query).encode("ascii"))
        yield request


class QueryCredentialsAuth(httpx.Auth):
    """``consumer_key`` and ``consumer_secret`` as query parameters, for HTTPS servers that drop the
    ``Authorization`` header (some CGI set-ups); WooCommerce reads them before Basic auth."""

    def __init__(self, consumer_key: str, consumer_secret: str) -> None:
        self._pairs = (("consumer_key", consumer_key), ("consumer_secret", consumer_secret))

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = request.url.copy_merge_params(dict(self._pairs))
        yield request


def resolved_mode(mode: AuthMode, base_url: str) -> Literal["basic", "query", "oauth1"]:
    """``auto``: Basic over HTTPS, OAuth 1.0a over plain HTTP (the official clients' rule)."""
    if mode != "auto":
        return mode
    return "basic" if httpx.URL(base_url).scheme == "https" else "oauth1"


def auth_for(
    mode: AuthMode, base_url: str, consumer_key: str, consumer_secret: str, method: SignatureMethod
) -> httpx.Auth:
    """The ``httpx.Auth`` for a connection to ``base_url`` (see :func:`resolved_mode`)."""
    resolved = resolved_mode(mode, base_url)
    if resolved == "basic":
        return httpx.BasicAuth(consumer_key, consumer_secret)
    if resolved == "query":
        return QueryCredentialsAuth(consumer_key, consumer_secret)
    return OAuth1QueryAuth(consumer_key, consumer_secret, method=method)
