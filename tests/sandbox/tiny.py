"""A tiny emulator of our own (the real ones live with their plugins), a plugin that provides it, a served copy."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub import hookimpl
from hub.sandbox import Emulator, FaultInjector


@dataclass
class Notes:
    """What the tiny API received: items by id, in the order they were created."""

    items: dict[int, Any] = field(default_factory=dict)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))


def notes_app() -> Starlette:
    """Items API: POST /items (201 + the item), GET /items, DELETE /items/{id} (204); GET /_emulator/received."""
    notes = Notes()

    async def create(request: Request) -> Response:
        item_id = next(notes.ids)
        notes.items[item_id] = await request.json()
        return JSONResponse({"id": item_id, "item": notes.items[item_id]}, status_code=201)

    async def listing(request: Request) -> Response:
        return JSONResponse([{"id": k, "item": v} for k, v in notes.items.items()])

    async def delete(request: Request) -> Response:
        notes.items.pop(int(request.path_params["item_id"]), None)
        return Response(status_code=204)

    async def received(request: Request) -> Response:
        return JSONResponse({"items": len(notes.items)})

    app = Starlette(
        routes=[
            Route("/items", create, methods=["POST"]),
            Route("/items", listing, methods=["GET"]),
            Route("/items/{item_id:int}", delete, methods=["DELETE"]),
            Route("/_emulator/received", received, methods=["GET"]),
        ]
    )
    app.state.notes = notes
    return app


def notes_emulator(name: str = "notes", **extra: Any) -> Emulator:
    return Emulator(
        name=name,
        connector_type=f"{name}-api",
        app=notes_app,
        settings=lambda base_url: {"base_url": base_url, "api_key": "sandbox"},
        description="a tiny items API",
        extra=extra,
    )


class EmulatorPlugin:
    """A plugin whose only hook is ``hub_emulators``."""

    def __init__(self, *emulators: Emulator) -> None:
        self.emulators = list(emulators)

    @hookimpl
    def hub_emulators(self) -> list[Emulator]:
        return self.emulators


@dataclass
class Served:
    """A faulty tiny API on loopback: the injector, the app's state, and a client pointed at it."""

    injector: FaultInjector
    notes: Notes
    url: str
    client: httpx.Client
