"""An in-memory emulator of the Akeneo PIM REST API, as hub reads it (``hub sandbox``, the tests).

Paths, fields, error bodies and statuses follow ``shared/api-notes/commerce-apis.md`` section 4 and Akeneo's own
controllers; choices the notes leave open are listed in ``plugins/akeneo/README.md``.

``POST /api/oauth/v1/token``: ``Authorization: Basic base64(client_id:secret)`` (or ``client_id`` and
``client_secret`` in the body), JSON or form body, grants ``password`` and ``refresh_token``. Errors are **422**
with the PIM's messages; a body that is neither JSON nor a form is **415**.

Every ``/api/rest/v1/`` request passes a gate, in this order: a bearer token (**401** ``Authentication is
required`` / ``The access token provided is invalid.`` / ``... has expired.``); the throttle set with
``POST /_emulator/throttle`` (**429**, ``Retry-After`` in whole seconds, ``{"code":429,"message":"You have
exceeded the limit of API requests per second."}``); an ``Accept`` that allows JSON (**406**).

``GET products-uuid`` (``search``, ``pagination_type`` ``page`` or ``search_after``, ``limit`` <= 100, ``attributes``,
``locales``, ``scope``), ``products-uuid/{uuid}``, ``products/{code}``; ``families``, ``categories``, ``attributes``,
``attributes/{code}/options``, ``association-types``, each listed by page and fetched by code.

The control API (``/_emulator/``, never faulted) is ``hub.sources.emulator``'s (streams ``products`` and
``relations``, both products; ``families``, ``categories``, ``attributes``, ``association_types`` by code), plus
``GET state``, ``POST reset``, ``GET|POST config`` (``token_ttl``, ``refresh_ttl``, ``index_delay``),
``POST tokens/expire`` (``{"refresh": true}`` expires refresh tokens too) and ``POST seed``
(``{"demo": true, "seed": 42}`` or ``{"pim_dir": "var/demo/pim"}``: the demo's catalogue).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.sandbox import Emulator
from hub.sources.emulator import control_routes
from hub_plugins.akeneo._search import parse
from hub_plugins.akeneo._state import DEFAULT_CLIENT, DEFAULT_USER, AkeneoState, ApiError, Product

DEFAULT_PORT = 8773
MAX_LIMIT = 100
DEFAULT_LIMIT = 10
MAX_PAGE_ITEMS = 10_000  # past this, page pagination refuses: use search_after
THROTTLED = "You have exceeded the limit of API requests per second."
_BAD_ZERO_DATE = "0000-00-00T00:00:00+00:00"
_TOKEN_ERRORS = {
    "request": 'Parameter "grant_type", "username" or "password" is missing, empty or invalid',
    "client": 'Parameter "client_id" is missing or does not match any client, or secret is invalid',
    "unauthorized": "This grant type is not authorized for this client",
    "grant": "No user found for the given username and password",
    "refresh_request": 'Parameter "grant_type" or "refresh_token" is missing or empty',
    "refresh_grant": "Refresh token is invalid or has expired",
}

Handler = Callable[[Request], Awaitable[Response]]


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _error(error: ApiError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return _json(error.body(), error.status, headers)


# -- the token endpoint -------------------------------------------------------------------------------------------


def _token(state: AkeneoState) -> Handler:
    async def token(request: Request) -> Response:
        wait = state.take_throttle()
        if wait is not None:
            return _throttled(wait)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        raw = await request.body()
        if kind == "application/json":
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return _error(ApiError(400, "Invalid json message received"))
            body = body if isinstance(body, dict) else {}
        elif kind == "application/x-www-form-urlencoded":
            body = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        else:
            message = (
                f'"{kind}" in "Content-Type" header is not valid. Only "application/json" or '
                '"application/x-www-form-urlencoded" are allowed.'
            )
            return _error(ApiError(415, message))
        client, secret = _client_credentials(request, body)
        grant = body.get("grant_type")
        if grant == "refresh_token":
            if state.clients.get(client or "") != secret or secret is None:
                return _error(ApiError(422, _TOKEN_ERRORS["client"]))
            refresh = body.get("refresh_token")
            if not isinstance(refresh, str) or not refresh:
                return _error(ApiError(422, _TOKEN_ERRORS["refresh_request"]))
            if not state.use_refresh_token(refresh):
                return _error(ApiError(422, _TOKEN_ERRORS["refresh_grant"]))
            return _json(state.grant("refresh_token"))
        if grant != "password" or not body.get("username") or not body.get("password"):
            reason = (
                "unauthorized" if isinstance(grant, str) and grant in {"token", "client_credentials"} else "request"
            )
            return _error(ApiError(422, _TOKEN_ERRORS[reason]))
        if state.clients.get(client or "") != secret or secret is None:
            return _error(ApiError(422, _TOKEN_ERRORS["client"]))
        if state.users.get(str(body["username"])) != body["password"]:
            return _error(ApiError(422, _TOKEN_ERRORS["grant"]))
        return _json(state.grant("password"))

    return token


def _client_credentials(request: Request, body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            client, _, secret = base64.b64decode(header[6:].strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        return client, secret
    client, secret = body.get("client_id"), body.get("client_secret")
    return (client if isinstance(client, str) else None), (secret if isinstance(secret, str) else None)


def _throttled(wait: float) -> Response:
    seconds = str(max(0, round(wait)))  # Akeneo sends whole seconds; its PHP client refuses anything else
    return _error(ApiError(429, THROTTLED), {"Retry-After": seconds})


# -- the gate in front of the REST API ------------------------------------------------------------------------------


def _api(state: AkeneoState, handler: Callable[[Request], Response]) -> Handler:
    """Token, throttle and Accept checks, then ``handler`` on a worker thread (it takes the state's lock)."""

    async def endpoint(request: Request) -> Response:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else None
        problem = state.token_problem(token)
        if problem is not None:
            return _error(ApiError(401, problem))
        wait = state.take_throttle()
        if wait is not None:
            return _throttled(wait)
        accept = request.headers.get("accept", "*/*")
        if not any(
            kind.split(";")[0].strip() in ("application/json", "*/*", "application/*") for kind in accept.split(",")
        ):
            message = f'"{accept}" in "Accept" header is not valid. Only "application/json" is allowed.'
            return _error(ApiError(406, message))
        try:
            return await run_in_threadpool(handler, request)
        except ApiError as error:
            return _error(error)

    return endpoint


def _int(request: Request, name: str, default: int, message: str) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, message.format(raw)) from None
    if str(value) != raw.strip() or value < 1:
        raise ApiError(422, message.format(raw))
    return value


