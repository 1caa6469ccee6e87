"""A faithful in-memory emulator of Agillic's REST API: OAuth2 tokens, recipients, One-to-Many tables, events,
flows and static target groups.

Paths, auth, limits and status codes follow ``shared/api-notes/esp-apis.md`` section 3; where the notes say a detail
is inferred or unknown, the choice made here is listed in the plugin README. Every API request passes a gate, in
this order:

1. At most ``max_concurrent`` (20) calls in flight, counted in this ASGI app: the next one is **429** at once
   (nothing changed, safe to retry).
2. ``latency`` seconds of processing time (default none), so concurrency can be measured and exceeded.
3. Except ``POST /oauth2/token``: a valid, unexpired ``Authorization: Bearer`` token (or Basic key:secret):
   else **401**.
4. A request with a body must be ``application/json`` (**415**) and at most ``max_payload_bytes`` (**413**).

Batch calls above their entry limit are **400** and change nothing; the largest batch seen per endpoint is kept.
Inspection, not part of Agillic, lives under ``/_emulator/``: ``GET state``, ``POST reset``, ``POST expire-tokens``,
``GET|POST config``. In-process, ``app.state.agillic`` is the same :class:`AgillicState`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from hub_plugins.agillic._instance import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_EVENTS,
    DEFAULT_FLOWS,
    DEFAULT_TARGET_GROUPS,
    FieldType,
)
from hub_plugins.agillic._state import AgillicState, ApiError

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "DEFAULT_PORT", "app"]

DEFAULT_PORT = 8761
_BODY_METHODS = {"POST", "PUT", "PATCH"}
_TOKEN_PATH = "/oauth2/token"
_CONTROL = "/_emulator/"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


class _Gate:
    """Concurrency cap, latency, credentials and body checks in front of every API route."""

    def __init__(self, app: ASGIApp, state: AgillicState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_CONTROL):
            await self.app(scope, receive, send)
            return
        if not self.state.enter():
            await _drain(receive)
            message = f"More than {self.state.max_concurrent} concurrent calls; nothing was changed, retry later"
            await _error(429, "TooManyRequests", message)(scope, receive, send)
            return
        try:
            if self.state.latency:
                await asyncio.sleep(self.state.latency)
            refusal = self._refusal(scope)
            if refusal is not None:
                await _drain(receive)
                await refusal(scope, receive, send)
                return
            await self.app(scope, receive, send)
        finally:
            self.state.leave()

    def _refusal(self, scope: Scope) -> Response | None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        if scope["path"] != _TOKEN_PATH and not self._authorised(headers.get("authorization", "")):
            return _error(401, "invalid_token", "Missing, invalid or expired access token")
        if scope["method"] in _BODY_METHODS and scope["path"] != _TOKEN_PATH:
            length = int(headers.get("content-length") or 0)
            if length > self.state.max_payload_bytes:
                limit = self.state.max_payload_bytes
                return _error(413, "PayloadTooLarge", f"The payload is {length} bytes; at most {limit} are accepted")
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if (length or "transfer-encoding" in headers) and content_type != "application/json":
                return _error(415, "UnsupportedMediaType", "Send Content-Type: application/json; charset=utf-8")
        return None

    def _authorised(self, authorization: str) -> bool:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials:
            return self.state.token_valid(credentials.strip())
        if scheme.lower() == "basic":
            pair = _basic(credentials)
            return pair is not None and self.state.basic_valid(*pair)
        return False


def _basic(credentials: str) -> tuple[str, str] | None:
    try:
        key, sep, secret = base64.b64decode(credentials.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (key, secret) if sep else None


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return


class _ClientGone(Exception):
    """The client hung up before its body arrived: nothing is processed."""


async def _json(request: Request) -> Any:
    try:
        raw = await request.body()
    except ClientDisconnect:
        raise _ClientGone from None
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiError(400, "InvalidRequestBody", "The body is not valid JSON") from None


def _routes(state: AgillicState) -> list[Route]:
    async def token(request: Request) -> Response:
        try:
            raw = await request.body()
        except ClientDisconnect:
            raise _ClientGone from None
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            raise ApiError(400, "invalid_request", "Send the token request form-encoded")
        form = {key: values[0] for key, values in parse_qs(raw.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            raise ApiError(400, "unsupported_grant_type", "Only grant_type=client_credentials is supported")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        pair = _basic(request.headers.get("authorization", "").partition(" ")[2])
        if client_id is None and pair is not None:
            client_id, client_secret = pair
        return JSONResponse(state.issue_token(client_id, client_secret))

    async def get_recipient(request: Request) -> Response:
        rid, data = state.recipient(request.path_params["rid"])
        with state.lock:
            return JSONResponse({"recipientId": rid, "personData": dict(data)})

    async def put_recipient(request: Request) -> Response:
        created = state.upsert(request.path_params["rid"], await _json(request))
        rid, data = state.recipient(request.path_params["rid"])
        with state.lock:
            body = {"recipientId": rid, "personData": dict(data)}
        return JSONResponse(body, status_code=201 if created else 200)

    async def create_recipient(request: Request) -> Response:
        rid = state.create(await _json(request))
        return JSONResponse({"recipientId": rid}, status_code=201)

    async def delete_recipient(request: Request) -> Response:
        state.delete(request.path_params["rid"])
        return Response(status_code=204)

    async def batch(request: Request) -> Response:
        return JSONResponse(state.batch_upsert(await _json(request)))

    def group_change(add: bool) -> Any:
        async def handler(request: Request) -> Response:
            body = await _json(request)
            if not isinstance(body, dict):
                raise ApiError(400, "InvalidRequestBody", "The body must be an object")
            return JSONResponse(state.change_group(body.get("targetGroupName"), body.get("recipientIds"), add=add))

        return handler

    async def recipient_groups(request: Request) -> Response:
        rid, _ = state.recipient(request.path_params["rid"])
        with state.lock:
            return JSONResponse([{"name": n} for n, members in sorted(state.target_groups.items()) if rid in members])

    async def records(request: Request) -> Response:
        return JSONResponse(state.records_of(request.path_params["rid"], request.path_params["table"]))

    async def update_records(request: Request) -> Response:
        params = request.path_params
        count = state.update_records(params["rid"], params["table"], await _json(request))
        return JSONResponse({"updated": count})

    async def events(request: Request) -> Response:
        rid, _ = state.recipient(request.path_params["rid"])
        with state.lock:
            counts = [{"eventId": e, "count": n} for (r, e), n in state.event_counts.items() if r == rid]
        return JSONResponse(counts)

    async def achieve(request: Request) -> Response:
        await _json(request)
        count = state.achieve(request.path_params["rid"], request.path_params["event"])
        return JSONResponse({"eventId": request.path_params["event"], "count": count})

    async def achieve_with_context(request: Request) -> Response:
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("contextData"), dict):
            raise ApiError(400, "InvalidRequestBody", "Give contextData (an object) and schemaName")
        context = {"schemaName": body.get("schemaName"), "contextData": body["contextData"]}
        count = state.achieve(request.path_params["rid"], request.path_params["event"], context)
        return JSONResponse({"eventId": request.path_params["event"], "count": count})

    async def execute(request: Request) -> Response:
        await _json(request)
        state.execute(request.path_params["flow"], None, None)
        return JSONResponse({"flowId": request.path_params["flow"]})

    async def execute_with_context(request: Request) -> Response:
        body = await _json(request)
        recipients = body.get("recipients") if isinstance(body, dict) else None
        if not isinstance(recipients, list) or not all(isinstance(r, dict) for r in recipients):
            raise ApiError(400, "InvalidRequestBody", "Give schemaName and recipients: [{recipientId, contextData}]")
        state.check_batch("flows:executeWithContext", len(recipients))
        count = state.execute(request.path_params["flow"], body.get("schemaName"), recipients)
        return JSONResponse({"flowId": request.path_params["flow"], "recipients": count})

    async def discovery_tables(request: Request) -> Response:
        return JSONResponse(state.discovery())

    async def discovery_table(request: Request) -> Response:
        for table in state.discovery():
            if table["tableId"] == request.path_params["table"]:
                return JSONResponse(table)
        raise ApiError(404, "TableNotFound", f"No One-to-Many table {request.path_params['table']}")

    async def discovery_groups(request: Request) -> Response:
        with state.lock:
            return JSONResponse([{"name": name, "type": "STATIC"} for name in sorted(state.target_groups)])

    otm = "/recipients/{rid}/oneToManyTables/{table}"
    event = "/recipients/{rid}/events/{event}"
    return [
        Route(_TOKEN_PATH, token, methods=["POST"]),
        Route("/recipients/:batch", batch, methods=["POST"]),
        Route("/recipients/:addToStaticTargetGroup", group_change(True), methods=["POST"]),
        Route("/recipients/:removeFromStaticTargetGroup", group_change(False), methods=["POST"]),
        Route("/recipients", create_recipient, methods=["POST"]),
        Route("/recipients/{rid}", get_recipient, methods=["GET"]),
        Route("/recipients/{rid}", put_recipient, methods=["PUT"]),
        Route("/recipients/{rid}", delete_recipient, methods=["DELETE"]),
        Route("/recipients/{rid}/targetGroups", recipient_groups, methods=["GET"]),
        Route(otm, records, methods=["GET"]),
        Route(otm + "/:batchUpdateRecords", update_records, methods=["POST"]),
        Route("/recipients/{rid}/events", events, methods=["GET"]),
        Route(event + "/:achieveEvent", achieve, methods=["POST"]),
        Route(event + "/:achieveWithContext", achieve_with_context, methods=["POST"]),
        Route("/flows/{flow}/:execute", execute, methods=["POST"]),
        Route("/flows/{flow}/:executeWithContext", execute_with_context, methods=["POST"]),
        Route("/discovery/onetomany", discovery_tables, methods=["GET"]),
        Route("/discovery/onetomany/{table}", discovery_table, methods=["GET"]),
        Route("/discovery/targetgroups", discovery_groups, methods=["GET"]),
    ]


def _inspection_routes(state: AgillicState) -> list[Route]:
    async def snapshot(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"reset": True})

    async def expire_tokens(request: Request) -> Response:
        return JSONResponse({"expired": state.expire_tokens()})

    async def config(request: Request) -> Response:
        if request.method == "POST":
            body = await _json(request)
            if not isinstance(body, dict):
                raise ApiError(400, "InvalidRequestBody", "The body must be an object")
            with state.lock:
                for name in ("token_lifetime", "max_concurrent", "latency", "strict_fields"):
                    if name in body:
                        setattr(state, name, body[name])
            state.define(
                events=body.get("events", ()), flows=body.get("flows", ()), groups=body.get("target_groups", ())
            )
        with state.lock:
            return JSONResponse(
                {
                    "token_lifetime": state.token_lifetime,
                    "max_concurrent": state.max_concurrent,
                    "latency": state.latency,
                    "strict_fields": state.strict_fields,
                    "recipient_id_field": state.recipient_id_field,
                    "date_format": state.date_format,
                    "timestamp_format": state.timestamp_format,
                    "events": sorted(state.events),
                    "flows": sorted(state.flows),
                    "target_groups": sorted(state.target_groups),
                }
            )

    return [
        Route("/_emulator/state", snapshot, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/expire-tokens", expire_tokens, methods=["POST"]),
        Route("/_emulator/config", config, methods=["GET", "POST"]),
    ]


async def _client_gone(request: Request, exc: Exception) -> Response:
    return Response(status_code=499)  # nobody reads it; a real server just drops the request


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status)


def app(
    *,
    credentials: Mapping[str, str] | None = None,
    token_lifetime: float = 7200.0,
    recipient_id_field: str = "EMAIL",
    person_data: Mapping[str, FieldType] | None = None,
    strict_fields: bool = False,
    date_format: str = "dd.MM.yyyy",
    timestamp_format: str = "dd.MM.yyyy HH:mm:ss",
    tables: Mapping[str, Mapping[str, FieldType]] | None = None,
    events: Iterable[str] = DEFAULT_EVENTS,
    flows: Iterable[str] = DEFAULT_FLOWS,
    target_groups: Iterable[str] = DEFAULT_TARGET_GROUPS,
    max_concurrent: int = 20,
    max_batch: int = 1000,
    max_payload_bytes: int = 20 * 1024 * 1024,
    latency: float = 0.0,
) -> Starlette:
    """A fresh emulator with its own empty instance, reachable in-process as ``app.state.agillic``.

    ``credentials`` maps Developer Keys to secrets (default ``emulator-client``/``emulator-secret``);
    ``token_lifetime`` is seconds (Agillic: 7200); ``person_data`` and ``tables`` are the instance's fields and
    types (unknown Person Data fields are accepted unless ``strict_fields``); ``events``, ``flows`` and
    ``target_groups`` are what the instance defines (anything else is 404).
    """
    state = AgillicState(
        credentials=credentials,
        token_lifetime=token_lifetime,
        recipient_id_field=recipient_id_field,
        person_data=person_data,
        strict_fields=strict_fields,
        date_format=date_format,
        timestamp_format=timestamp_format,
        tables=tables,
        events=events,
        flows=flows,
        target_groups=target_groups,
        max_concurrent=max_concurrent,
        max_batch=max_batch,
        max_payload_bytes=max_payload_bytes,
        latency=latency,
    )
    application = Starlette(
        routes=_routes(state) + _inspection_routes(state),
        middleware=[Middleware(_Gate, state=state)],
        exception_handlers={ApiError: _api_error, _ClientGone: _client_gone},
    )
    application.state.agillic = state
    return application
