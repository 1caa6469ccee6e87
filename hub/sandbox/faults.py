"""Fault injection for emulators: ASGI middleware that makes any app fail the way remote APIs fail.

A faulty request suffers at most one fault, chosen by one random draw, so the rates add up (``error_rate=0.1``,
``rate_429=0.1`` and ``timeout_rate=0.1`` make 30% of the requests faulty). What the client sees:

=============  ===========================================================  ==========================
fault          what happens                                                 request processed by app?
=============  ===========================================================  ==========================
error          500, 502 or 503 (mixed), answered before the app                no
rate_429       429 with ``Retry-After: <retry_after>``                         no
timeout        held ``hang_seconds`` (the client's read timeout fires), 504     no, never
drop           the app answers, then the connection is cut mid-body            yes
               (``httpx.RemoteProtocolError``); ``drop_delay`` first holds it
               (a read timeout after server-side success)
=============  ===========================================================  ==========================

``latency`` is added to every request the faults apply to. ``/_emulator/*`` (the inspection views, and this
middleware's own ``/_emulator/faults`` and ``/_emulator/faults/stats``) is never faulted. A response to HEAD has
no body to cut short, so a dropped HEAD arrives whole.
"""

from __future__ import annotations

import asyncio
import contextvars
import fnmatch
import json
import logging
import random
import threading
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FaultKind = Literal["error", "rate_429", "timeout", "drop"]
CONTROL_PREFIX = "/_emulator/"
FAULTS_PATH = "/_emulator/faults"
STATS_PATH = "/_emulator/faults/stats"
ERROR_STATUSES = (500, 502, 503)
STAT_KEYS = ("passed", "error", "rate_429", "timeout", "drop", "delayed")
_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_LIST_FIELDS = {"paths", "methods"}

Rate = Field(default=0.0, ge=0.0, le=1.0)


