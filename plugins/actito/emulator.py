"""A faithful in-memory emulator of Actito's Integration Framework APIs: tokens, profiles, custom tables, bulk
imports and transactional mail, with the licence's limits enforced.

Paths, headers and status codes follow ``shared/api-notes/esp-apis.md`` section 4; what the notes leave open
(error bodies, import polling routes, CSV column names) is listed in the plugin README. Both URL schemes are
accepted: ``/v4/entity/...`` and the API-name-prefixed ``/profiles/v4/entity/...`` (the prefix is dropped).
Every request outside ``/_emulator/`` passes a gate, in this order:

1. More than ``max_concurrent`` requests in flight (default 5): **429** ``TOO_MANY_CONCURRENT_CALLS``.
2. More than ``calls_per_minute`` calls in the window (default 100 a minute): the call is **delayed**, not refused.
3. ``Accept`` must include ``application/json``: else **406**.
4. Outside ``GET /auth/token``: ``Authorization: Bearer <token>`` with a live token (15 minutes): else **401**.

Imports count per table per day (``imports_per_day``, default 12, days in Europe/Brussels); one more is **429**
``IMPORT_QUOTA_EXCEEDED``. An INTERACTIONS table record created (one by one or by import) emits the table's
scenario events, kept in ``state.events``. Inspection, not part of Actito: ``GET /_emulator/state``,
``POST /_emulator/reset``, ``GET|POST /_emulator/config``, ``POST /_emulator/expire-tokens``. In-process,
``app.state.actito`` is the :class:`~hub_plugins.actito._state.ActitoState`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from email import message_from_bytes
from email.policy import HTTP
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from hub_plugins.actito._model import ApiError, Attribute, CustomTable
from hub_plugins.actito._state import DEFAULT_API_KEY, DEFAULT_ENTITY, DEFAULT_PROFILE_TABLE, ActitoState

__all__ = ["DEFAULT_API_KEY", "DEFAULT_ENTITY", "DEFAULT_PORT", "DEFAULT_PROFILE_TABLE", "app"]

DEFAULT_PORT = 8762
_VERSIONS = ("v4", "v5")
_CONFIG = ("calls_per_minute", "rate_window", "max_concurrent", "imports_per_day", "token_ttl", "latency")


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"status": status, "code": code, "message": message}, status_code=status, headers=headers)


def _canonical(path: str) -> str:
    """``/profiles/v4/entity/x`` -> ``/v4/entity/x``: the newer scheme's API-name prefix is dropped."""
    parts = path.split("/", 3)
    if len(parts) >= 3 and parts[1] not in _VERSIONS and parts[2] in _VERSIONS:
        return "/" + "/".join(parts[2:])
    return path


class _Gate:
    """Concurrency cap, throttle, ``Accept`` and bearer-token checks in front of every API route."""

    def __init__(self, app: ASGIApp, state: ActitoState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_emulator/"):
            await self.app(scope, receive, send)
            return
        scope = {**scope, "path": _canonical(scope["path"])}
        state = self.state
        admitted = state.enter()
        try:
            if not admitted:
                message = f"more than {state.max_concurrent} concurrent calls for this licence"
                refusal = _error(429, "TOO_MANY_CONCURRENT_CALLS", message, {"Retry-After": "1"})
                await refusal(scope, receive, send)
                return
            delay = state.throttle_delay()
            if delay > 0:
                await asyncio.sleep(delay)
            if state.latency:
                await asyncio.sleep(state.latency)
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            await self.app(scope, receive, send)
        finally:
            state.leave()

    def _refusal(self, scope: Scope) -> Response | None:
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        if "application/json" not in headers.get("accept", ""):
            return _error(406, "NOT_ACCEPTABLE", "send 'Accept: application/json'")
        if scope["path"] == "/auth/token":
            return None
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self.state.token_valid(token.strip()):
            return _error(401, "UNAUTHORIZED", "missing, invalid or expired access token")
        return None


class _ClientGone(Exception):
    """The client hung up before its body arrived: nothing is processed."""


async def _body(request: Request) -> bytes:
    try:
        return await request.body()
    except ClientDisconnect:
        raise _ClientGone from None


async def _json(request: Request) -> dict[str, Any]:
    raw = await _body(request)
    if not raw.strip():
        raise ApiError(400, "INVALID_BODY", "a JSON body is required")
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "INVALID_BODY", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "INVALID_BODY", "the body must be a JSON object")
    return body


