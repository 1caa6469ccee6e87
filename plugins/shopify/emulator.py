"""An in-memory emulator of the Shopify GraphQL Admin API, as hub reads it (``hub sandbox``, the tests, the bench).

``POST /admin/api/{version}/graphql.json`` is served by graphql-core over ``schema.graphql``, after the gate
Shopify applies, in this order:

1. an unknown API version: **404** ``{"errors": "Not Found"}``;
2. a missing or unknown ``X-Shopify-Access-Token``: **401** ``{"errors": "[API] Invalid API key or access
   token (unrecognized login or wrong password)"}``;
3. a body that is not ``{"query": ...}`` JSON: **400**; a query that does not parse or validate: **200** with
   ``errors``;
4. a query whose requested cost is over 1000: **200** ``MAX_COST_EXCEEDED``, not run;
5. a query dearer than the bucket holds (1000 points, refilled 50/s unless configured): **200** ``THROTTLED``
   with ``actualQueryCost: null``, not run.

Every answer that ran carries ``extensions.cost`` with the ``throttleStatus``. Bulk results are served from
``/_bulk/{n}.jsonl?token=...`` (a signed-URL stand-in; it expires after ``bulk_url_ttl`` seconds, 7 days by
default) and are streamed, never built whole per request.

The control API (``/_emulator/...``, never faulted) is the one ``hub.testing.SourceContract`` drives, plus:
``GET state``, ``POST reset``, ``GET|POST config`` (``bucket_max``, ``restore_rate``, ``bulk_url_ttl``,
``bulk_fail_next``, ``bulk_delay``, ``access_tokens``, ``webhook_retry_delays``), ``GET records/{stream}/{key}``
(the record's REST JSON), ``POST seed`` (``{"customers": 50, "orders": 200, ...}``), ``POST webhooks``
(``{"url", "secret", "topics"?}``: subscribe), ``GET webhooks`` (the delivery log) and
``POST webhooks/{id}/resend`` (send a delivery again, byte for byte).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson
from graphql import GraphQLError, OperationDefinitionNode, execute, parse, validate
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from hub.sandbox import Emulator
from hub.sources.emulator import control_routes
from hub_plugins.shopify._schema import Root, actual_cost, query_cost, schema_for
from hub_plugins.shopify._sender import Subscription
from hub_plugins.shopify._state import STREAMS, ControlError, ShopState

DEFAULT_TOKEN = "shpat_emulator"
DEFAULT_WEBHOOK_SECRET = "shpss_emulator_webhook_secret"
DEFAULT_PORT = 8770
VERSIONS = frozenset({"2024-10", "2025-01", "2025-04", "2025-07", "2025-10", "2026-01"})
SINGLE_QUERY_MAX = 1000
_INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _cost(requested: int, actual: int | None, status: dict[str, Any]) -> dict[str, Any]:
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": status}}


async def _body(request: Request) -> Any:
    raw = await request.body()
    try:
        return orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise ControlError(422, "the body is not JSON") from None


def _graphql(state: ShopState) -> Any:
    async def endpoint(request: Request) -> Response:
        version = request.path_params["version"]
        if version not in VERSIONS:
            return _json({"errors": "Not Found"}, 404)
        if request.headers.get("x-shopify-access-token") not in state.tokens:
            return _json({"errors": _INVALID_TOKEN}, 401)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return _json({"errors": {"query": "Required parameter missing or invalid"}}, 400)
        base_url = str(request.base_url).rstrip("/")
        return await run_in_threadpool(_run_query, state, version, body, base_url)

    return endpoint


def _run_query(state: ShopState, version: str, body: dict[str, Any], base_url: str) -> Response:
    schema = schema_for(version)
    try:
        document = parse(body["query"])
    except GraphQLError as exc:
        return _json({"errors": [exc.formatted]})
    errors = validate(schema, document)
    if errors:
        return _json({"errors": [e.formatted for e in errors]})
    variables = body.get("variables") or {}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    name = body.get("operationName")
    operation = next((o for o in operations if o.name and o.name.value == name), operations[0])
    requested = query_cost(schema, document, operation, variables)
    if requested > SINGLE_QUERY_MAX:
        message = (
            f"Query cost is {requested}, which exceeds the single query max cost limit ({SINGLE_QUERY_MAX}). "
            "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the cost of "
            "a query is calculated."
        )
        error = {"message": message, "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested}}
        return _json(
            {
                "errors": [error],
                "extensions": _cost(requested, None, state._status(state.available, state.restore_rate)),
            }
        )
    ran, status = state.charge(requested)
    if not ran:
        throttled = {
            "message": "Throttled",
            "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
        }
        return _json({"errors": [throttled], "extensions": _cost(requested, None, status)})
    result = execute(
        schema,
        document,
        root_value=Root(state, version, base_url),
        context_value={"bulk": False},
        variable_values=variables,
        operation_name=name,
    )
    answer: dict[str, Any] = {"data": result.data}
    if result.errors:
        answer["errors"] = [e.formatted for e in result.errors]
    actual = min(requested, actual_cost(schema, document, operation, result.data))
    answer["extensions"] = _cost(requested, actual, state.refund(requested - actual))
    return _json(answer)


def _download(state: ShopState) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            number = int(request.path_params["name"].removesuffix(".jsonl"))
        except ValueError:
            return Response("NoSuchKey", status_code=404)
        op = state.bulk_ops.get(number)
        if op is None or request.query_params.get("token") != op.token:
            return Response("<Error><Code>AccessDenied</Code></Error>", status_code=403, media_type="application/xml")
        if time.monotonic() > op.expires:
            body = "<Error><Code>ExpiredToken</Code><Message>Request has expired</Message></Error>"
            return Response(body, status_code=403, media_type="application/xml")
        return StreamingResponse(_chunks(op.lines), media_type="application/jsonl")

    return endpoint


def _chunks(lines: list[bytes], size: int = 500) -> Iterator[bytes]:
    for start in range(0, len(lines), size):
        yield b"".join(line + b"\n" for line in lines[start : start + size])


class _Control:
    """:class:`hub.sources.emulator.EmulatorControl` on the shop's state (the routes every source emulator serves)."""

    def __init__(self, state: ShopState) -> None:
        self.state = state

    def put(self, stream: str, records: Sequence[Mapping[str, Any]], *, updated_at: str | None = None) -> list[str]:
        return self._do(self.state.put, stream, [dict(r) for r in records], updated_at)

    def delete(self, stream: str, key: str, *, at: str | None = None) -> None:
        self._do(self.state.delete, stream, key, at)

    def malformed(self, stream: str, key: str) -> None:
        self._do(self.state.set_malformed, stream, key)

    def throttle(self, count: int, retry_after: float) -> None:
        self.state.force_throttle(count, retry_after)

    @staticmethod
    def _do(action: Any, *args: Any) -> Any:
        try:
            return action(*args)
        except ControlError as exc:
            if exc.status == 404:
                raise KeyError(exc.message) from None
            raise ValueError(exc.message) from None


