"""An emulated WooCommerce shop: the REST API wc/v3 subset hub reads, served from memory for ``hub sandbox`` and tests.

- ``GET /wp-json/wc/v3/{customers,orders,products}`` with ``page``/``offset``/``per_page`` (1 to 100, else
  ``400 rest_invalid_param``), ``orderby``/``order``, ``modified_after``/``modified_before``/``after``/``before``
  (exclusive, whole seconds) with ``dates_are_gmt``, ``status`` (default ``any``: all but the trash), ``role`` for
  customers (no modified filter there, as in WooCommerce); ``X-WP-Total``, ``X-WP-TotalPages`` and ``Link``.
- ``GET .../{resource}/{id}`` and ``GET /wp-json/wc/v3/orders/{id}/refunds``; ``GET|POST /wp-json/wc/v3/webhooks``.
- **Auth as WooCommerce does it**: over TLS (``app(tls=True)``, or ``POST /_emulator/config {"tls": true}``: the
  emulator then acts as a site behind a TLS-terminating proxy) query-string keys, then HTTP Basic; otherwise, and
  when those found no key, OAuth 1.0a with its parameters in the query string, checked as WooCommerce checks them
  (signature, HMAC-SHA1 or -SHA256, timestamp within 15 minutes, nonce never reused). A wrong secret is ``401
  woocommerce_rest_authentication_error`` (with ``WWW-Authenticate`` under Basic); no usable key runs the request
  anonymously, which WooCommerce answers ``401 woocommerce_rest_cannot_view``; a read-only key writing is ``401``.
- Errors are ``{"code", "message", "data": {"status"}}``; an unknown route is ``404 rest_no_route``.
- ``POST /_emulator/throttle`` answers the next requests ``429 rate_limit_exceeded`` with ``Retry-After`` (the
  Store API's limiter; wc/v3 has none, but hosts and WAFs throttle). Webhooks: :mod:`._sender`.
- The control API of :mod:`hub.sources.emulator`; ``GET /_emulator/webhooks`` lists webhooks and deliveries.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import hmac
import math
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.sandbox import Emulator
from hub.sources.emulator import control_routes
from hub_plugins.woocommerce._state import DEFAULT_KEY, DEFAULT_SECRET, STREAMS, ApiKey, Item, ShopState

API = "/wp-json/wc/v3"
DEMO_DIR = Path("var/demo")
DEFAULT_PORT = 8774
NONCE_WINDOW = 15 * 60
_BASIC_REALM = (
    'Basic realm="WooCommerce API. Use a consumer key in the username field and a consumer secret in the password '
    'field."'
)


def error(status: int, code: str, message: str, **data: Any) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "data": {"status": status, **data}}, status_code=status)


# ---------------------------------------------------------------------------------------------- authentication


class _Auth:
    """The outcome of WooCommerce's ``WC_REST_Authentication`` for one request."""

    def __init__(self, key: ApiKey | None = None, failure: JSONResponse | None = None) -> None:
        self.key = key
        self.failure = failure


def _rawurlencode(text: str) -> str:
    """PHP's ``rawurlencode``."""
    return quote(text.encode("utf-8"), safe="-_.~")


def _authenticate(state: ShopState, request: Request) -> _Auth:
    tls = state.tls or request.url.scheme == "https"
    query = request.query_params
    if tls:
        key, secret = query.get("consumer_key", ""), query.get("consumer_secret", "")
        if not (key and secret):
            key, secret = _basic(request)
        if key and secret and key in state.keys:
            if not hmac.compare_digest(state.keys[key].secret, secret):
                failure = error(401, "woocommerce_rest_authentication_error", "Consumer secret is invalid.")
                failure.headers["WWW-Authenticate"] = _BASIC_REALM
                return _Auth(failure=failure)
            return _Auth(state.keys[key])
    return _oauth(state, request, tls)


def _basic(request: Request) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return "", ""
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    return user, password