async def _multipart(request: Request) -> dict[str, bytes]:
    """The parts of a ``multipart/form-data`` body by name (the standard library parses MIME; no extra package)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(400, "INVALID_BODY", "an import is multipart/form-data with inputFile and parameters")
    raw = await _body(request)
    message = message_from_bytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw, policy=HTTP)
    parts: dict[str, bytes] = {}
    for part in message.iter_parts() if message.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = payload
    return parts


def _named_values(items: Any, what: str, value_key: str = "value") -> dict[str, Any]:
    """v4's ``[{"name": ..., "value": ...}]`` as a dict."""
    if items is None:
        return {}
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        raise ApiError(400, "INVALID_BODY", f"{what} must be a list of {{name, {value_key}}} objects")
    return {item["name"]: item.get(value_key) for item in items}


def _v4_segmentations(items: Any) -> list[tuple[str, str, bool]]:
    if items is None:
        return []
    found = []
    for item in items if isinstance(items, list) else [None]:
        segmentation = item.get("segmentation") if isinstance(item, dict) else None
        if not isinstance(segmentation, dict) or not isinstance(segmentation.get("name"), str):
            raise ApiError(400, "INVALID_BODY", "segmentations must be [{belongs, segmentation: {name, category}}]")
        found.append((segmentation["name"], segmentation.get("category"), item.get("belongs", True) is not False))
    return found


def _matrix(spec: str) -> tuple[str, str | None]:
    """``Tier;category=A`` -> ("Tier", "A"): the segmentation routes carry the category as a matrix parameter."""
    name, _, rest = spec.partition(";")
    params = dict(part.partition("=")[::2] for part in rest.split(";") if part)
    return name, params.get("category") or None


