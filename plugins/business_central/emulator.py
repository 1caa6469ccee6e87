"""An in-memory emulator of Microsoft Dynamics 365 Business Central's API v2.0 and its Entra ID token endpoint,
as hub reads them (``hub sandbox``, the tests). Paths, fields, errors and statuses follow
``shared/api-notes/commerce-apis.md`` sections 5.2 and 7 and the API v2.0 reference.

``POST /{tenant}/oauth2/v2.0/token`` (form): the client-credentials grant with ``scope=https://api.
businesscentral.dynamics.com/.default``; refusals are OAuth2 error bodies (``invalid_client`` AADSTS7000215 with
401 for a wrong secret; ``unauthorized_client`` AADSTS700016, ``invalid_request`` AADSTS90002 for an unknown
tenant, ``invalid_scope``, ``unsupported_grant_type``, all 400).

``GET /v2.0/{tenant}/{environment}/api/v2.0/companies`` and ``.../companies({id})/{entitySet}`` (``customers``,
``contacts``, ``items``, ``salesInvoices``, ``salesCreditMemos``; ``(id)`` for one record) pass a gate, in order:
a bearer token of the tenant (**401** ``Authentication_InvalidCredentials``), a known environment and company
(**404** ``BadRequest_NotFound``), the throttle (``POST /_emulator/throttle``) and the app's sliding window of
6,000 requests per 5 minutes (**429** ``Application_TooManyRequests`` with ``Retry-After``). Lists take
``$filter``, ``$orderby``, ``$select``, ``$expand`` (a document's lines), ``$top``, ``$skip`` and
``Prefer: odata.maxpagesize`` (answered with ``Preference-Applied``); beyond a page, ``@odata.nextLink`` carries a
``$skiptoken`` that resumes after the page's last record in the requested order. A bad query option is **400**
``BadRequest`` in BC's words.

The control API (``/_emulator/``, never faulted) is ``hub.sources.emulator``'s, plus ``GET state``, ``POST
reset``, ``GET|POST config`` (``token_ttl``, ``max_page_size``, ``window``: ``[requests, seconds]``),
``POST tokens/expire`` and ``POST seed`` (``{"demo": true}``: the demo's ERP customers, or a synthetic set of
``{"count": N}`` customers with their items, invoices and credit memos).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
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
from hub_plugins.business_central import _odata as odata
from hub_plugins.business_central._entities import COMPANY, ENTITY_SETS
from hub_plugins.business_central._odata import ODataError
from hub_plugins.business_central._state import (
    DEFAULT_CLIENT,
    DEFAULT_COMPANY,
    DEFAULT_TENANT,
    ENVIRONMENTS,
    BcState,
    TokenRefusal,
)

DEFAULT_PORT = 8780
_ENTITY = re.compile(r"^(?P<set>[A-Za-z]+)(?:\((?P<key>[0-9a-fA-F-]{36})\))?$")
_MAXPAGESIZE = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)")

Handler = Callable[[Request], Awaitable[Response]]


def _error(error: ODataError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


# -- the token endpoint -------------------------------------------------------------------------------------------


def _token(state: BcState) -> Handler:
    async def token(request: Request) -> Response:
        wait = state.take_throttle(None)
        if wait is not None:  # Entra ID throttles too; the control API's throttle takes the next request, whichever
            busy = {"error": "temporarily_unavailable", "error_description": "The server is temporarily too busy."}
            return JSONResponse(busy, status_code=429, headers={"Retry-After": f"{wait:g}"})
        raw = (await request.body()).decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        try:
            return JSONResponse(state.grant(request.path_params["tenant"], form))
        except TokenRefusal as refusal:
            return JSONResponse(refusal.body(), status_code=refusal.status)

    return token


# -- the API --------------------------------------------------------------------------------------------------------


def _api(state: BcState) -> Handler:
    async def endpoint(request: Request) -> Response:
        tenant, environment = request.path_params["tenant"], request.path_params["environment"]
        header = request.headers.get("authorization", "")
        client = state.client_of(header[7:].strip() if header.lower().startswith("bearer ") else None)
        if client is None or tenant not in (state.tenant, state.tenant_domain):
            rejected = ODataError(
                401, "Authentication_InvalidCredentials", "The server has rejected the client credentials."
            )
            return _error(rejected, {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'})
        if environment not in ENVIRONMENTS:
            return _error(ODataError(404, "BadRequest_NotFound", f"The environment '{environment}' was not found."))
        wait = state.take_throttle(client)
        if wait is not None:
            message = "Too many requests reached.  Actual (6001).  Maximum (6000)."
            return _error(ODataError(429, "Application_TooManyRequests", message), {"Retry-After": f"{wait:g}"})
        try:
            return await run_in_threadpool(_serve, state, request)
        except ODataError as error:
            return _error(error)

    return endpoint


def _serve(state: BcState, request: Request) -> Response:
    rest = request.path_params["rest"].strip("/")
    root = str(request.url).split("/api/v2.0/")[0] + "/api/v2.0"
    if rest == "companies":
        with state.lock:
            values = [c.public() for c in state.companies.values()]
        test = odata.parse_filter(request.query_params.get("$filter"), COMPANY)
        return JSONResponse({"@odata.context": f"{root}/$metadata#companies", "value": [v for v in values if test(v)]})
    match = re.fullmatch(r"companies\((?P<company>[0-9a-fA-F-]{36})\)/(?P<entity>[^/]+)", rest)
    if match is None:
        raise ODataError(
            404, "BadRequest_NotFound", f"No HTTP resource was found that matches the request URI '{request.url}'."
        )
    company = state.company(match["company"])
    if company is None:
        raise ODataError(404, "BadRequest_NotFound", f"The company '{match['company']}' does not exist.")
    entity = _ENTITY.fullmatch(match["entity"])
    if entity is None or entity["set"] not in ENTITY_SETS:
        raise ODataError(404, "BadRequest_NotFound", f"Resource not found for the segment '{match['entity']}'.")
    name, key = entity["set"], entity["key"]
    kind, _, _, default_order = ENTITY_SETS[name]
    query = request.query_params
    expand = odata.parse_expand(query.get("$expand"), kind)
    select = odata.parse_select(query.get("$select"), kind)
    context = f"{root}/$metadata#companies({company.id})/{name}"
    with state.lock:
        table = company.tables[name]
        if key is not None:
            row = table.get(key.lower())
            if row is None:
                raise ODataError(
                    404,
                    "BadRequest_NotFound",
                    f"The {kind.name} does not exist. Identification fields and values: Id='{key}'",
                )
            return JSONResponse(
                {
                    "@odata.context": context + "/$entity",
                    **_shape(state.public(name, key.lower(), row, expand=expand), select, expand),
                }
            )
        test = odata.parse_filter(query.get("$filter"), kind)
        order = odata.parse_orderby(query.get("$orderby"), kind, default_order)
        rows = []
        for row_key, row in table.items():
            plain = {**row.data, "id": row_key, "lastModifiedDateTime": row.modified}
            if test(plain):
                rows.append((odata.sort_key(plain, order, kind), row_key, row))
        rows.sort(key=lambda item: item[0])
        token = query.get("$skiptoken")
        if token is not None:
            position = odata.decode_skiptoken(token)
            rows = [item for item in rows if odata.after(item[0], position)]
        skip, top = odata.parse_count(query.get("$skip"), "$skip"), odata.parse_count(query.get("$top"), "$top")
        if skip:
            rows = rows[skip:]
        if top is not None:
            rows = rows[:top]
        size = _page_size(request, state.max_page_size)
        page = rows[:size]
        value = [_shape(state.public(name, row_key, row, expand=expand), select, expand) for _, row_key, row in page]
    body: dict[str, Any] = {"@odata.context": context, "value": value}
    headers = {}
    if size < state.max_page_size:
        headers["Preference-Applied"] = f"odata.maxpagesize={size}"
    if len(rows) > size:
        params = {k: v for k, v in query.items() if k not in ("$skiptoken", "$skip", "$top")}
        params["$skiptoken"] = odata.encode_skiptoken(page[-1][0])
        body["@odata.nextLink"] = f"{str(request.url).split('?')[0]}?{urlencode(params, safe='$,')}"
    return JSONResponse(body, headers=headers)


def _page_size(request: Request, server_max: int) -> int:
    match = _MAXPAGESIZE.search(request.headers.get("prefer", ""))
    return min(int(match.group(1)), server_max) if match and int(match.group(1)) > 0 else server_max


def _shape(record: dict[str, Any], select: list[str] | None, expand: list[str]) -> dict[str, Any]:
    if select is None:
        return record
    keep = {"@odata.etag", *select, *expand}
    return {k: v for k, v in record.items() if k in keep}


# -- the control API's extras -----------------------------------------------------------------------------------------


def _extras(state: BcState) -> list[Route]:
    async def inspect(request: Request) -> Response:
        return JSONResponse(state.summary())

    async def reset(request: Request) -> Response:
        state.reset()
        return Response(status_code=204)

    async def config(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            if "token_ttl" in body:
                state.token_ttl = _positive(body["token_ttl"], "token_ttl")
            if "max_page_size" in body:
                state.max_page_size = int(_positive(body["max_page_size"], "max_page_size"))
            if "window" in body:
                window = body["window"]
                if not isinstance(window, list) or len(window) != 2:
                    raise ValueError("window is [requests, seconds]")
                state.window = (int(_positive(window[0], "window")), _positive(window[1], "window"))
        return JSONResponse(
            {"token_ttl": state.token_ttl, "max_page_size": state.max_page_size, "window": list(state.window)}
        )

    async def expire(request: Request) -> Response:
        state.expire_tokens()
        return Response(status_code=204)

    async def seed(request: Request) -> Response:
        from hub_plugins.business_central.demo import seed_demo  # only needed here

        body = await _body(request)
        erp = body.get("erp_csv")
        counts = await run_in_threadpool(
            seed_demo,
            state,
            erp_csv=Path(erp) if erp else None,
            count=int(body.get("count", 300)),
            seed=int(body.get("seed", 42)),
        )
        return JSONResponse(counts)

    def guarded(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except (ValueError, OSError) as exc:
                return JSONResponse({"message": str(exc)}, status_code=422)

        return endpoint

    return [
        Route("/_emulator/state", inspect),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/config", guarded(config), methods=["GET", "POST"]),
        Route("/_emulator/tokens/expire", expire, methods=["POST"]),
        Route("/_emulator/seed", guarded(seed), methods=["POST"]),
    ]


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"{name} must be a positive number")
    return float(value)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# -- the app ----------------------------------------------------------------------------------------------------------


def app(*, demo: bool = False, erp_csv: Path | None = None) -> Starlette:
    """A fresh emulator; ``demo`` seeds it with the demo's customers (``erp_csv``, else ``var/demo/erp/customers.csv``
    when it exists, else a synthetic set). ``app.state.bc`` is its :class:`BcState`."""
    state = BcState()
    if demo or erp_csv is not None:
        from hub_plugins.business_central.demo import demo_csv, seed_demo

        seed_demo(state, erp_csv=erp_csv or demo_csv())
    routes = [
        Route("/{tenant}/oauth2/v2.0/token", _token(state), methods=["POST"]),
        Route("/v2.0/{tenant}/{environment}/api/v2.0/{rest:path}", _api(state)),
        *control_routes(state),
        *_extras(state),
    ]
    application = Starlette(routes=routes)
    application.state.bc = state
    return application


def settings(base_url: str) -> dict[str, Any]:
    """Connector settings that point a ``plugin: business_central`` connector at an emulator at ``base_url``."""
    return {
        "tenant": DEFAULT_TENANT,
        "environment": "production",
        "company": DEFAULT_COMPANY,
        "client_id": DEFAULT_CLIENT[0],
        "client_secret": DEFAULT_CLIENT[1],
        "base_url": base_url,
        "token_url": f"{base_url}/{{tenant}}/oauth2/v2.0/token",
        "rate_limit": None,
    }


#: What ``hub sandbox`` serves: the demo's customers (B2B with their contacts), items, invoices and credit memos.
EMULATOR = Emulator(
    name="business_central",
    connector_type="business_central",
    app=functools.partial(app, demo=True),
    settings=settings,
    default_port=DEFAULT_PORT,
    description="Business Central API v2.0 + Entra ID token endpoint: companies, customers, contacts, items, "
    "sales invoices and credit memos (demo seeded)",
)

#: The same emulator, empty, for tests that seed their own records.
BLANK = Emulator(
    name="business_central",
    connector_type="business_central",
    app=app,
    settings=settings,
    default_port=DEFAULT_PORT,
    description="Business Central API v2.0, empty",
)