def _oauth(state: ShopState, request: Request, tls: bool) -> _Auth:
    params = dict(request.query_params)  # PHP's $_GET: the last value of a repeated name wins
    names = ("oauth_consumer_key", "oauth_timestamp", "oauth_nonce", "oauth_signature", "oauth_signature_method")
    missing = [name for name in names if not params.get(name)]
    if len(missing) == len(names):
        return _Auth()  # not even trying: the request runs anonymously
    if missing:
        label = "parameter" if len(missing) == 1 else "parameters"
        message = f"Missing OAuth {label} {', '.join(missing)}"
        return _Auth(failure=error(401, "woocommerce_rest_authentication_missing_parameter", message))
    key = state.keys.get(params["oauth_consumer_key"])
    if key is None:
        return _Auth(failure=error(401, "woocommerce_rest_authentication_error", "Consumer key is invalid."))
    given = params.pop("oauth_signature").replace(" ", "+")
    method = params["oauth_signature_method"]
    if method not in ("HMAC-SHA1", "HMAC-SHA256"):
        return _Auth(failure=_invalid("Invalid signature - signature method is invalid."))
    # WC_REST_Authentication::check_oauth_signature: sorted by name, each name and value rawurlencoded, each
    # "name=value" rawurlencoded again and joined with %26; the URI is the home URL and the request's path.
    home = f"{'https' if tls else 'http'}://{request.headers.get('host', request.url.netloc)}"
    pairs = [_rawurlencode(f"{_rawurlencode(k)}={_rawurlencode(v)}") for k, v in sorted(params.items())]
    text = f"{request.method}&{_rawurlencode(home + request.url.path)}&{'%26'.join(pairs)}"
    digest = hashlib.sha1 if method == "HMAC-SHA1" else hashlib.sha256
    expected = base64.b64encode(hmac.new(f"{key.secret}&".encode(), text.encode(), digest).digest()).decode()
    if not hmac.compare_digest(expected, given):
        return _Auth(failure=_invalid("Invalid signature - provided signature does not match."))
    try:
        stamp = int(params["oauth_timestamp"])
    except ValueError:
        stamp = 0
    now = int(time.time())
    if not now - NONCE_WINDOW <= stamp <= now + NONCE_WINDOW:
        return _Auth(failure=_invalid("Invalid timestamp."))
    with state.lock:
        key.nonces = {n: t for n, t in key.nonces.items() if t >= now - NONCE_WINDOW}
        if params["oauth_nonce"] in key.nonces:
            return _Auth(failure=_invalid("Invalid nonce - nonce has already been used."))
        key.nonces[params["oauth_nonce"]] = stamp
    return _Auth(key)


def _invalid(message: str) -> JSONResponse:
    return error(401, "woocommerce_rest_authentication_error", message)


# ---------------------------------------------------------------------------------------------- listing


def _params(request: Request, stream: str) -> dict[str, Any] | JSONResponse:
    """The collection parameters, validated as WordPress validates them (400 ``rest_invalid_param``)."""
    query = request.query_params
    bad: dict[str, str] = {}
    out: dict[str, Any] = {}
    for name, default, low, high in (("page", 1, 1, None), ("per_page", 10, 1, 100), ("offset", None, 0, None)):
        raw = query.get(name)
        if raw is None:
            out[name] = default
            continue
        try:
            value = int(raw)
        except ValueError:
            bad[name] = f"{name} is not of type integer."
            continue
        if value < low or (high is not None and value > high):
            bad[name] = (
                f"{name} must be between {low} (inclusive) and {high} (inclusive)"
                if high is not None
                else f"{name} must be greater than or equal to {low}"
            )
        out[name] = value
    orderbys = (
        ("id", "include", "name", "registered_date")
        if stream == "customers"
        else ("date", "id", "include", "title", "slug", "modified")
    )
    out["orderby"] = query.get("orderby", "name" if stream == "customers" else "date")
    if out["orderby"] not in orderbys:
        bad["orderby"] = f"orderby is not one of {', '.join(orderbys)}."
    out["order"] = query.get("order", "asc" if stream == "customers" else "desc")
    if out["order"] not in ("asc", "desc"):
        bad["order"] = "order is not one of asc and desc."
    out["gmt"] = query.get("dates_are_gmt", "false").lower() in ("1", "true")
    for name in ("after", "before", "modified_after", "modified_before"):
        if name in query:
            try:
                out[name] = query[name]
                datetime.fromisoformat(query[name].replace("Z", "+00:00"))
            except ValueError:
                bad[name] = "Invalid date."
    if bad:
        names = ", ".join(bad)
        return error(400, "rest_invalid_param", f"Invalid parameter(s): {names}", params=bad)
    return out


def _moment(state: ShopState, text: str, gmt: bool) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC if gmt else state.zone)
    return moment.astimezone(UTC).replace(microsecond=0)