def _control_routes(state: ShopState) -> list[Route]:
    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except ControlError as exc:
                return _json({"message": exc.message}, exc.status)

        return endpoint

    async def get_record(request: Request) -> Response:
        stream = request.path_params["stream"]
        with state.lock:
            return _json(state.rest(stream, state.record(stream, request.path_params["key"])))

    async def snapshot(request: Request) -> Response:
        return _json(state.counts())

    async def reset(request: Request) -> Response:
        with state.lock:
            for records in state.records.values():
                records.clear()
            state.malformed.clear()
            state.deletions.clear()
            state.bulk_ops.clear()
            state.forced_throttles.clear()
            state.available = state.bucket_max
        return _json({"reset": True})

    async def config(request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            with state.lock:
                for key in ("bucket_max", "restore_rate", "bulk_url_ttl", "bulk_delay"):
                    if key in body:
                        setattr(state, key, float(body[key]))
                if "bulk_fail_next" in body:
                    state.bulk_fail_next = bool(body["bulk_fail_next"])
                if "access_tokens" in body:
                    state.tokens = set(body["access_tokens"])
                if "webhook_retry_delays" in body:
                    state.webhooks.retry_delays = tuple(float(d) for d in body["webhook_retry_delays"])
        return _json(
            {
                "bucket_max": state.bucket_max,
                "restore_rate": state.restore_rate,
                "bulk_url_ttl": state.bulk_url_ttl,
                "bulk_delay": state.bulk_delay,
                "webhook_retry_delays": list(state.webhooks.retry_delays),
            }
        )

    async def seed(request: Request) -> Response:
        body = await _body(request)
        created = {}
        for stream in STREAMS:  # customers first, so orders and checkouts belong to someone
            count = int(body.get(stream, 0))
            if count:
                created[stream] = len(state.put(stream, [{} for _ in range(count)]))
        return _json({"created": created})

    async def subscribe(request: Request) -> Response:
        body = await _body(request)
        if not isinstance(body, dict) or not body.get("url"):
            raise ControlError(422, 'expected {"url": "...", "secret": "...", "topics": [...]?}')
        topics = body.get("topics")
        state.webhooks.subscribe(
            Subscription(
                url=str(body["url"]),
                secret=str(body.get("secret") or DEFAULT_WEBHOOK_SECRET),
                topics=frozenset(topics) if topics else None,
                api_version=str(body.get("api_version") or "2025-07"),
            )
        )
        return _json({"subscribed": True}, 201)

    async def deliveries(request: Request) -> Response:
        with state.webhooks._wake:
            log = [d.summary() for d in state.webhooks.deliveries.values()]
        return _json({"deliveries": log, "idle": state.webhooks.idle()})

    async def resend(request: Request) -> Response:
        if not state.webhooks.resend(request.path_params["delivery"]):
            raise ControlError(404, "no such delivery")
        return Response(status_code=202)

    routes = [
        ("/_emulator/records/{stream}/{key}", get_record, ["GET"]),
        ("/_emulator/state", snapshot, ["GET"]),
        ("/_emulator/reset", reset, ["POST"]),
        ("/_emulator/config", config, ["GET", "POST"]),
        ("/_emulator/seed", seed, ["POST"]),
        ("/_emulator/webhooks", subscribe, ["POST"]),
        ("/_emulator/webhooks", deliveries, ["GET"]),
        ("/_emulator/webhooks/{delivery}/resend", resend, ["POST"]),
    ]
    own = [Route(path, guarded(handler), methods=methods) for path, handler, methods in routes]
    return control_routes(_Control(state)) + own


def app(
    *,
    tokens: Iterable[str] = (DEFAULT_TOKEN,),
    bucket_max: float = 1000.0,
    restore_rate: float = 50.0,
    seed: dict[str, int] | None = None,
) -> Starlette:
    """A fresh emulated shop, reachable in-process as ``app.state.shopify`` (a :class:`ShopState`).

    ``bucket_max`` and ``restore_rate`` size the cost bucket (Shopify Plus: 1000 points, 50/s restore on the
    standard tier's GraphQL docs; others differ, so both are configurable). ``seed`` creates that many records
    per stream at start.
    """
    state = ShopState(tokens=tuple(tokens), bucket_max=bucket_max, restore_rate=restore_rate)
    for stream in STREAMS:
        count = (seed or {}).get(stream, 0)
        if count:
            state.put(stream, [{} for _ in range(count)])
    routes = [
        Route("/admin/api/{version}/graphql.json", _graphql(state), methods=["POST"]),
        Route("/_bulk/{name}", _download(state), methods=["GET"]),
        *_control_routes(state),
    ]
    application = Starlette(routes=routes)
    application.state.shopify = state
    return application


def settings(base_url: str) -> dict[str, Any]:
    """Connector settings that point a ``plugin: shopify`` connector at an emulator at ``base_url``."""
    return {
        "shop_url": base_url,
        "access_token": DEFAULT_TOKEN,
        "webhook_secret": DEFAULT_WEBHOOK_SECRET,
        "bulk_poll_interval": 0.05,
    }


EMULATOR = Emulator(
    name="shopify",
    connector_type="shopify",
    app=functools.partial(app),
    settings=settings,
    default_port=DEFAULT_PORT,
    description="Shopify GraphQL Admin API: customers, orders, products, checkouts, inventory, bulk, webhooks",
)