def _routes(state: ActitoState) -> list[Route]:
    async def token(request: Request) -> Response:
        return JSONResponse(state.issue_token(request.headers.get("authorization")))

    async def entities(request: Request) -> Response:
        return JSONResponse({"entities": [{"id": 1, "name": state.entity, "comment": None}]})

    async def profile_tables(request: Request) -> Response:
        state.check_entity(request.path_params["entity"])
        return JSONResponse({"profileTables": [{"id": 1, "name": state.profile_table}]})

    async def custom_tables(request: Request) -> Response:
        state.check_entity(request.path_params["entity"])
        return JSONResponse({"customTables": [table.structure() for table in state.tables.values()]})

    def profile_table(request: Request) -> None:
        state.check_profile_table(request.path_params["entity"], request.path_params["table"])

    async def v5_upsert(request: Request) -> Response:
        profile_table(request)
        body = await _json(request)
        values, subscriptions = body.get("attributes") or {}, body.get("subscriptions") or {}
        if not isinstance(values, dict) or not isinstance(subscriptions, dict) or "key" not in body:
            raise ApiError(400, "INVALID_BODY", "give key, attributes and subscriptions as objects")
        profile, created = state.upsert_profile(values, subscriptions=subscriptions, key=body["key"])
        return JSONResponse({"profileId": profile["profileId"]}, status_code=201 if created else 200)

    async def v4_upsert(request: Request) -> Response:
        profile_table(request)
        body = await _json(request)
        allow_update = request.query_params.get("allowUpdate", "false").lower() == "true"
        profile, created = state.upsert_profile(
            _named_values(body.get("attributes"), "attributes"),
            subscriptions=_named_values(body.get("subscriptions"), "subscriptions", "subscribe"),
            segmentations=_v4_segmentations(body.get("segmentations")),
            mode="CREATE_UPDATE" if allow_update else "CREATE_ONLY",
            collection=body.get("dataCollectionInformation"),
        )
        return JSONResponse({"profileId": profile["profileId"]}, status_code=201 if created else 200)

    async def get_profile(request: Request) -> Response:
        profile_table(request)
        return JSONResponse(public_profile(state.profile(request.path_params["ref"])))

    async def delete_profile(request: Request) -> Response:
        profile_table(request)
        state.delete_profile(request.path_params["ref"])
        return Response(status_code=204)

    async def subscriptions(request: Request) -> Response:
        profile_table(request)
        return JSONResponse({"subscriptions": dict(state.profile(request.path_params["ref"])["subscriptions"])})

    async def subscription(request: Request) -> Response:
        profile_table(request)
        params = request.path_params
        state.set_subscription(params["ref"], params["name"], request.method == "POST")
        return Response(status_code=204)

    async def segmentations(request: Request) -> Response:
        profile_table(request)
        held = state.profile(request.path_params["ref"])["segmentations"]
        return JSONResponse({"segmentation": {name: list(categories) for name, categories in held.items()}})

    async def segmentation(request: Request) -> Response:
        profile_table(request)
        name, category = _matrix(request.path_params["spec"])
        state.set_segmentation(request.path_params["ref"], name, category, request.method == "PUT")
        return Response(status_code=204)

    async def record(request: Request) -> Response:
        table = state.table(request.path_params["entity"], request.path_params["table"])
        body = await _json(request)
        stored, created = state.upsert_record(table, _named_values(body.get("properties"), "properties"))
        key = str(stored[table.primary_key])
        return JSONResponse({"businessKey": key}, status_code=201 if created else 200)

    async def get_record(request: Request) -> Response:
        table = state.table(request.path_params["entity"], request.path_params["table"])
        with state.lock:
            found = state.records[table.name].get(request.path_params["key"])
        if found is None:
            raise ApiError(404, "RECORD_NOT_FOUND", f"no {table.name} record {request.path_params['key']}")
        return JSONResponse({"properties": [{"name": k, "value": v} for k, v in found.items()]})

    def start_import(custom: bool) -> Any:
        async def handler(request: Request) -> Response:
            entity, name = request.path_params["entity"], request.path_params["table"]
            if custom:
                state.table(entity, name)
            else:
                state.check_profile_table(entity, name)
            parts = await _multipart(request)
            if "inputFile" not in parts or "parameters" not in parts:
                raise ApiError(400, "INVALID_BODY", "an import needs the parts inputFile and parameters")
            try:
                parameters = json.loads(parts["parameters"])
            except ValueError:
                raise ApiError(400, "INVALID_PARAMETERS", "parameters is not valid JSON") from None
            if not isinstance(parameters, dict):
                raise ApiError(400, "INVALID_PARAMETERS", "parameters must be a JSON object")
            job = state.start_import(name, custom, parts["inputFile"], parameters)
            return JSONResponse({"id": job.id}, status_code=201)

        return handler

    async def import_status(request: Request) -> Response:
        job = state.import_job(request.path_params["entity"], request.path_params["import_id"])
        return JSONResponse(job.public(time.monotonic()))

    async def import_errors(request: Request) -> Response:
        job = state.import_job(request.path_params["entity"], request.path_params["import_id"])
        if job.status(time.monotonic()) != "FINISHED":
            raise ApiError(409, "IMPORT_RUNNING", f"import {job.id} has not finished yet")
        return JSONResponse({"id": job.id, "errors": list(job.errors)})

    async def transactional(request: Request) -> Response:
        state.check_entity(request.path_params["entity"])
        body = await _json(request)
        profile = body.get("profile")
        if not isinstance(profile, dict):
            raise ApiError(400, "INVALID_BODY", "profile is required")
        parameters = body.get("parameters") or []
        if not isinstance(parameters, list) or not all(
            isinstance(p, dict)
            and isinstance(p.get("key"), str)
            and isinstance(p.get("values"), list)
            and all(isinstance(v, str) for v in p["values"])
            for p in parameters
        ):
            raise ApiError(400, "INVALID_BODY", "parameters must be [{key, values: [text, ...]}]")
        values = _named_values(profile.get("attributes"), "profile.attributes")
        profile_id = state.send_mail(
            request.path_params["campaign"], values, {p["key"]: p["values"] for p in parameters}
        )
        return JSONResponse({"profileId": profile_id})

    v4, v5 = "/v4/entity/{entity}", "/v5/entities"
    profile = v4 + "/table/{table}/profile/{ref}"
    return [
        Route("/auth/token", token, methods=["GET"]),
        Route(v5, entities, methods=["GET"]),
        Route(v5 + "/{entity}/profile-tables", profile_tables, methods=["GET"]),
        Route(v5 + "/{entity}/custom-tables", custom_tables, methods=["GET"]),
        Route(v5 + "/{entity}/profile-tables/{table}/profiles", v5_upsert, methods=["PUT"]),
        Route(v4 + "/table/{table}/profile", v4_upsert, methods=["POST"]),
        Route(v4 + "/table/{table}/import", start_import(False), methods=["POST"]),
        Route(profile, get_profile, methods=["GET"]),
        Route(profile, delete_profile, methods=["DELETE"]),
        Route(profile + "/subscription", subscriptions, methods=["GET"]),
        Route(profile + "/subscription/{name}", subscription, methods=["POST", "DELETE"]),
        Route(profile + "/segmentation", segmentations, methods=["GET"]),
        Route(profile + "/segmentation/{spec}", segmentation, methods=["PUT", "DELETE"]),
        Route(v4 + "/customTable/{table}/record", record, methods=["POST"]),
        Route(v4 + "/customTable/{table}/record/{key}", get_record, methods=["GET"]),
        Route(v4 + "/customTable/{table}/import", start_import(True), methods=["POST"]),
        Route(v4 + "/import/{import_id:int}", import_status, methods=["GET"]),
        Route(v4 + "/import/{import_id:int}/errors", import_errors, methods=["GET"]),
        Route(v4 + "/transactionalmail/{campaign}/contact", transactional, methods=["POST"]),
    ]