def _select(state: ShopState, stream: str, request: Request, params: dict[str, Any]) -> list[Item]:
    query = request.query_params
    with state.lock:
        items = list(state.items[stream].values())
    if stream == "customers":
        role = query.get("role", "customer")
        items = [i for i in items if role == "all" or i.record.get("role") == role]
    else:
        wanted = {s for raw in query.getlist("status") or ["any"] for s in raw.split(",")}
        if "any" in wanted:
            items = [i for i in items if i.record.get("status") != "trash"]
        else:
            items = [i for i in items if i.record.get("status") in wanted]
        for name, when, later in (
            ("after", "created", True),
            ("before", "created", False),
            ("modified_after", "modified", True),
            ("modified_before", "modified", False),
        ):
            if name in params:  # WP_Date_Query: exclusive, to the second
                bound = _moment(state, params[name], params["gmt"])
                items = [i for i in items if (getattr(i, when) > bound if later else getattr(i, when) < bound)]
    keys = {
        "id": lambda i: (i.record["id"],),
        "include": lambda i: (i.record["id"],),
        "date": lambda i: (i.created, i.record["id"]),
        "registered_date": lambda i: (i.created, i.record["id"]),
        "modified": lambda i: (i.modified, i.record["id"]),
        "title": lambda i: (str(i.record.get("name", "")), i.record["id"]),
        "slug": lambda i: (str(i.record.get("slug", "")), i.record["id"]),
        "name": lambda i: (f"{i.record.get('first_name', '')} {i.record.get('last_name', '')}", i.record["id"]),
    }
    return sorted(items, key=keys[params["orderby"]], reverse=params["order"] == "desc")


def _listing(state: ShopState, stream: str, request: Request) -> Response:
    params = _params(request, stream)
    if isinstance(params, Response):
        return params
    items = _select(state, stream, request, params)
    per_page, page = params["per_page"], params["page"]
    start = params["offset"] if params["offset"] is not None else (page - 1) * per_page
    chosen = items[start : start + per_page]
    with state.lock:
        body = [state.serve(stream, item) for item in chosen]
    total, pages = len(items), math.ceil(len(items) / per_page)
    headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
    base = f"{request.url.scheme}://{request.headers.get('host', '')}{request.url.path}"
    keep = [(k, v) for k, v in request.query_params.multi_items() if k != "page" and not k.startswith("oauth_")]
    links = []
    if page > 1:
        links.append(f'<{base}?{urlencode([*keep, ("page", min(page - 1, pages))])}>; rel="prev"')
    if pages > page:
        links.append(f'<{base}?{urlencode([*keep, ("page", page + 1)])}>; rel="next"')
    if links:
        headers["Link"] = ", ".join(links)
    return JSONResponse(body, headers=headers)


# ---------------------------------------------------------------------------------------------- the app


