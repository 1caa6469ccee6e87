"""A faithful in-memory emulator of the Voyado Engage REST API (contacts, receipts, v2 orders, custom triggers).

Paths, headers, status codes and error codes follow ``shared/api-notes/esp-apis.md`` section 2; where the notes
say a detail is inferred or unknown, the choice made here is listed in the plugin README. Every ``/api/`` request
passes a gate, in this order:

1. ``apikey`` (or ``x-api-key``) must be a known key: else **401**.
2. At most ``rate_limit`` requests per second per key: else **429** with ``Retry-After: 1``.
3. ``User-Agent`` must be present: else **400** ``MissingUserAgent``.
4. A request with a body must say ``Content-Type: application/json``: else **500** "An error has occurred."

Inspection, not part of Engage, lives under ``/_emulator/``: ``GET state``, ``POST reset``, ``GET|POST config``
(``{"rate_limit": 50}``). In-process, ``app.state.voyado`` is the same :class:`VoyadoState`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from hub_plugins.voyado._state import DEFAULT_ATTRIBUTES, ApiError, VoyadoState, public_contact
from hub_plugins.voyado._validation import resolve_contact, validate_order, validate_receipt

DEFAULT_API_KEY = "emulator-key"
DEFAULT_PORT = 8760
_BODY_METHODS = {"POST", "PUT", "PATCH"}

Handler = Callable[[Request], Awaitable[Response]]


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"errorCode": code, "message": message}, status_code=status, headers=headers)


class _Gate:
    """API key, rate limit, User-Agent and Content-Type checks in front of every ``/api/`` route."""

    def __init__(self, app: ASGIApp, state: VoyadoState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> Response | None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        key = headers.get("apikey") or headers.get("x-api-key")
        if key not in self.state.api_keys:
            return _error(401, "Unauthorized", "Missing or invalid API key (header 'apikey')")
        if not self.state.admit(key):
            return _error(429, "TooManyRequests", "Rate limit exceeded for this API key", {"Retry-After": "1"})
        if not headers.get("user-agent"):
            return _error(400, "MissingUserAgent", "A User-Agent header is required, e.g. 'AcmePOS/1.5'")
        has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if scope["method"] in _BODY_METHODS and has_body and content_type != "application/json":
            return _error(500, "InternalServerError", "An error has occurred.")
        return None


class _ClientGone(Exception):
    """The client hung up before its body arrived (e.g. its process was killed): nothing is processed."""


async def _json(request: Request, *, default: Any = None) -> Any:
    try:
        raw = await request.body()
    except ClientDisconnect:
        raise _ClientGone from None
    if not raw.strip():
        if default is not None:
            return default
        raise ApiError(400, "InvalidRequestBody", "A JSON body is required")
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "InvalidRequestBody", "The body is not valid JSON") from None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "InvalidRequestBody", "The body must be a JSON object")
    return body


def _routes(state: VoyadoState) -> list[Route]:
    async def find_id(request: Request) -> Response:
        params = dict(request.query_params)
        contact_type = params.pop("contactType", None)
        return JSONResponse(state.find_one(params, contact_type))

    async def count(request: Request) -> Response:
        contact_type = request.path_params.get("contact_type")
        kind = state.contact_type_named(contact_type) if contact_type else None
        with state.lock:
            return JSONResponse(sum(1 for c in state.contacts.values() if kind in (None, c["contactType"])))

    async def create(request: Request) -> Response:
        body = _object(await _json(request))
        options = request.headers if request.url.path.startswith("/api/v2/") else request.query_params
        meta = {
            "source": options.get("source"),
            "storeExternalId": options.get("storeExternalId"),
            "approved": (options.get("createAsUnapproved") or "false").lower() != "true",
        }
        contact, created = state.create_contact(body, meta)
        return JSONResponse(public_contact(contact), status_code=201 if created else 200)

    async def get_contact(request: Request) -> Response:
        return JSONResponse(public_contact(state.contact(request.path_params["contact_id"])))

    async def update(request: Request) -> Response:
        body = _object(await _json(request))
        return JSONResponse(public_contact(state.update_contact(request.path_params["contact_id"], body)))

    async def delete(request: Request) -> Response:
        state.delete_contact(request.path_params["contact_id"])
        return Response(status_code=204)

    async def change_type(request: Request) -> Response:
        contact_id, target = request.path_params["contact_id"], request.query_params.get("contactTypeId")
        contact = state.change_contact_type(contact_id, target)
        return JSONResponse(public_contact(contact))

    async def preference(request: Request) -> Response:
        body = _object(await _json(request))
        contact_id, name = request.path_params["contact_id"], request.path_params["name"]
        contact = state.set_preference(contact_id, name, body.get("value"))
        return JSONResponse(public_contact(contact))

    async def receipt(request: Request) -> Response:
        body = validate_receipt(await _json(request))
        contact_id = resolve_contact(state, body["contact"])
        stored, _ = state.add_receipt(body, contact_id)
        return JSONResponse({"id": stored["id"]})

    async def order(request: Request) -> Response:
        body = validate_order(await _json(request))
        contact_id = resolve_contact(state, body["contact"])
        state.add_order(body, contact_id)
        return JSONResponse({}, status_code=202)

    def trigger(resolve: Callable[[dict[str, Any]], str]) -> Handler:
        async def handler(request: Request) -> Response:
            data = _object(await _json(request, default={}))
            contact_id = resolve(request.path_params)
            state.add_trigger(request.path_params["trigger_id"], contact_id, data)
            return JSONResponse({})

        return handler

    def key_of_type(params: dict[str, Any]) -> str:
        contact_type = state.contact_type_named(params["contact_type"]) or "Member"
        key = state.contact_types[contact_type]
        lookup = {"mobilePhone": "mobilePhone", "email": "email"}.get(key, key)
        return state.find_one({lookup: params["key"]}, contact_type)

    triggers = "/api/v2/automation/customTriggers/{trigger_id}"
    by_type_and_key = trigger(key_of_type)
    by_id = trigger(lambda p: state.contact(p["contact_id"])["id"])
    by_external_id = trigger(lambda p: state.find_one({"externalId": p["key"]}))
    routes = [
        Route(triggers + "/triggerByContactId/{contact_id}", by_id, methods=["POST"]),
        Route(triggers + "/triggerByExternalContactId/{key}", by_external_id, methods=["POST"]),
        Route(triggers + "/triggerByContactTypeAndKey/{contact_type}/{key}", by_type_and_key, methods=["POST"]),
        Route("/api/v2/orders", order, methods=["POST"]),
        Route("/api/v2/contacts/{contact_id}/preferences/{name}", preference, methods=["POST"]),
        Route("/api/v2/contacts/{contact_id}", update, methods=["POST"]),
        Route("/api/v3/contacts/{contact_id}", update, methods=["PATCH"]),
    ]
    for version in ("v2", "v3"):
        base = f"/api/{version}"
        routes += [
            Route(f"{base}/contacts/id", find_id, methods=["GET"]),
            Route(f"{base}/contacts/count", count, methods=["GET"]),
            Route(f"{base}/contacts/{{contact_type}}/count", count, methods=["GET"]),
            Route(f"{base}/contacts", create, methods=["POST"]),
            Route(f"{base}/contacts/{{contact_id}}", get_contact, methods=["GET"]),
            Route(f"{base}/contacts/{{contact_id}}", delete, methods=["DELETE"]),
            Route(f"{base}/contacts/{{contact_id}}/updateContactType", change_type, methods=["POST"]),
            Route(f"{base}/receipts", receipt, methods=["POST"]),
        ]
    return routes


def _inspection_routes(state: VoyadoState) -> list[Route]:
    async def snapshot(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"reset": True})

    async def config(request: Request) -> Response:
        if request.method == "POST":
            body = _object(await _json(request))
            with state.lock:
                if "rate_limit" in body:
                    state.rate_limit = body["rate_limit"]
                if "api_keys" in body:
                    state.api_keys = set(body["api_keys"])
        return JSONResponse({"rate_limit": state.rate_limit, "contact_types": state.contact_types})

    return [
        Route("/_emulator/state", snapshot, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/config", config, methods=["GET", "POST"]),
    ]


async def _client_gone(request: Request, exc: Exception) -> Response:
    return Response(status_code=499)  # nobody reads it; a real server just drops the request


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status)


def app(
    *,
    api_keys: Iterable[str] = (DEFAULT_API_KEY,),
    rate_limit: float | None = 200,
    contact_types: dict[str, str] | None = None,
    attributes: Iterable[str] = DEFAULT_ATTRIBUTES,
) -> Starlette:
    """A fresh emulator with its own empty tenant, reachable in-process as ``app.state.voyado``.

    ``rate_limit`` is requests per second per API key (Engage answers 429 above 200); None turns it off.
    ``contact_types`` maps each contact type to its key attribute (default: Member and Contact, both by email).
    """
    state = VoyadoState(api_keys=api_keys, rate_limit=rate_limit, contact_types=contact_types, attributes=attributes)
    application = Starlette(
        routes=_routes(state) + _inspection_routes(state),
        middleware=[Middleware(_Gate, state=state)],
        exception_handlers={ApiError: _api_error, _ClientGone: _client_gone},
    )
    application.state.voyado = state
    return application
