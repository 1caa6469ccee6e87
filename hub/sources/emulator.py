"""The control API every source emulator serves, so tests (and a curious user of ``hub sandbox``) can change its data.

An emulator implements :class:`EmulatorControl` on its in-memory state and mounts :func:`control_routes` in its
Starlette app; the routes are then the same in every emulator, under ``/_emulator/`` (which the fault injector
never touches). ``hub.testing.SourceContract`` drives them between and during a source's reads:

``POST /_emulator/records/{stream}`` ``{"records": [{...}], "updated_at": "<ISO>"}`` -> ``200 {"keys": [...]}``
    Create records, or change those whose ``_key`` names one (given fields replace stored ones; none is a touch).
``DELETE /_emulator/records/{stream}/{key}?at=<ISO>`` -> ``204``
    Delete a record; an API that reports deletions reports this one at ``at``.
``POST /_emulator/malformed/{stream}/{key}`` -> ``204``
    Serve the record malformed from now on, the way the real API could plausibly send bad data.
``POST /_emulator/throttle`` ``{"count": 1, "retry_after": 1}`` -> ``204``
    Give the next ``count`` API requests the API's own throttle answer, asking to wait ``retry_after`` seconds.

Errors are ``{"message": ...}``: 404 when the control raises ``KeyError`` (unknown stream or key), 422 for a body
of the wrong shape or when it raises ``ValueError``. Keys in paths are URL-encoded by clients (a Shopify key
holds slashes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class EmulatorControl(Protocol):
    """What a source emulator lets a test do to its data. Raise ``KeyError`` for an unknown stream or key."""

    def put(self, stream: str, records: Sequence[Mapping[str, Any]], *, updated_at: str | None = None) -> list[str]:
        """Create records, or change those whose ``_key`` is given, all with change time ``updated_at`` (else
        now); their keys, in order, as the source yields them."""
        ...

    def delete(self, stream: str, key: str, *, at: str | None = None) -> None:
        """Delete a record; where the API reports deletions, it reports this one at ``at`` (else now)."""
        ...

    def malformed(self, stream: str, key: str) -> None:
        """Serve the record malformed from now on (its key still in it), in pages and bulk results alike."""
        ...

    def throttle(self, count: int, retry_after: float) -> None:
        """Answer the next ``count`` API requests with the API's own throttle answer, asking for ``retry_after`` s."""
        ...


def control_routes(control: EmulatorControl) -> list[Route]:
    """The ``/_emulator/`` control routes over ``control``; add them to the emulator's Starlette routes."""

    async def put(request: Request) -> Response:
        body = await _body(request)
        records, updated_at = body.get("records"), body.get("updated_at")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            return _error(422, 'give "records": a list of JSON objects')
        if updated_at is not None and not isinstance(updated_at, str):
            return _error(422, '"updated_at" must be an ISO 8601 text')
        keys = control.put(request.path_params["stream"], records, updated_at=updated_at)
        return JSONResponse({"keys": keys})

    async def delete(request: Request) -> Response:
        control.delete(request.path_params["stream"], request.path_params["key"], at=request.query_params.get("at"))
        return Response(status_code=204)

    async def malformed(request: Request) -> Response:
        control.malformed(request.path_params["stream"], request.path_params["key"])
        return Response(status_code=204)

    async def throttle(request: Request) -> Response:
        body = await _body(request)
        count, retry_after = body.get("count", 1), body.get("retry_after", 1)
        if not isinstance(count, int) or count < 1 or not isinstance(retry_after, int | float) or retry_after < 0:
            return _error(422, 'give "count" (a positive integer) and "retry_after" (seconds, not negative)')
        control.throttle(count, float(retry_after))
        return Response(status_code=204)

    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except _BadBody as exc:
                return _error(422, str(exc))
            except KeyError as exc:
                return _error(404, f"unknown stream or key: {exc.args[0] if exc.args else ''}")
            except ValueError as exc:
                return _error(422, str(exc))

        return endpoint

    return [
        Route("/_emulator/records/{stream}", guarded(put), methods=["POST"]),
        Route("/_emulator/records/{stream}/{key:path}", guarded(delete), methods=["DELETE"]),
        Route("/_emulator/malformed/{stream}/{key:path}", guarded(malformed), methods=["POST"]),
        Route("/_emulator/throttle", guarded(throttle), methods=["POST"]),
    ]


class _BadBody(Exception):
    """The control request's body is not a JSON object."""


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise _BadBody("the body is not JSON") from None
    if not isinstance(body, dict):
        raise _BadBody("the body must be a JSON object")
    return body


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)
