"""The destinations bench/deliver.py measures: each emulator with its real limits, in its own process, what the
benchmark counts there, and the ceiling each destination's limits allow.

Run as a script (``python bench/_destinations.py serve '<json>'``) it is that emulator process: the plugin's own
emulator app built with its limit options, wrapped (outermost first) in

- :class:`Meter`: counts requests, their status codes, the most in flight at once, the busiest second and minute,
  the process's CPU time, and answers ``GET /_bench/counts`` (what the emulator holds, read from its state) and
  ``GET|DELETE /_bench/meter``;
- ``hub.sandbox.FaultInjector`` when the run injects faults.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

Scope = MutableMapping[str, Any]
ASGI = Callable[[Scope, Any, Any], Awaitable[None]]

#: Requests that fetch a token are left out of the probe's latency: one per token lifetime (15 min to 2 h).
TOKEN_PATHS = ("/oauth2/token", "/auth/token")


@dataclass(frozen=True)
class Limits:
    """What the destination allows: ``concurrency`` calls in flight (None: the API sets none, hub's own setting
    applies), ``rate`` calls per ``window`` seconds (None: none), and a daily ``imports`` quota per table."""

    concurrency: int | None
    rate: float | None = None
    window: float = 1.0
    imports: int | None = None
    source: str = ""


@dataclass(frozen=True)
class Target:
    """One destination under benchmark."""

    name: str
    kinds: tuple[str, ...]
    mapping: str | None
    limits: Limits
    #: hub's ``delivery:`` block (concurrency, rate) for the run; retries and timeouts are added per run.
    delivery: dict[str, Any]
    #: the emulator's ``app()`` options: its limits, its simulated processing time.
    emulator: dict[str, Any]
    #: extra connector settings beside the emulator's own.
    settings: dict[str, Any] = field(default_factory=dict)
    #: batches the probe sends per kind (at concurrency 1) to measure the time one batch takes.
    probe_batches: dict[str, int] = field(default_factory=lambda: {"contact_upsert": 100, "order": 100})
    #: read timeout in the fault run: above any healthy call's time, so only injected hangs time out.
    fault_read_timeout: float = 1.0

    @property
    def concurrency(self) -> int:
        return int(self.delivery["concurrency"])


def targets(latency: dict[str, float], import_seconds: float) -> dict[str, Target]:
    """Every destination with its documented limits (esp-apis.md, the plugins' READMEs). ``latency``: seconds the
    emulator spends on each call, per destination (its ``latency`` option); ``import_seconds``: how long an
    Actito import runs."""
    agillic_latency = latency.get("agillic", 0.0)
    actito_latency = latency.get("actito", 0.0)
    return {
        "voyado": Target(
            name="voyado",
            kinds=("contact_upsert", "order"),
            mapping="mappings/voyado.yaml",
            limits=Limits(None, rate=200, source="Engage: above 200 requests/s per API key -> 429"),
            delivery={"concurrency": 8, "rate_limit": 200},
            emulator={"rate_limit": 200},
            settings={"store_external_id": "WEB", "currency": "NOK"},
        ),
        "agillic": Target(
            name="agillic",
            kinds=("contact_upsert", "order"),
            mapping="mappings/agillic.yaml",
            limits=Limits(20, source="Agillic: 20 calls in flight (the 21st is 429), 1000 entries per batch"),
            delivery={"concurrency": 20},
            emulator={"max_concurrent": 20, "max_batch": 1000, "latency": agillic_latency},
            probe_batches={"contact_upsert": 4, "order": 100},
            fault_read_timeout=2.0 + 2 * agillic_latency,
        ),
        "actito": Target(
            name="actito",
            kinds=("contact_upsert", "order"),
            mapping="mappings/actito.yaml",
            limits=Limits(
                5,
                rate=100,
                window=60.0,
                imports=12,
                source="Actito: 5 calls in flight (the 6th is 429), 100 calls a minute (more are slowed), "
                "12 bulk imports per table per day",
            ),
            delivery={"concurrency": 5},
            emulator={
                "max_concurrent": 5,
                "calls_per_minute": 100,
                "rate_window": 60.0,
                "imports_per_day": 12,
                "import_seconds": import_seconds,
                "latency": actito_latency,
            },
            probe_batches={"contact_upsert": 1, "order": 1},
            fault_read_timeout=30.0,
        ),
        "raptor": Target(
            name="raptor",
            kinds=("order",),
            mapping=None,
            limits=Limits(
                None,
                rate=50,
                source="Raptor publishes none and never refuses a tracking call; hub assumes 50 requests/s",
            ),
            delivery={"concurrency": 4},
            emulator={},
            probe_batches={"order": 100},
        ),
    }


# ------------------------------------------------------------------------------------------------ the ceiling


@dataclass(frozen=True)
class Ceiling:
    """The best rate the limits allow for ``units`` (contacts or order lines), and the formula with its numbers."""

    units_per_second: float
    seconds: float
    formula: str


def ceiling(
    target: Target, *, messages: int, batch_size: int, units: int, batch_seconds: float, calls: float
) -> Ceiling:
    """The fastest ``messages`` can go in batches of ``batch_size`` (K batches), each batch taking
    ``batch_seconds`` at the destination (measured alone) and ``calls`` requests:

        time >= max(ceil(K / C) * t,  rate bound)

    C is the destination's concurrency limit (hub's own concurrency where the API sets none). The rate bound is
    K*q/R for a per-second limit R, and for a limit of R calls per rolling minute (Actito) the start of the last
    call: 60 * floor((K*q - 1) / R), since the first R calls may all start at once.
    """
    limits = target.limits
    batches = math.ceil(messages / batch_size)
    slots = limits.concurrency or target.concurrency
    busy = math.ceil(batches / slots) * batch_seconds
    parts = [f"ceil({batches}/{slots})*{batch_seconds:.3f}s = {busy:.1f}s"]
    rate_bound = 0.0
    if limits.rate:
        total_calls = batches * calls
        if limits.window > 1:
            rate_bound = limits.window * math.floor(max(total_calls - 1, 0) / limits.rate)
            parts.append(f"{limits.window:g}s*floor(({total_calls:.0f}-1)/{limits.rate:g}) = {rate_bound:.1f}s")
        else:
            rate_bound = total_calls / limits.rate
            parts.append(f"{total_calls:.0f} calls/{limits.rate:g}/s = {rate_bound:.1f}s")
    seconds = max(busy, rate_bound)
    formula = f"max({'; '.join(parts)})" if len(parts) > 1 else parts[0]
    return Ceiling(units / seconds if seconds else math.inf, seconds, formula)


# ------------------------------------------------------------------------------------- the emulator process


class Meter:
    """Outermost ASGI layer of the emulator process: what arrived, how busy it was, and what the emulator holds."""

    def __init__(self, app: ASGI, name: str, state: Any) -> None:
        self.app = app
        self.name = name
        self.state = state
        self.reset()

    def reset(self) -> None:
        self.starts: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.busy = 0.0
        self.cpu = time.process_time()

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": len(self.starts),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "max_in_flight": self.max_in_flight,
            "busy_seconds": round(self.busy, 3),
            "cpu_seconds": round(time.process_time() - self.cpu, 3),
            "span_seconds": round(self.starts[-1] - self.starts[0], 3) if self.starts else 0.0,
            "peak_1s": _peak(self.starts, 1.0),
            "peak_60s": _peak(self.starts, 60.0),
        }

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/_emulator/"):
            await self.app(scope, receive, send)
            return
        if path.startswith("/_bench/"):
            await self._control(scope, send)
            return
        started = time.monotonic()
        self.starts.append(started)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        status = 0

        async def watch(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self.in_flight -= 1
            self.busy += time.monotonic() - started
            self.statuses[status] += 1

    async def _control(self, scope: Scope, send: Any) -> None:
        if scope["path"] == "/_bench/counts":
            body: Any = counts(self.name, self.state)
        elif scope["method"] == "DELETE":
            body = self.snapshot()
            self.reset()
        else:
            body = self.snapshot()
        data = json.dumps(body).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})


def _peak(starts: list[float], window: float) -> int:
    """The most request starts within any ``window`` seconds (``starts`` ascending)."""
    best, first = 0, 0
    for last, stamp in enumerate(starts):
        while stamp - starts[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


def counts(name: str, state: Any) -> dict[str, Any]:
    """What the emulator holds, for the benchmark's assertions: contacts, orders, order lines, and anything sent
    twice that it can tell."""
    if name == "voyado":
        with state.lock:
            receipts = list(state.receipts.values())
            return {
                "contacts": len(state.contacts),
                "orders": len(receipts),
                "lines": sum(sum(1 for item in r.get("items", []) if item.get("type") == "PURCHASE") for r in receipts),
                "duplicates": state.receipt_duplicates,
                "throttled": state.throttled,
            }
    if name == "agillic":
        with state.lock:
            rows = [row for table in state.records.values() for per in table.values() for row in per.values()]
            return {
                "contacts": len(state.recipients),
                "orders": len({row.get("ORDER_ID") for row in rows}),
                "lines": len(rows),
                "max_in_flight": state.max_in_flight,
                "refused_concurrency": state.refused_concurrency,
                "largest_batch": dict(state.largest_batch),
            }
    if name == "actito":
        with state.lock:
            events = Counter(e["table"] for e in state.events)
            return {
                "contacts": len(state.profiles),
                "orders": len(state.records.get("ORDERS", {})),
                "lines": len(state.records.get("ORDER_LINES", {})),
                "order_events": events.get("ORDERS", 0),
                "imports": {f"{t}:{d}": n for (t, d), n in state.import_counts.items()},
                "refused_imports": state.refused_imports,
                "max_in_flight": state.max_in_flight,
                "concurrency_refusals": state.concurrency_refusals,
                "throttled": state.throttled,
            }
    if name == "raptor":
        received = state.buy_counts()
        return {
            "contacts": 0,
            "orders": len({order for order, _ in received}),
            "lines": len(received),
            "duplicates": sum(n - 1 for n in received.values() if n > 1),
            "buys": sum(received.values()),
        }
    raise ValueError(f"unknown destination {name!r}")


_MODULES = {
    "voyado": "hub_plugins.voyado.emulator",
    "agillic": "hub_plugins.agillic.emulator",
    "actito": "hub_plugins.actito.emulator",
    "raptor": "hub_plugins.raptor.emulator",
}


def serve(spec: dict[str, Any]) -> None:
    """Run one emulator: ``{"name", "port", "options", "faults"}``."""
    import uvicorn

    from hub.sandbox import FaultInjector, Faults

    name = spec["name"]
    emulator = importlib.import_module(_MODULES[name]).app(**spec.get("options", {}))
    app: ASGI = emulator
    if spec.get("faults"):
        app = FaultInjector(app, Faults(**spec["faults"]))
    state = getattr(emulator.state, name)
    asyncio.set_event_loop_policy(None)
    uvicorn.run(Meter(app, name, state), host="127.0.0.1", port=spec["port"], log_level="error", access_log=False)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "serve":
        raise SystemExit("usage: _destinations.py serve '<json spec>'")
    serve(json.loads(sys.argv[2]))
