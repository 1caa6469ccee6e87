"""WooCommerce's error answers, ``{"code", "message", "data": {"status"}}``, in plain words for hub's messages.

The message never carries the query string (where OAuth signatures and query-string credentials travel) and
WooCommerce's own messages never echo a key or a secret.
"""

from __future__ import annotations

import httpx

from hub.sources.http import describe

#: What to do about the codes a connection's set-up causes, keyed by WooCommerce's error code.
_ADVICE = {
    "woocommerce_rest_authentication_error": "check consumer_key and consumer_secret (and the server's clock)",
    "woocommerce_rest_authentication_missing_parameter": "the OAuth parameters did not arrive; try auth: query",
    "woocommerce_rest_cannot_view": (
        "the key was not recognised, or Basic auth was sent over plain http (WooCommerce takes it only over "
        "https); check consumer_key, base_url's scheme and auth"
    ),
    "rest_no_route": "is WooCommerce installed, and are permalinks on? check base_url and api_path",
}


def error_code(response: httpx.Response) -> str | None:
    """WooCommerce's ``code`` from an error body, or None when the body is not WooCommerce's."""
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def api_error(response: httpx.Response) -> str:
    """``"401 Unauthorized from GET /wp-json/wc/v3/orders: woocommerce_rest_authentication_error: Consumer
    secret is invalid. (check consumer_key ...)"``; a non-WooCommerce body (a host's HTML page) is summarised."""
    code = error_code(response)
    if code is None:
        return describe(response, 120)
    head = f"{response.status_code} {response.reason_phrase} from {response.request.method} {response.request.url.path}"
    message = str(response.json().get("message") or "").strip()
    advice = _ADVICE.get(code)
    return f"{head}: {code}: {message}" + (f" ({advice})" if advice else "")