def public_profile(profile: Mapping[str, Any]) -> dict[str, Any]:
    """A profile as v4 ``GET .../profile/{ref}`` returns it: name/value arrays plus the technical attributes."""
    return {
        "profileId": profile["profileId"],
        "attributes": [{"name": name, "value": value} for name, value in profile["attributes"].items()],
        "subscriptions": [{"name": name, "subscribe": value} for name, value in profile["subscriptions"].items()],
        "segmentations": [
            {"belongs": True, "segmentation": {"name": name, "category": category}}
            for name, categories in profile["segmentations"].items()
            for category in categories
        ],
        "creationMoment": profile["creationMoment"],
        "updateMoment": profile.get("updateMoment"),
    }


def _inspection_routes(state: ActitoState) -> list[Route]:
    async def snapshot(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"reset": True})

    async def expire(request: Request) -> Response:
        state.expire_tokens()
        return JSONResponse({"expired": True})

    async def config(request: Request) -> Response:
        if request.method == "POST":
            body = await _json(request)
            with state.lock:
                for name in _CONFIG:
                    if name in body:
                        setattr(state, name, body[name])
                if "campaigns" in body:
                    state.campaigns = body["campaigns"]
        return JSONResponse({name: getattr(state, name) for name in (*_CONFIG, "campaigns")})

    return [
        Route("/_emulator/state", snapshot, methods=["GET"]),
        Route("/_emulator/reset", reset, methods=["POST"]),
        Route("/_emulator/expire-tokens", expire, methods=["POST"]),
        Route("/_emulator/config", config, methods=["GET", "POST"]),
    ]


async def _client_gone(request: Request, exc: Exception) -> Response:
    return Response(status_code=499)  # nobody reads it; a real server just drops the request


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status)


def app(
    *,
    api_keys: tuple[str, ...] = (DEFAULT_API_KEY,),
    entity: str = DEFAULT_ENTITY,
    profile_table: str = DEFAULT_PROFILE_TABLE,
    profile_attributes: tuple[Attribute, ...] | None = None,
    tables: dict[str, CustomTable] | None = None,
    campaigns: dict[str, bool] | None = None,
    **limits: Any,
) -> Starlette:
    """A fresh emulator with its own empty licence, reachable in-process as ``app.state.actito``.

    ``limits``: any of :class:`ActitoState`'s options (``calls_per_minute=None`` turns the throttle off,
    ``max_concurrent``, ``imports_per_day``, ``token_ttl``, ``import_seconds``, ``latency``, ``clock``...).
    """
    options: dict[str, Any] = dict(limits)
    if profile_attributes is not None:
        options["profile_attributes"] = profile_attributes
    state = ActitoState(
        api_keys=api_keys, entity=entity, profile_table=profile_table, tables=tables, campaigns=campaigns, **options
    )
    application = Starlette(
        routes=_routes(state) + _inspection_routes(state),
        middleware=[Middleware(_Gate, state=state)],
        exception_handlers={ApiError: _api_error, _ClientGone: _client_gone},
    )
    application.state.actito = state
    return application
