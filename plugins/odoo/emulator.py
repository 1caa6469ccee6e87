"""An in-memory emulator of Odoo's external APIs, as hub reads them (``hub sandbox``, the tests). Paths, bodies and
errors follow ``shared/api-notes/commerce-apis.md`` sections 5.1 and 7 and Odoo's own dispatchers.

``POST /json/2/<model>/<method>`` (JSON-2, served when the emulated version is 19 or later): ``Authorization:
bearer <api key>`` (**401** ``werkzeug.exceptions.Unauthorized`` "Invalid apikey", as an error object or, with
``json2_error_style: string``, a bare JSON string), ``X-Odoo-Database`` when given or when several databases are
hosted (**404**), then the method's named arguments (``ids`` and ``context`` apart). Errors carry the exception's
HTTP status (403 AccessError/AccessDenied, 404 MissingError, 422 UserError, 500 anything else, a bad domain
included) and ``{"name", "message", "arguments", "context", "debug"}``.

``POST /jsonrpc`` (JSON-RPC 2.0): ``common.version``, ``common.login``, ``common.authenticate`` (``false`` when
refused), ``object.execute_kw(db, uid, key, model, method, args, kwargs)``; every error is **HTTP 200** with
``{"error": {"code": 200 (or 0: rpc_error_code), "message": "Odoo Server Error", "data": {...}}}``.

ORM methods: ``search_read``, ``search``, ``search_count``, ``read`` on res.partner, sale.order, sale.order.line,
product.product, res.company, res.users; ``res.users.context_get``. ``GET /web/version``. Throttling (``POST
/_emulator/throttle``) answers **429** with ``Retry-After``: a JSON-2 error object on ``/json/2``, the reverse
proxy's page on ``/jsonrpc`` (Odoo itself has no rate limit).

The control API (``/_emulator/``, never faulted) is ``hub.sources.emulator``'s, plus ``GET state``, ``POST reset``,
``GET|POST config`` (``version``, ``json2_error_style``, ``rpc_error_code``, ``databases``), ``POST faults``
(``{"name": "odoo.exceptions.AccessError", "message": "...", "count": 1, "model": "sale.order"}``: the next ORM
calls, on that model if one is given, raise it) and
``POST seed`` (``{"erp_csv": path}`` or ``{"count": N}``).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from hub.sandbox import Emulator
from hub.sources.emulator import control_routes
from hub_plugins.odoo._state import DATABASE, DEFAULT_KEY, DEFAULT_LOGIN, OdooFault, OdooState

DEFAULT_PORT = 8781
Handler = Callable[[Request], Awaitable[Response]]
#: Positional ``args`` of execute_kw, by method (Odoo's signatures).
POSITIONAL = {
    "search_read": ("domain", "fields", "offset", "limit", "order"),
    "search": ("domain", "offset", "limit", "order"),
    "search_count": ("domain", "limit"),
    "read": ("ids", "fields"),
    "context_get": (),
}
_TOO_MANY = "<html><head><title>429 Too Many Requests</title></head><body><h1>429 Too Many Requests</h1></body></html>"


def _major(version: str) -> int:
    try:
        return int(version.split(".")[0].removeprefix("saas~"))
    except ValueError:
        return 0


def _fault_body(fault: OdooFault, context: dict[str, Any] | None = None) -> dict[str, Any]:
    short = fault.name.rsplit(".", 1)[-1]
    debug = f'Traceback (most recent call last):\n  File "/opt/odoo/odoo/http.py", line 2212, in _transactioning\n{short}: {fault.message}\n'  # noqa: E501
    return {
        "name": fault.name,
        "message": fault.message,
        "arguments": [fault.message],
        "context": context or {},
        "debug": debug,
    }


# -- JSON-2 -----------------------------------------------------------------------------------------------------------


def _json2(state: OdooState) -> Handler:
    async def endpoint(request: Request) -> Response:
        if _major(state.version) < 19:
            return HTMLResponse("<h1>404: Not Found</h1>", status_code=404)
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        uid = state.user_of_key(key.strip()) if scheme.lower() == "bearer" else None
        if uid is None:
            if state.json2_error_style == "string":
                return JSONResponse("Invalid apikey", status_code=401)
            return JSONResponse(
                _fault_body(OdooFault("werkzeug.exceptions.Unauthorized", "Invalid apikey")), status_code=401
            )
        database = request.headers.get("x-odoo-database")
        if (database is not None and database not in state.databases) or (
            database is None and len(state.databases) > 1
        ):
            fault = OdooFault(
                "werkzeug.exceptions.NotFound",
                f"database {database!r} not found" if database else "no database selected",
            )
            return JSONResponse(_fault_body(fault), status_code=404)
        wait = state.take_throttle()
        if wait is not None:
            fault = OdooFault("werkzeug.exceptions.TooManyRequests", "Too many requests, retry later")
            return JSONResponse(_fault_body(fault), status_code=429, headers={"Retry-After": f"{wait:g}"})
        try:
            body = await request.json() if await request.body() else {}
        except ValueError as exc:
            fault = OdooFault("werkzeug.exceptions.BadRequest", f"could not parse the body as json: {exc}")
            return JSONResponse(_fault_body(fault), status_code=400)
        if not isinstance(body, dict):
            fault = OdooFault("werkzeug.exceptions.BadRequest", "the body must be a JSON object")
            return JSONResponse(_fault_body(fault), status_code=400)
        model, method = request.path_params["model"], request.path_params["method"]
        ids = body.pop("ids", None)
        try:
            result = await run_in_threadpool(state.execute, uid, model, method, ids, body)
        except OdooFault as fault:
            return JSONResponse(_fault_body(fault, body.get("context")), status_code=fault.status)
        return JSONResponse(result)

    return endpoint


async def _version(request: Request) -> Response:
    state: OdooState = request.app.state.odoo
    major = _major(state.version)
    return JSONResponse({"version_info": [major, 0, 0, "final", 0, ""], "version": state.version})


# -- JSON-RPC ---------------------------------------------------------------------------------------------------------


def _jsonrpc(state: OdooState) -> Handler:
    async def endpoint(request: Request) -> Response:
        wait = state.take_throttle()
        if wait is not None:
            return HTMLResponse(_TOO_MANY, status_code=429, headers={"Retry-After": f"{wait:g}"})
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse(
                {"jsonrpc": "2.0", "id": None, "error": {"code": 400, "message": "Invalid JSON data", "data": {}}},
                status_code=400,
            )
        request_id = body.get("id") if isinstance(body, dict) else None
        params = body.get("params") if isinstance(body, dict) else None
        try:
            if not isinstance(params, dict):
                raise OdooFault("builtins.TypeError", "the request has no params")
            result = await run_in_threadpool(
                _dispatch, state, params.get("service"), params.get("method"), params.get("args") or []
            )
        except OdooFault as fault:
            error = {"code": state.rpc_error_code, "message": "Odoo Server Error", "data": _fault_body(fault)}
            return JSONResponse({"jsonrpc": "2.0", "id": request_id, "error": error})
        return JSONResponse({"jsonrpc": "2.0", "id": request_id, "result": result})

    return endpoint


def _dispatch(state: OdooState, service: Any, method: Any, args: list[Any]) -> Any:
    if service == "common" and method == "version":
        major = _major(state.version)
        return {
            "server_version": state.version,
            "server_version_info": [major, 0, 0, "final", 0, ""],
            "server_serie": state.version,
            "protocol_version": 1,
        }
    if service == "common" and method in ("login", "authenticate"):
        if len(args) < 3:
            raise OdooFault("builtins.TypeError", f"{method}() missing required positional arguments")
        _database(state, args[0])
        return state.login(str(args[1]), str(args[2])) or False
    if service == "object" and method in ("execute_kw", "execute"):
        if len(args) < 5:
            raise OdooFault("builtins.TypeError", f"{method}() missing required positional arguments")
        database, uid, password, model, name = args[:5]
        _database(state, database)
        if not isinstance(uid, int) or state.user_of_key(str(password)) != uid:
            raise OdooFault("odoo.exceptions.AccessDenied", "Access Denied")
        positional = args[5] if len(args) > 5 and isinstance(args[5], list) else []
        kwargs = dict(args[6]) if len(args) > 6 and isinstance(args[6], dict) else {}
        names = POSITIONAL.get(str(name), ())
        if len(positional) > len(names):
            raise OdooFault("builtins.TypeError", f"{name}() takes at most {len(names)} positional arguments")
        kwargs.update(zip(names, positional, strict=False))
        ids = kwargs.pop("ids", None)
        return state.execute(uid, str(model), str(name), ids, kwargs)
    raise OdooFault("builtins.NameError", f"{service}.{method} is not a method of the RPC API")


def _database(state: OdooState, name: Any) -> None:
    if name not in state.databases:
        message = f'connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: FATAL:  database "{name}" does not exist'  # noqa: E501
        raise OdooFault("psycopg2.OperationalError", message)


# -- the control API's extras -----------------------------------------------------------------------------------------


def _extras(state: OdooState) -> list[Route]:
    async def inspect(request: Request) -> Response:
        return JSONResponse(state.summary())

    async def reset(request: Request) -> Response:
        state.reset()
        return Response(status_code=204)

    async def config(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            if "version" in body:
                state.version = str(body["version"])
            if body.get("json2_error_style") in ("object", "string"):
                state.json2_error_style = body["json2_error_style"]
            if body.get("rpc_error_code") in (0, 200):
                state.rpc_error_code = body["rpc_error_code"]
            if isinstance(body.get("databases"), list) and body["databases"]:
                state.databases = [str(d) for d in body["databases"]]
        return JSONResponse(
            {"version": state.version, "json2_error_style": state.json2_error_style,
             "rpc_error_code": state.rpc_error_code, "databases": state.databases}
        )  # fmt: skip

    async def faults(request: Request) -> Response:
        body = await _body(request)
        name, count = body.get("name"), body.get("count", 1)
        if not isinstance(name, str) or not isinstance(count, int) or count < 1:
            return JSONResponse({"message": 'give "name" (an exception class) and "count" (a positive integer)'}, 422)
        with state.lock:
            model = body.get("model") if isinstance(body.get("model"), str) else None
            state.faults.extend([(name, str(body.get("message", "")), model)] * count)
        return Response(status_code=204)

    async def seed(request: Request) -> Response:
        from hub_plugins.odoo.demo import seed_demo  # only needed here

        body = await _body(request)
        erp = body.get("erp_csv")
        try:
            counts = await run_in_threadpool(
                seed_demo, state, erp_csv=Path(erp) if erp else None, count=int(body.get("count", 300))
            )
        except (OSError, ValueError) as exc:
            return JSONResponse({"message": str(exc)}, 422)
        return JSONResponse(counts)

    return [
        Route("/_emulator/state", inspect),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/config", config, methods=["GET", "POST"]),
        Route("/_emulator/faults", faults, methods=["POST"]),
        Route("/_emulator/seed", seed, methods=["POST"]),
    ]


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# -- the app ----------------------------------------------------------------------------------------------------------


def app(*, demo: bool = False, erp_csv: Path | None = None, version: str = "19.0") -> Starlette:
    """A fresh emulator of Odoo ``version``; ``demo`` seeds it with the demo's customers (``erp_csv``, else
    ``var/demo/erp/customers.csv`` when it exists, else a synthetic set). ``app.state.odoo`` is its state."""
    state = OdooState(version=version)
    if demo or erp_csv is not None:
        from hub_plugins.odoo.demo import demo_csv, seed_demo

        seed_demo(state, erp_csv=erp_csv or demo_csv())
    routes = [
        Route("/json/2/{model}/{method}", _json2(state), methods=["POST"]),
        Route("/jsonrpc", _jsonrpc(state), methods=["POST"]),
        Route("/web/version", _version, methods=["GET", "POST"]),
        *control_routes(state),
        *_extras(state),
    ]
    application = Starlette(routes=routes)
    application.state.odoo = state
    return application


def settings(base_url: str) -> dict[str, Any]:
    """Settings that point a ``plugin: odoo`` connector at an emulator at ``base_url`` (JSON-2)."""
    return {"base_url": base_url, "database": DATABASE, "username": DEFAULT_LOGIN, "api_key": DEFAULT_KEY}


#: What ``hub sandbox`` serves: the demo's customers (companies with their contacts), products and orders.
EMULATOR = Emulator(
    name="odoo",
    connector_type="odoo",
    app=functools.partial(app, demo=True),
    settings=settings,
    default_port=DEFAULT_PORT,
    description="Odoo 19 JSON-2 and JSON-RPC: res.partner, sale.order(.line), product.product (demo seeded)",
)

#: The same emulator, empty, for tests that seed their own records.
BLANK = Emulator(
    name="odoo",
    connector_type="odoo",
    app=app,
    settings=settings,
    default_port=DEFAULT_PORT,
    description="Odoo 19 JSON-2 and JSON-RPC, empty",
)