def app(*, tls: bool = False, site_timezone: str = "Europe/Oslo", demo_dir: Path | None = None) -> Starlette:
    """A fresh emulated shop; ``tls``: act as a site behind a TLS-terminating proxy (``is_ssl()`` is true);
    ``demo_dir``: seed it with the demo's web shop and catalogue found there (:mod:`.demo`)."""
    state = ShopState(tls=tls, site_timezone=site_timezone)
    if demo_dir is not None:
        from hub_plugins.woocommerce.demo import seed_demo  # only the sandbox needs it

        seed_demo(state, demo_dir)

    def guarded(handler: Any, *, write: bool = False) -> Any:
        async def endpoint(request: Request) -> Response:
            wait = state.take_throttle()
            if wait is not None:
                response = error(429, "rate_limit_exceeded", "Too many requests. Please wait and try again.")
                response.headers.update({"Retry-After": f"{math.ceil(wait)}", "RateLimit-Remaining": "0"})
                return response
            auth = _authenticate(state, request)
            if auth.failure is not None:
                return auth.failure
            if auth.key is None:
                if "stream" in request.path_params and "id" not in request.path_params:
                    invalid = _params(request, request.path_params["stream"])  # WordPress validates before it
                    if isinstance(invalid, Response):  # checks permissions
                        return invalid
                what = (
                    "create resources"
                    if write
                    else "list resources"
                    if "id" not in request.path_params
                    else "view this resource"
                )
                code = "woocommerce_rest_cannot_create" if write else "woocommerce_rest_cannot_view"
                return error(401, code, f"Sorry, you cannot {what}.")
            needed = ("write", "read_write") if write else ("read", "read_write")
            if auth.key.permissions not in needed:
                kind = "write" if write else "read"
                return error(
                    401,
                    "woocommerce_rest_authentication_error",
                    f"The API key provided does not have {kind} permissions.",
                )
            return await handler(request)

        return endpoint

    async def listing(request: Request) -> Response:
        if request.path_params["stream"] not in STREAMS:
            return await no_route(request)
        return _listing(state, request.path_params["stream"], request)

    async def one(request: Request) -> Response:
        stream, ident = request.path_params["stream"], request.path_params["id"]
        if stream not in STREAMS:
            return await no_route(request)
        with state.lock:
            item = state.items[stream].get(ident)
            if item is None:
                return error(
                    404,
                    f"woocommerce_rest_{stream[:-1]}_invalid_id"
                    if stream != "customers"
                    else "woocommerce_rest_invalid_id",
                    "Invalid ID.",
                )
            return JSONResponse(state.serve(stream, item))

    async def refunds(request: Request) -> Response:
        ident = request.path_params["id"]
        with state.lock:
            if ident not in state.items["orders"]:
                return error(404, "woocommerce_rest_order_invalid_id", "Invalid order ID.")
            body = [state.serve_refund(ident, item) for item in reversed(state.refunds.get(ident, []))]
        return JSONResponse(body, headers={"X-WP-Total": str(len(body)), "X-WP-TotalPages": "1" if body else "0"})

    async def list_webhooks(request: Request) -> Response:
        with state.sender.lock:
            return JSONResponse([w.public() for w in state.sender.webhooks.values()])

    async def create_webhook(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return error(400, "rest_invalid_json", "Invalid JSON body passed.")
        missing = [name for name in ("topic", "delivery_url") if not isinstance(body.get(name), str) or not body[name]]
        if missing:
            return error(
                400, "rest_missing_callback_param", f"Missing parameter(s): {', '.join(missing)}", params=missing
            )
        webhook = await run_in_threadpool(
            state.sender.create,
            name=str(body.get("name") or body["topic"]),
            topic=body["topic"],
            delivery_url=body["delivery_url"],
            secret=str(body.get("secret") or ""),
            status=str(body.get("status") or "active"),
        )
        return JSONResponse(webhook.public(), status_code=201)

    async def no_route(request: Request) -> Response:
        return error(404, "rest_no_route", "No route was found matching the URL and request method.")

    async def webhooks_view(request: Request) -> Response:
        with state.sender.lock:
            return JSONResponse(
                {
                    "webhooks": [w.public() for w in state.sender.webhooks.values()],
                    "deliveries": [
                        {"webhook_id": d.webhook_id, "topic": d.topic, "status": d.status}
                        for d in state.sender.deliveries
                    ],
                }
            )

    async def config(request: Request) -> Response:
        body = await request.json()
        if "tls" in body:
            state.tls = bool(body["tls"])
        for key, secret in (body.get("keys") or {}).items():
            state.keys[key] = ApiKey(secret["secret"], secret.get("permissions", "read_write"))
        return JSONResponse({"tls": state.tls, "keys": sorted(state.keys)})

    streams = "{stream:str}"
    routes = [
        Route(f"{API}/orders/{{id:int}}/refunds", guarded(refunds), methods=["GET"]),
        Route(f"{API}/webhooks", guarded(list_webhooks), methods=["GET"]),
        Route(f"{API}/webhooks", guarded(create_webhook, write=True), methods=["POST"]),
        Route(f"{API}/{streams}", guarded(listing), methods=["GET"]),
        Route(f"{API}/{streams}/{{id:int}}", guarded(one), methods=["GET"]),
        Route("/_emulator/webhooks", webhooks_view, methods=["GET"]),
        Route("/_emulator/config", config, methods=["POST"]),
        *control_routes(state),
        Route("/wp-json/{rest:path}", no_route, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    application = Starlette(routes=routes)
    application.state.woocommerce = state
    return application


def settings(base_url: str) -> dict[str, Any]:
    """Connector settings that read this emulator at ``base_url`` (plain http: OAuth 1.0a signatures)."""
    return {"base_url": base_url, "consumer_key": DEFAULT_KEY, "consumer_secret": DEFAULT_SECRET}


#: What ``hub sandbox`` serves: the demo's web shop (from ``var/demo``, written by ``hub demo-data``; empty without).
EMULATOR = Emulator(
    name="woocommerce",
    connector_type="woocommerce",
    app=functools.partial(app, demo_dir=DEMO_DIR),
    settings=settings,
    default_port=DEFAULT_PORT,
    description="WooCommerce REST API wc/v3: customers, orders with refunds, products, webhooks (demo seeded)",
)

#: The same emulator with an empty shop, for tests that seed their own records.
BLANK = dataclasses.replace(EMULATOR, app=app, description="WooCommerce REST API wc/v3 (empty shop)")

__all__ = ["API", "BLANK", "EMULATOR", "app", "settings"]