class Faults(BaseModel):
    """What to inject, and where. All rates are fractions of the requests the faults apply to."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    error_rate: float = Rate
    rate_429: float = Rate
    retry_after: int | None = Field(default=1, ge=0, description="Retry-After seconds on a 429; None: no header")
    timeout_rate: float = Rate
    hang_seconds: float = Field(default=30.0, gt=0, description="how long a timeout holds the request")
    drop_rate: float = Rate
    drop_delay: float = Field(default=0.0, ge=0, description="hold a processed response this long before the cut")
    latency: float = Field(default=0.0, ge=0, description="seconds added to every request the faults apply to")
    seed: int | None = None
    paths: list[str] = Field(default_factory=lambda: ["*"], description="globs; /_emulator/* is never faulted")
    methods: list[str] | None = Field(default=None, description="only these methods (default: all)")

    @field_validator("methods")
    @classmethod
    def _upper(cls, methods: list[str] | None) -> list[str] | None:
        return [m.upper() for m in methods] if methods else None

    @model_validator(mode="after")
    def _rates_fit(self) -> Faults:
        if self.total_rate > 1.0 + 1e-9:
            raise ValueError(f"the fault rates add up to {self.total_rate:g}, more than 1")
        return self

    @property
    def total_rate(self) -> float:
        return self.error_rate + self.rate_429 + self.timeout_rate + self.drop_rate

    def applies_to(self, method: str, path: str) -> bool:
        """Whether a request may be faulted: never ``/_emulator/*``; else by ``methods`` and ``paths``."""
        if path.startswith(CONTROL_PREFIX) or path == CONTROL_PREFIX.rstrip("/"):
            return False
        if self.methods and method.upper() not in self.methods:
            return False
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in self.paths)

    def choose(self, draw: float) -> tuple[FaultKind, int] | None:
        """The fault for one uniform draw in [0, 1): ``(kind, status)`` or None; the bands are laid end to end.

        Within the error band the draw's position also picks 500, 502 or 503, so one draw decides everything.
        """
        edge = self.error_rate
        if draw < edge:
            return "error", ERROR_STATUSES[min(int(draw / self.error_rate * len(ERROR_STATUSES)), 2)]
        for kind, rate, status in (
            ("rate_429", self.rate_429, 429),
            ("timeout", self.timeout_rate, 504),
            ("drop", self.drop_rate, 0),
        ):
            edge += rate
            if draw < edge:
                return kind, status  # type: ignore[return-value]
        return None

    @classmethod
    def parse(cls, text: str) -> Faults:
        """``"error_rate=0.1,rate_429=0.05,retry_after=2"``; lists separated by ``|`` (``methods=POST|PUT``).

        ``null`` or ``none`` is None (``retry_after=null``). Raises ValueError saying what is wrong.
        """
        values: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, sep, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key:
                raise ValueError(f"{item!r}: expected NAME=VALUE, e.g. error_rate=0.1")
            if value.lower() in ("null", "none"):
                values[key] = None
            elif key in _LIST_FIELDS:
                values[key] = [v.strip() for v in value.split("|") if v.strip()]
            else:
                values[key] = value
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'faults'}: {e['msg']}" for e in exc.errors())
            raise ValueError(problems) from None


_dropping: contextvars.ContextVar[bool] = contextvars.ContextVar("hub_sandbox_dropping", default=False)


class _QuietDrops(logging.Filter):
    """Silence uvicorn's complaint about the incomplete response a ``drop`` sends on purpose (and only that)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (_dropping.get() and str(record.msg).startswith("ASGI callable returned without completing"))


_quiet_drops = _QuietDrops()


class FaultInjector:
    """ASGI middleware: wraps ``app`` and injects ``faults`` into the requests they apply to.

    ``faults`` can be replaced at any time, from Python (``injector.faults = Faults(...)``, from any thread) or
    over HTTP (``GET|PUT|PATCH /_emulator/faults``); replacing them re-seeds the random source, so the same
    ``seed`` and the same request sequence give the same faults. ``stats`` counts what happened
    (``GET /_emulator/faults/stats``, ``DELETE`` resets).
    """

    def __init__(self, app: ASGIApp, faults: Faults | None = None) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._faults = faults or Faults()
        self._rng = random.Random(self._faults.seed)
        self._stats = dict.fromkeys(STAT_KEYS, 0)
        uvicorn_log = logging.getLogger("uvicorn.error")
        if _quiet_drops not in uvicorn_log.filters:
            uvicorn_log.addFilter(_quiet_drops)

    @property
    def faults(self) -> Faults:
        with self._lock:
            return self._faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)

    def update(self, **changes: Any) -> Faults:
        """Change some fields of the current faults (validated), e.g. ``update(error_rate=0)``; returns them."""
        with self._lock:
            self._faults = Faults.model_validate({**self._faults.model_dump(), **changes})
            self._rng = random.Random(self._faults.seed)
            return self._faults

    @property
    def stats(self) -> dict[str, int]:
        """Counts: ``passed`` (answered by the app, untouched), each fault kind, ``delayed`` (latency added)."""
        with self._lock:
            return dict(self._stats)

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = dict.fromkeys(STAT_KEYS, 0)

    def _decide(self, method: str, path: str) -> tuple[Faults, tuple[FaultKind, int] | None]:
        with self._lock:
            faults = self._faults
            if not faults.applies_to(method, path):
                return faults, None
            fault = faults.choose(self._rng.random()) if faults.total_rate else None
            if faults.latency:
                self._stats["delayed"] += 1
            return faults, fault

    def _count(self, key: str) -> None:
        with self._lock:
            self._stats[key] += 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path in (FAULTS_PATH, STATS_PATH):
            await self._control(path, method, receive, send)
            return
        if path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        faults, fault = self._decide(method, path)
        if faults.latency and faults.applies_to(method, path):
            await asyncio.sleep(faults.latency)
        if fault is None:
            self._count("passed")
            await self.app(scope, receive, send)
            return
        kind, status = fault
        self._count(kind)
        if kind == "drop":
            await self._drop(scope, receive, send, faults.drop_delay)
        elif kind == "timeout":
            if not await _wait_for_disconnect(receive, faults.hang_seconds):
                await _send_json(send, status, _fault_body(status))
        else:
            await _drain(receive)
            retry_after = faults.retry_after if status == 429 else None
            headers = [] if retry_after is None else [(b"retry-after", str(retry_after).encode())]
            await _send_json(send, status, _fault_body(status), headers)

    async def _drop(self, scope: Scope, receive: Receive, send: Send, delay: float) -> None:
        """Let the app process the request, then declare more body than is sent and end: uvicorn closes the
        connection and the client reads an incomplete response (with h11 and httptools alike)."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        if start is None:
            return  # the app never answered: uvicorn reports that as the app's own bug
        if delay and await _wait_for_disconnect(receive, delay):
            return
        body = b"".join(chunks)
        status = start["status"]
        if status < 200 or status in (204, 304):  # their framing has no body, so a cut would go unnoticed
            status = 200
        skip = {b"content-length", b"transfer-encoding", b"connection"}
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() not in skip]
        headers.append((b"content-length", str(len(body) + 64).encode()))
        _dropping.set(True)  # this request's task only: see _QuietDrops
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})

    async def _control(self, path: str, method: str, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        if path == STATS_PATH:
            if method == "DELETE":
                self.reset_stats()
            elif method != "GET":
                await _send_json(send, 405, {"message": "use GET or DELETE"}, [(b"allow", b"GET, DELETE")])
                return
            await _send_json(send, 200, self.stats)
            return
        if method in ("PUT", "PATCH"):
            try:
                changes = json.loads(body or b"{}")
                if not isinstance(changes, dict):
                    raise ValueError("expected a JSON object")
                if method == "PUT":
                    self.faults = Faults.model_validate(changes)
                else:
                    self.update(**changes)
            except ValidationError as exc:
                errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
                await _send_json(send, 422, {"message": "invalid faults", "errors": errors})
                return
            except ValueError as exc:
                await _send_json(send, 400, {"message": f"invalid JSON: {exc}"})
                return
        elif method != "GET":
            await _send_json(send, 405, {"message": "use GET, PUT or PATCH"}, [(b"allow", b"GET, PUT, PATCH")])
            return
        await _send_json(send, 200, self.faults.model_dump(mode="json"))


def _fault_body(status: int) -> dict[str, Any]:
    return {"message": _REASONS[status], "status": status, "injected": True}


async def _send_json(send: Send, status: int, payload: Any, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps(payload).encode()
    start_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*start_headers, *headers]})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _drain(receive: Receive) -> None:
    """Read the request body before answering without the app, so the connection stays usable."""
    await _read_body(receive)


async def _wait_for_disconnect(receive: Receive, seconds: float) -> bool:
    """Hold the request up to ``seconds``; True if the client went away meanwhile (nothing more to send)."""

    async def disconnected() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(disconnected(), seconds)
    except TimeoutError:
        return False
    return True