def _limit(request: Request) -> int:
    limit = _int(request, "limit", DEFAULT_LIMIT, '"{}" is not a valid limit number.')
    if limit > MAX_LIMIT:
        raise ApiError(422, f"You cannot request more than {MAX_LIMIT} items.")
    return limit


def _href(request: Request, **params: Any) -> str:
    query = {k: v for k, v in {**dict(request.query_params), **params}.items() if v is not None}
    return str(request.url.replace(query=urlencode(query)))


def _page(request: Request, items: list[Any], limit: int, *, with_count: bool = True) -> dict[str, Any]:
    """Offset pagination (``page``): ``_links`` self, first, previous, next and ``current_page``."""
    page = _int(request, "page", 1, '"{}" is not a valid page number.')
    if (page - 1) * limit >= MAX_PAGE_ITEMS:
        raise ApiError(
            422,
            'You have reached the maximum number of pages you can retrieve with the "page" pagination type. '
            "Please use the search after pagination type instead",
            _links={
                "documentation": {"href": "https://api.akeneo.com/documentation/pagination.html#search-after-type"}
            },
        )
    chosen = items[(page - 1) * limit : page * limit]
    links: dict[str, Any] = {"self": {"href": _href(request)}, "first": {"href": _href(request, page=1)}}
    if page > 1:
        links["previous"] = {"href": _href(request, page=page - 1)}
    if len(items) > page * limit:
        links["next"] = {"href": _href(request, page=page + 1)}
    body: dict[str, Any] = {"_links": links, "current_page": page, "_embedded": {"items": chosen}}
    if with_count and request.query_params.get("with_count") == "true":
        body["items_count"] = len(items)
    return body


def _encode_after(uuid: str) -> str:
    return base64.urlsafe_b64encode(uuid.encode()).decode().rstrip("=")


