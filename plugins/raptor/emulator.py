"""An in-memory emulator of Raptor's tracking endpoints and recommendations API (``shared/api-notes`` section 5).

- ``GET /{customerId}.rsa`` and ``GET /{customerId}.stream`` (tracking): every request is recorded with its query
  and answered ``200`` with a 1x1 GIF, as Raptor's pixel is; tracking has no credentials and never refuses.
- ``GET /v1/{customerId}/{method}/{count}/{apiKey}?{parameter}=...&json=True`` (recommendations): a JSON array of
  ``{"RecommendedId", "Priority"}``. Methods: ``GetUserRecommendations`` and ``GetUserIdHistory`` (parameter
  ``UserIdentifier``, the user's ruid) and ``GetOtherCustomersAlsoBought`` (``ProductId``). Answers come from
  ``POST /_emulator/recommendations`` where planted, else from co-purchase counts over the buys received.
  An unknown account or method is ``404``, a wrong key ``401``, a bad count ``400`` (all plain text).
- ``GET /``: ``200``, so a client can see the host answers without sending an event.

Inspection (never faulted): ``GET /_emulator/state``, ``POST /_emulator/reset``,
``POST /_emulator/recommendations`` ``{"method", "id", "products": [...]}``, ``GET|POST /_emulator/config``
(``{"accounts": {customerId: apiKey}, "live_tracking": {"event": "p1", "product": "p2", "order": "p21"}}``).
In-process, ``app.state.raptor`` is the :class:`~hub_plugins.raptor._state.RaptorState`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from hub_plugins.raptor._state import DEFAULT_API_KEY, DEFAULT_CUSTOMER_ID, RaptorState

__all__ = ["DEFAULT_API_KEY", "DEFAULT_CUSTOMER_ID", "DEFAULT_PORT", "RaptorState", "app"]

DEFAULT_PORT = 8764
#: The smallest transparent GIF: what Raptor's tracking pixel answers.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
USER_PARAMETER = "UserIdentifier"
PRODUCT_PARAMETER = "ProductId"


def _methods(state: RaptorState) -> dict[str, tuple[str, Callable[[str, str], list[Any]]]]:
    """Method name -> (its identifier parameter, answer(customer_id, identifier) as product ids or full items)."""
    return {
        "GetUserRecommendations": (USER_PARAMETER, state.for_user),
        "GetOtherCustomersAlsoBought": (PRODUCT_PARAMETER, state.also_bought),
        "GetUserIdHistory": (USER_PARAMETER, state.history),
    }


def _routes(state: RaptorState) -> list[Route]:
    methods = _methods(state)

    async def root(request: Request) -> Response:
        with state.lock:
            state.requests += 1
        return PlainTextResponse("Raptor")

    async def track(request: Request) -> Response:
        with state.lock:
            state.requests += 1
        target = request.path_params["target"]
        customer_id, dot, endpoint = target.rpartition(".")
        if not dot or endpoint not in ("rsa", "stream") or not customer_id:
            return PlainTextResponse("Not Found", status_code=404)
        state.track(customer_id, endpoint, dict(request.query_params))
        return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-cache, no-store"})

    async def recommend(request: Request) -> Response:
        with state.lock:
            state.requests += 1
            state.recommendation_requests += 1
            accounts = dict(state.accounts)
        customer_id, method = request.path_params["customer_id"], request.path_params["method"]
        if customer_id not in accounts or method not in methods:
            return PlainTextResponse("Not Found", status_code=404)
        if request.path_params["key"] != accounts[customer_id]:
            return PlainTextResponse("Unauthorized", status_code=401)
        try:
            count = int(request.path_params["count"])
        except ValueError:
            count = 0
        if not 1 <= count <= 1000:
            return PlainTextResponse("numberOfRecommendations must be 1 to 1000", status_code=400)
        if (request.query_params.get("json") or "").lower() != "true":
            return PlainTextResponse("this emulator answers JSON only: add json=True", status_code=400)
        parameter, answer = methods[method]
        identifier = request.query_params.get(parameter)
        if not identifier:
            return PlainTextResponse(f"{parameter} is required", status_code=400)
        with state.lock:
            planted = state.table.get((method, identifier))
        found = planted if planted is not None else answer(customer_id, identifier)
        items = [
            item if isinstance(item, dict) else {"RecommendedId": item, "Priority": rank}
            for rank, item in enumerate(found[:count], 1)
        ]
        return JSONResponse(items)

    return [
        Route("/", root, methods=["GET"]),
        Route("/v1/{customer_id}/{method}/{count}/{key}", recommend, methods=["GET"]),
        Route("/{target}", track, methods=["GET"]),
    ]


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _inspection_routes(state: RaptorState) -> list[Route]:
    async def snapshot(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"reset": True})

    async def plant(request: Request) -> Response:
        try:
            body = await _body(request)
            products = [str(p) for p in body["products"]]
            state.set_recommendations(str(body["method"]), str(body["id"]), products)
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"message": f"expected {{method, id, products}}: {exc}"}, status_code=400)
        return JSONResponse({"planted": len(products)})

    async def config(request: Request) -> Response:
        if request.method == "POST":
            try:
                body = await _body(request)
            except ValueError as exc:
                return JSONResponse({"message": str(exc)}, status_code=400)
            with state.lock:
                if isinstance(body.get("accounts"), Mapping):
                    state.accounts = {str(k): str(v) for k, v in body["accounts"].items()}
                if isinstance(body.get("live_tracking"), Mapping):
                    state.live_tracking = {**state.live_tracking, **body["live_tracking"]}
        with state.lock:
            return JSONResponse({"customer_ids": sorted(state.accounts), "live_tracking": state.live_tracking})

    return [
        Route("/_emulator/state", snapshot, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/recommendations", plant, methods=["POST"]),
        Route("/_emulator/config", config, methods=["GET", "POST"]),
    ]


def app(*, accounts: Mapping[str, str] | None = None, live_tracking: Mapping[str, str] | None = None) -> Starlette:
    """A fresh emulator with its own empty account(s), reachable in-process as ``app.state.raptor``.

    ``accounts`` maps customer id to recommendations API key (default ``4711`` -> ``emulator-key``).
    """
    state = RaptorState(accounts=accounts, live_tracking=live_tracking)
    application = Starlette(routes=_inspection_routes(state) + _routes(state))
    application.state.raptor = state
    return application