def _decode_after(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError(422, f'"{token}" is not a valid search_after value.') from None


# -- products -----------------------------------------------------------------------------------------------------


def _products(state: AkeneoState) -> Callable[[Request], Response]:
    def listing(request: Request) -> Response:
        query = request.query_params
        limit = _limit(request)
        pagination = query.get("pagination_type", "page")
        if pagination not in ("page", "search_after"):
            raise ApiError(422, "Pagination type does not exist.")
        tests, allowed = parse(query.get("search"))
        shape = _shape(request)
        with state.lock:
            now = state.clock()
            pool = (
                state.products.values()
                if allowed is None
                else [state.products[u] for u in allowed if u in state.products]
            )
            chosen = [
                p
                for p in sorted(pool, key=lambda p: p.uuid)
                if p.searched_updated(now) is not None and all(t(p, now) for t in tests)  # lists come from the index
            ]
            if pagination == "page":
                body = _page(request, chosen, limit, with_count=False)
                body["_embedded"]["items"] = [_serve(state, p, request, shape) for p in body["_embedded"]["items"]]
                return _json(body)
            after = query.get("search_after")
            if after is not None:
                last = _decode_after(after)
                chosen = [p for p in chosen if p.uuid > last]
            page = chosen[:limit]
            items = [_serve(state, p, request, shape) for p in page]
        links: dict[str, Any] = {
            "self": {"href": _href(request)},
            "first": {"href": _href(request, search_after=None)},
        }
        if len(page) == limit:  # a full page always has a next link, as Akeneo's search-after paginator
            links["next"] = {"href": _href(request, search_after=_encode_after(page[-1].uuid))}
        return _json({"_links": links, "_embedded": {"items": items}})

    return listing


def _product(state: AkeneoState, by: str) -> Callable[[Request], Response]:
    def one(request: Request) -> Response:
        code = request.path_params["code"]
        with state.lock:
            if by == "uuid":
                product = state.products.get(code)
            else:
                product = next((p for p in state.products.values() if state.sku_of(p.uuid) == code), None)
            if product is None:
                raise ApiError(404, f'Product "{code}" does not exist or you do not have permission to access it.')
            return _json(_serve(state, product, request, _shape(request)))

    return one


def _shape(request: Request) -> tuple[frozenset[str] | None, frozenset[str] | None, str | None]:
    """The ``attributes``, ``locales`` and ``scope`` query parameters that narrow the values served."""
    query = request.query_params
    attributes = frozenset(query["attributes"].split(",")) if query.get("attributes") else None
    locales = frozenset(query["locales"].split(",")) if query.get("locales") else None
    return attributes, locales, query.get("scope")


def _serve(
    state: AkeneoState,
    product: Product,
    request: Request,
    shape: tuple[frozenset[str] | None, frozenset[str] | None, str | None],
) -> dict[str, Any]:
    """A product in the API's format (a malformed one with MySQL's zero date as ``updated``)."""
    attributes, locales, scope = shape
    data = product.data
    values = {
        code: [
            dict(entry)
            for entry in entries
            if (locales is None or entry.get("locale") is None or entry.get("locale") in locales)
            and (scope is None or entry.get("scope") is None or entry.get("scope") == scope)
        ]
        for code, entries in (data.get("values") or {}).items()
        if attributes is None or code in attributes
    }
    associations = {
        code: {
            "products": list(links.get("products") or []),
            "product_models": list(links.get("product_models") or []),
            "groups": list(links.get("groups") or []),
        }
        for code, links in (data.get("associations") or {}).items()
    }
    base = str(request.base_url).rstrip("/")
    served = {
        "_links": {"self": {"href": f"{base}/api/rest/v1/products-uuid/{product.uuid}"}},
        "uuid": product.uuid,
        "enabled": data.get("enabled", True),
        "family": data.get("family"),
        "categories": list(data.get("categories") or []),
        "groups": list(data.get("groups") or []),
        "parent": data.get("parent"),
        "values": {code: entries for code, entries in values.items() if entries},
        "created": product.created.isoformat(),
        "updated": product.updated.isoformat(),
        "associations": associations,
        "quantified_associations": {},
    }
    if product.uuid in state.malformed_keys:
        served["updated"] = _BAD_ZERO_DATE
    return served


# -- reference data -----------------------------------------------------------------------------------------------


def _listing(state: AkeneoState, table: Callable[[], Mapping[str, dict[str, Any]]]) -> Callable[[Request], Response]:
    def listing(request: Request) -> Response:
        limit = _limit(request)
        with state.lock:
            items = [dict(item) for _, item in sorted(table().items())]
        return _json(_page(request, items, limit))

    return listing


def _one(
    state: AkeneoState, table: Callable[[], Mapping[str, dict[str, Any]]], what: str
) -> Callable[[Request], Response]:
    def one(request: Request) -> Response:
        code = request.path_params["code"]
        with state.lock:
            item = table().get(code)
        if item is None:
            raise ApiError(404, f'{what} "{code}" does not exist.')
        return _json(dict(item))

    return one


def _options(state: AkeneoState) -> Callable[[Request], Response]:
    def listing(request: Request) -> Response:
        code = request.path_params["code"]
        limit = _limit(request)
        with state.lock:
            if code not in state.attributes:
                raise ApiError(404, f'Attribute "{code}" does not exist.')
            items = [dict(option) for _, option in sorted(state.options.get(code, {}).items())]
        return _json(_page(request, items, limit))

    return listing


# -- the control API's extras -----------------------------------------------------------------------------------------


def _extras(state: AkeneoState) -> list[Route]:
    async def inspect(request: Request) -> Response:
        return _json(state.summary())

    async def reset(request: Request) -> Response:
        state.reset_catalogue()
        return Response(status_code=204)

    async def config(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            for name in ("token_ttl", "refresh_ttl", "index_delay"):
                if name in body:
                    value = body[name]
                    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                        return _json({"message": f"{name} must be a number of seconds, not negative"}, 422)
                    setattr(state, name, float(value))
        return _json({"token_ttl": state.token_ttl, "refresh_ttl": state.refresh_ttl, "index_delay": state.index_delay})

    async def expire(request: Request) -> Response:
        body = await _body(request) if await request.body() else {}
        state.expire_tokens(refresh=bool(body.get("refresh")))
        return Response(status_code=204)

    async def seed(request: Request) -> Response:
        from hub_plugins.akeneo.demo import seed_demo  # the demo generator is only needed here

        body = await _body(request)
        pim_dir = body.get("pim_dir")
        if not body.get("demo") and not pim_dir:
            return _json({"message": 'give {"demo": true, "seed": 42} or {"pim_dir": "var/demo/pim"}'}, 422)
        try:
            count = await run_in_threadpool(
                seed_demo, state, pim_dir=Path(pim_dir) if pim_dir else None, seed=int(body.get("seed", 42))
            )
        except (OSError, ValueError) as exc:
            return _json({"message": str(exc)}, 422)
        return _json({"products": count})

    return [
        Route("/_emulator/state", inspect),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/config", config, methods=["GET", "POST"]),
        Route("/_emulator/tokens/expire", expire, methods=["POST"]),
        Route("/_emulator/seed", seed, methods=["POST"]),
    ]


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# -- the app ----------------------------------------------------------------------------------------------------------


def app(*, demo: bool = False, pim_dir: Path | None = None, token_ttl: float = 3600.0) -> Starlette:
    """A fresh emulator; ``demo`` (or ``pim_dir``) seeds it with the demo's catalogue. ``app.state.akeneo``."""
    state = AkeneoState(token_ttl=token_ttl)
    if demo or pim_dir is not None:
        from hub_plugins.akeneo.demo import seed_demo

        seed_demo(state, pim_dir=pim_dir)
    api = functools.partial(_api, state)
    rest = "/api/rest/v1"
    tables: Iterable[tuple[str, str, Callable[[], Mapping[str, dict[str, Any]]]]] = (
        ("families", "Family", lambda: state.families),
        ("categories", "Category", lambda: state.categories),
        ("attributes", "Attribute", lambda: state.attributes),
        ("association-types", "Association type", lambda: state.association_types),
    )
    routes = [
        Route("/api/oauth/v1/token", _token(state), methods=["POST"]),
        Route(f"{rest}/products-uuid", api(_products(state))),
        Route(f"{rest}/products-uuid/{{code}}", api(_product(state, "uuid"))),
        Route(f"{rest}/products/{{code}}", api(_product(state, "identifier"))),
        Route(f"{rest}/attributes/{{code}}/options", api(_options(state))),
    ]
    for path, what, table in tables:
        routes += [
            Route(f"{rest}/{path}", api(_listing(state, table))),
            Route(f"{rest}/{path}/{{code}}", api(_one(state, table, what))),
        ]
    routes += [*control_routes(state), *_extras(state)]
    application = Starlette(routes=routes)
    application.state.akeneo = state
    return application


def settings(base_url: str) -> dict[str, Any]:
    """Connector settings that point a ``plugin: akeneo`` connector at an emulator at ``base_url``."""
    return {
        "base_url": base_url,
        "client_id": DEFAULT_CLIENT[0],
        "secret": DEFAULT_CLIENT[1],
        "username": DEFAULT_USER[0],
        "password": DEFAULT_USER[1],
        "accessory_attribute": "accessory",
        "associations": {"ACCESSORIES": "accessory", "X_SELL": "cross_sell", "SUBSTITUTION": "replacement"},
    }


#: What ``hub sandbox`` serves: the demo's catalogue (3,000 products, their accessories and cross-sells).
EMULATOR = Emulator(
    name="akeneo",
    connector_type="akeneo",
    app=functools.partial(app, demo=True),
    settings=settings,
    default_port=DEFAULT_PORT,
    description="Akeneo PIM REST API: OAuth2, products-uuid with search and search_after, catalogue (demo seeded)",
)

#: The same emulator without the demo's catalogue, for tests that seed their own products.
BLANK = Emulator(
    name="akeneo",
    connector_type="akeneo",
    app=app,
    settings=settings,
    default_port=DEFAULT_PORT,
    description="Akeneo PIM REST API, empty",
)
