"""Delivery benchmark: hub's outbox delivery to each destination's emulator, against the ceiling its limits allow.

    python bench/deliver.py [--destination voyado|agillic|actito|raptor|all] [--contacts 100000] [--lines 300000]
        [--lines-per-order 3] [--fault-rate 0.2] [--skip-faults] [--skip-clean] [--latency agillic=0.1]
        [--import-seconds 5] [--rate voyado=180] [--keep]
    python bench/deliver.py --destination agillic --contacts 2000 --lines 6000        # a quick run

(A quick Actito run needs at least 500 contacts and orders: below the plugin's ``bulk_threshold`` a batch goes
one call per message, at Actito's 100 calls a minute.)

Each emulator runs in its own process (as a remote API would; bench/_destinations.py) with its real limits on,
and hub takes its real path: a temporary SQLite project, customers and then orders written set-based into the
unified model, ``enqueue_changes`` (outbound mapping, ``prepare``, hashes, outbox rows), then ``deliver`` passes
until nothing is open (claims, batches, rate and concurrency limits, outcome bookkeeping). Contacts and orders
are two phases, so each has its own rate: contacts per second, and order lines per second (orders of
``--lines-per-order`` lines with distinct SKUs). Raptor takes only orders (one buy event per line).

**The ceiling.** Before each phase a probe sends a sample of that phase's real payloads (built from the model as
change detection builds them) through the plugin's own ``send``, one batch at a time, with no client-side
limit, to a separate emulator process with the same options. ``t`` is the mean time one batch (one ``send``)
takes there, ``q`` the calls it needs (token requests, and polls that find an import still running, are left
out: their time is in ``t``). For K batches of the kind's batch size:

    ceiling time = max(ceil(K / C) * t,  rate bound)        ceiling rate = units / ceiling time

- **Voyado**: rate bound K*q / 200 s: Engage answers 429 above 200 requests/s per API key [C], and its emulator
  enforces that (a 1-second window, ``Retry-After: 1``). Engage sets no concurrency limit (C = hub's, 8). A
  contact hub does not know yet is q = 2 calls (look up by e-mail, then create), a receipt q = 1: the ceiling
  is 100 contacts/s and 200 receipts/s. hub runs at ``rate_limit: 200`` (``--rate voyado=R`` to change).
- **Agillic**: C = 20 calls in flight (the emulator answers the 21st with 429), batches of 1000 recipients
  (``:batch``), one ``:batchUpdateRecords`` call per order; no rate limit: the ceiling is 20 * 1000 / t
  recipients/s and 20 * lines-per-order / t lines/s. The emulator's ``latency`` option (``--latency agillic=S``,
  default 0.1 s) stands for Agillic's own time per call.
- **Actito**: the bulk path. A batch is up to 10,000 messages in one zipped-CSV import (orders: one import of
  ORDERS, then one of ORDER_LINES), posted and polled until FINISHED, then its error report read: t is that whole
  round trip, with the plugin's polling (every 2 s) and the emulator's ``import_seconds`` (``--import-seconds``,
  default 5) standing for Actito's import time; q = 3 calls per import. C = 5 calls in flight; the rate bound is
  60 * floor((K*q - 1) / 100) s: 100 calls in any rolling minute, so the first 100 may start at once, and excess
  calls are slowed, not refused. K must stay within 12 imports per table per day.
- **Raptor**: one tracking GET per line, q = 3 per order. Raptor publishes no limit and its tracking never
  refuses a call; hub assumes 50 requests/s (the plugin's ``default_rate_limit``): rate bound K*q / 50 s, and the
  meter's busiest second shows whether hub kept to it.

Target: at least 0.8 of each ceiling. The emulator process meters what arrived: calls and their statuses, the
most in flight at once, the mean in flight (busy time / phase time: whether hub kept the slots full), the
busiest second and minute (whether hub kept within the rate), and its own CPU. hub's CPU over the phase is
printed too, with the rate its CPU per unit would allow alone on a free core: a ratio far below 0.8 with hub's
CPU near one core means hub's own work (claims, bookkeeping, JSON, HTTP) is the limit, not the destination.

**With faults** (``--fault-rate``, default 0.2, on every API call, tokens and polls included): 5xx (75% of it),
429 without Retry-After (20%; with it, each 429 pauses the whole destination, as it must, and thousands of
random ones would measure the pause) and hangs beyond the read timeout (5%; never processed). Everything must be
delivered: the emulator holds every contact once and every order line once (Actito: one scenario event per
order); Voyado's receipts sent twice after a lost answer are reported (Engage ignores a known
``uniqueReceiptId``). Raptor's orders are at most once: an order with a lost answer is parked, and the run
reports how many, and how many of their lines Raptor lacks; no line may arrive twice.

The machine's load average is printed with the figures: the emulators and hub share its cores. The summary at
the end repeats the command line, so a figure can be re-run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _destinations import TOKEN_PATHS, Ceiling, Target, ceiling, targets

ROOT = Path(__file__).resolve().parent.parent
SERVER = Path(__file__).resolve().parent / "_destinations.py"
#: Default simulated processing time per call (seconds), per destination: see the module docstring.
DEFAULT_LATENCY = {"agillic": 0.1, "actito": 0.0}
UNITS = {"contact_upsert": "contacts", "order": "lines"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Emulator:
    """One emulator process: the plugin's emulator with ``target``'s options, metered, optionally faulted."""

    def __init__(self, target: Target, faults: dict[str, Any] | None = None) -> None:
        port = _free_port()
        spec = {
            "name": target.name,
            "port": port,
            "options": target.emulator,
            "faults": faults,
        }
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, str(SERVER), "serve", json.dumps(spec)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/_bench/meter", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise SystemExit(f"the {target.name} emulator did not start")

    def meter(self, *, reset: bool = False) -> dict[str, Any]:
        method = "DELETE" if reset else "GET"
        return httpx.request(method, f"{self.url}/_bench/meter", timeout=120).json()

    def counts(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_bench/counts", timeout=300).json()

    def fault_stats(self) -> dict[str, int]:
        response = httpx.get(f"{self.url}/_emulator/faults/stats", timeout=30)
        return response.json() if response.status_code == 200 else {}

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


# ---------------------------------------------------------------------------------------------- the project


def _write_project(project: Path, target: Target, url: str, db: Path, delivery: dict[str, Any]) -> Path:
    if project.exists():
        shutil.rmtree(project)
    project.mkdir(parents=True)
    (project / "mappings").symlink_to(ROOT / "mappings")
    (described,) = importlib.import_module(f"hub_plugins.{target.name}").hub_emulators()
    connector: dict[str, Any] = {
        "plugin": target.name,
        "settings": {**described.settings(url), **target.settings},
        "delivery": {**target.delivery, **delivery},
    }
    if target.mapping:
        connector["mapping"] = target.mapping
    config = {"database": {"url": f"sqlite:///{db}"}, "batch_size": 5000, "connectors": {target.name: connector}}
    (project / "hub.yaml").write_text(json.dumps(config, indent=1), encoding="utf-8")
    return project / "hub.yaml"


def _hub(config: Path) -> Any:
    from hub.app import Hub

    return Hub.load(config, project_dir=config.parent)


def load_customers(engine: sa.Engine, n: int) -> None:
    """N customers written straight into the unified model, set-based (this benchmark is about delivery).

    Stamped an hour ago, as by an earlier sync: change detection looks back a few minutes past its watermark for
    loads still open, and a load stamped now would be scanned again by every delivery pass.
    """
    stamp = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO customer (id, email, first_name, last_name, is_b2b, source, source_rank, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, 0, 'bench', 0, ?, ?)",
            [(i + 1, f"person{i}@example.com", f"First{i}", f"Last{i}", stamp, stamp) for i in range(n)],
        )


PRODUCTS = 1000


def load_orders(engine: sa.Engine, orders: int, per_order: int, customers: int) -> None:
    """``orders`` web orders of ``per_order`` lines (distinct SKUs), spread over the customers, set-based."""
    stamp = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    placed = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO product (id, sku, name, product_group, brand, price, is_accessory, source, loaded_at)"
            " VALUES (?, ?, ?, ?, ?, ?, 0, 'bench', ?)",
            [
                (p + 1, f"SKU{p:04d}", f"Product {p}", f"group{p % 20}", f"brand{p % 30}", 10.0 + p, stamp)
                for p in range(PRODUCTS)
            ],
        )
        conn.exec_driver_sql(
            "INSERT INTO orders (id, source, external_id, customer_id, placed_at, channel, currency, total,"
            " is_return, loaded_at) VALUES (?, 'bench', ?, ?, ?, 'web', 'NOK', ?, 0, ?)",
            [
                (o + 1, f"B{o + 1}", o % customers + 1, placed, sum(_price(o, k) for k in range(per_order)), stamp)
                for o in range(orders)
            ],
        )
        conn.exec_driver_sql(
            "INSERT INTO order_line (order_id, line_no, sku, quantity, unit_price, line_total)"
            " VALUES (?, ?, ?, 1, ?, ?)",
            [
                (o + 1, k + 1, f"SKU{_sku(o, k):04d}", _price(o, k), _price(o, k))
                for o in range(orders)
                for k in range(per_order)
            ],
        )


def _sku(order: int, line: int) -> int:
    return (order + line * 331) % PRODUCTS


def _price(order: int, line: int) -> float:
    return 10.0 + _sku(order, line)


# ---------------------------------------------------------------------------------------------------- probe


class TimingTransport(httpx.BaseTransport):
    """Counts the calls a batch needs: token requests and polls that found an import still running are left out
    (a token lasts 15 minutes to 2 hours; how often to poll is the client's choice, and the batch time ``t``
    already holds the polling)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport(retries=0)
        self.calls = 0
        self.polls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        if request.method == "GET" and "/import/" in request.url.path and b'"RUNNING"' in response.content:
            self.polls += 1
        elif not request.url.path.endswith(TOKEN_PATHS):
            self.calls += 1
        return response

    def close(self) -> None:
        self.inner.close()


@dataclass
class Probe:
    """One kind's sample, sent a batch at a time: the mean time per batch (``send``) and calls per batch."""

    kind: str
    batch_messages: float
    batches: int
    batch_seconds: float
    calls_per_batch: float
    outcomes: dict[str, int]


class Prober:
    """Sends samples of real payloads, built from the model as change detection builds them, through the plugin's
    ``send`` to a separate emulator process, one batch at a time with no client-side limit."""

    def __init__(self, target: Target, workdir: Path, db: Path) -> None:
        from hub.delivery.dispatcher import batch_size_of
        from hub.delivery.http import make_client
        from hub.delivery.ratelimit import DestinationLimits

        self.target = target
        self.emulator = Emulator(target)
        config = _write_project(workdir / f"probe-{target.name}", target, self.emulator.url, db, {})
        self.hub = _hub(config)
        self.destination = self.hub.connector(target.name)
        self.timing = TimingTransport()
        delivery = self.hub.config.connectors[target.name].delivery
        client = make_client(self.destination, delivery, limits=DestinationLimits(None, 1), transport=self.timing)
        self.destination.bind_http(client)
        self.batch_size = {kind: batch_size_of(self.hub, target.name, kind) for kind in target.kinds}
        self.contacts_sent: set[int] = set()

    def close(self) -> None:
        self.hub.close()
        self.emulator.stop()

    def _outgoing(self, kind: str, payloads: dict[int, dict[str, Any]]) -> list[Any]:
        from hub.connectors import Outgoing

        return [
            Outgoing(id=i, kind=kind, customer_id=None, payload=p, idempotency_key=f"probe:{kind}:{i}")
            for i, p in payloads.items()
        ]

    def _contact_payloads(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        from hub.delivery.changes import build_contact_payload
        from hub.delivery.outbound import outbound_mapping
        from hub.delivery.views import customer_views

        mapping = outbound_mapping(self.hub, self.target.name)
        with self.hub.engine.connect() as conn:
            views = customer_views(conn, ids)
        return {i: build_contact_payload(self.destination, mapping, views[i]) for i in ids}

    def _order_payloads(self, ids: list[int]) -> tuple[dict[int, dict[str, Any]], set[int]]:
        from hub.delivery.views import order_views

        with self.hub.engine.connect() as conn:
            views = order_views(conn, ids)
        customers = {views[i]["_hub"]["customer_id"] for i in ids}
        return {i: self.destination.prepare("order", views[i]) for i in ids}, customers

    def _send(self, kind: str, payloads: dict[int, dict[str, Any]], *, timed: bool) -> Probe:
        outgoing = self._outgoing(kind, payloads)
        size = self.batch_size[kind]
        batches = [outgoing[i : i + size] for i in range(0, len(outgoing), size)]
        outcomes: Counter[str] = Counter()
        times: list[float] = []
        calls: list[int] = []
        sizes: list[int] = []
        for batch in batches:
            before = self.timing.calls
            started = time.perf_counter()
            outcomes.update(o.status for o in self.destination.send(kind, batch))
            times.append(time.perf_counter() - started)
            calls.append(self.timing.calls - before)
            sizes.append(len(batch))
        if timed and len(times) > 1:  # the first batch opens the connection and fetches the token
            times, calls, sizes = times[1:], calls[1:], sizes[1:]
        n = len(times)
        return Probe(kind, sum(sizes) / n, n, sum(times) / n, sum(calls) / n, dict(outcomes))

    def contacts(self, customers: int) -> Probe:
        count = min(customers, self.batch_size["contact_upsert"] * self.target.probe_batches["contact_upsert"])
        ids = list(range(1, count + 1))
        self.contacts_sent.update(ids)
        return self._send("contact_upsert", self._contact_payloads(ids), timed=True)

    def orders(self, orders: int) -> Probe:
        count = min(orders, self.batch_size["order"] * self.target.probe_batches["order"])
        payloads, customers = self._order_payloads(list(range(1, count + 1)))
        missing = sorted(customers - self.contacts_sent)
        if missing and "contact_upsert" in self.target.kinds:
            self._send("contact_upsert", self._contact_payloads(missing), timed=False)  # orders need them there
            self.contacts_sent.update(missing)
        return self._send("order", payloads, timed=True)


# ----------------------------------------------------------------------------------------------------- runs


@dataclass
class Phase:
    """One kind's delivery: ``units`` are contacts or order lines; ``statuses`` the outbox rows' (and how many
    needed more than one attempt); ``meter`` what the emulator process saw; ``cpu`` hub's CPU seconds."""

    kind: str
    units: int
    enqueue: float
    dispatch: float
    passes: int
    statuses: dict[str, int]
    meter: dict[str, Any]
    cpu: float
    probe: Probe | None = None
    ceiling: Ceiling | None = None

    @property
    def rate(self) -> float:
        return self.units / self.dispatch if self.dispatch else math.inf

    @property
    def ratio(self) -> float | None:
        return self.rate / self.ceiling.units_per_second if self.ceiling else None


@dataclass
class Run:
    target: Target
    faulted: bool
    phases: list[Phase] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    fault_stats: dict[str, int] = field(default_factory=dict)
    parked_orders: int = 0
    parked_lines: int = 0
    load: tuple[float, float] = (0.0, 0.0)
    problems: list[str] = field(default_factory=list)


def _open_rows(hub: Any, name: str) -> tuple[int, datetime | None]:
    from hub.models import Message

    m = Message.__table__  # type: ignore[attr-defined]
    query = sa.select(sa.func.count(), sa.func.min(m.c.next_attempt_at)).where(
        m.c.destination == name, m.c.status.in_(("pending", "in_flight"))
    )
    with hub.engine.connect() as conn:
        count, due = conn.execute(query).one()
    return int(count), due


def drain(hub: Any, name: str, timeout: float) -> int:
    """``deliver`` passes until nothing is pending or in flight; between passes, sleep until the next row is due."""
    from hub.delivery.dispatcher import deliver

    deadline = time.monotonic() + timeout
    passes = 0
    while True:
        passes += 1
        summary = deliver(hub, [name])[name]
        if summary.error or summary.paused:
            raise SystemExit(f"{name}: delivery failed: {summary.error or summary.paused_reason}")
        count, due = _open_rows(hub, name)
        if not count:
            return passes
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: {count} messages still open after {timeout:.0f} s")
        wait = (due.replace(tzinfo=due.tzinfo or UTC) - datetime.now(UTC)).total_seconds() if due else 0.5
        time.sleep(min(max(wait, 0.05), 5.0))


def _statuses(hub: Any, name: str, kind: str) -> dict[str, int]:
    with hub.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT status, count(*) FROM message WHERE destination = :d AND kind = :k GROUP BY status"),
            {"d": name, "k": kind},
        ).all()
        retried = conn.execute(
            sa.text("SELECT count(*) FROM message WHERE destination = :d AND kind = :k AND attempts > 1"),
            {"d": name, "k": kind},
        ).scalar_one()
    return {**{status: n for status, n in rows}, "retried": retried}


def _phase(hub: Any, target: Target, emulator: Emulator, kind: str, units: int, timeout: float) -> Phase:
    from hub.delivery.changes import enqueue_changes

    emulator.meter(reset=True)
    started = time.perf_counter()
    enqueue_changes(hub, target.name)
    enqueued = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    passes = drain(hub, target.name, timeout)
    dispatched, cpu = time.perf_counter() - started, time.process_time() - cpu
    meter = emulator.meter(reset=True)
    statuses = _statuses(hub, target.name, kind)
    return Phase(kind, units, enqueued, dispatched, passes, statuses, meter, cpu)


def _parked(hub: Any, name: str) -> tuple[int, int]:
    """Orders parked for review (at most once, outcome unknown) and how many lines they hold."""
    with hub.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT payload FROM message WHERE destination = :d AND kind = 'order' AND status = 'dead'"),
            {"d": name},
        ).all()
    lines = sum(len((json.loads(p) if isinstance(p, str) else p).get("lines", [])) for (p,) in rows)
    return len(rows), lines


def run(target: Target, args: argparse.Namespace, workdir: Path, *, faults: dict[str, Any] | None) -> Run:
    """One full run for ``target``: contacts (if it takes them), then orders; probes and ceilings when clean."""
    customers, per_order = args.contacts, args.lines_per_order
    orders = args.lines // per_order
    result = Run(target, faults is not None)
    db = workdir / f"{target.name}-{'faults' if faults else 'clean'}.db"
    db.unlink(missing_ok=True)
    delivery: dict[str, Any] = {"max_attempts": 30, "backoff_initial": "1s", "backoff_max": "5s"}
    delivery["read_timeout"] = target.fault_read_timeout if faults else 120.0
    emulator = Emulator(target, faults)
    prober: Prober | None = None
    try:
        hub = _hub(_write_project(workdir / target.name, target, emulator.url, db, delivery))
        from hub.schema import upgrade

        upgrade(hub.engine)
        load_customers(hub.engine, customers)
        if faults is None:
            prober = Prober(target, workdir, db)
        load_before = os.getloadavg()[0]
        if "contact_upsert" in target.kinds:
            probe = prober.contacts(customers) if prober else None
            phase = _phase(hub, target, emulator, "contact_upsert", customers, args.timeout)
            _judge(phase, target, probe, customers, prober)
            result.phases.append(phase)
        load_orders(hub.engine, orders, per_order, customers)
        probe = prober.orders(orders) if prober else None
        phase = _phase(hub, target, emulator, "order", orders * per_order, args.timeout)
        _judge(phase, target, probe, orders, prober, per_order)
        result.phases.append(phase)
        result.load = (load_before, os.getloadavg()[0])
        result.counts = emulator.counts()
        result.fault_stats = emulator.fault_stats() if faults else {}
        result.parked_orders, result.parked_lines = _parked(hub, target.name)
        hub.close()
    finally:
        emulator.stop()
        if prober is not None:
            prober.close()
    result.problems = _check(result, customers if "contact_upsert" in target.kinds else 0, orders, orders * per_order)
    return result


def _judge(
    phase: Phase, target: Target, probe: Probe | None, messages: int, prober: Prober | None, per_message: int = 1
) -> None:
    if probe is None or prober is None:
        return
    phase.probe = probe
    phase.ceiling = ceiling(
        target,
        messages=messages,
        batch_size=prober.batch_size[phase.kind],
        units=messages * per_message,
        batch_seconds=probe.batch_seconds,
        calls=probe.calls_per_batch,
    )


def _check(result: Run, contacts: int, orders: int, lines: int) -> list[str]:
    """Every contact once, every order line once; Raptor's parked orders may lack lines, never hold one twice."""
    counts, name = result.counts, result.target.name
    problems = []
    if counts["contacts"] != contacts:
        problems.append(f"{counts['contacts']} contacts at the emulator, expected {contacts}")
    if name == "raptor" and counts.get("duplicates"):
        problems.append(f"{counts['duplicates']} lines sent twice")
    for phase in result.phases:
        open_or_dead = {s: n for s, n in phase.statuses.items() if s not in ("sent", "retried") and n}
        if open_or_dead and not (name == "raptor" and set(open_or_dead) == {"dead"}):
            problems.append(f"{phase.kind}: not all sent: {phase.statuses}")
    if name == "raptor":
        if not lines - result.parked_lines <= counts["lines"] <= lines:
            problems.append(f"{counts['lines']} lines at Raptor, expected {lines} less at most {result.parked_lines}")
    elif counts["lines"] != lines or counts["orders"] != orders:
        problems.append(
            f"{counts['orders']} orders / {counts['lines']} lines at the emulator, expected {orders}/{lines}"
        )
    if name == "actito" and counts.get("order_events") != orders:
        problems.append(f"{counts.get('order_events')} order scenario events, expected {orders}")
    return problems


# ------------------------------------------------------------------------------------------------- output


def _print_phase(target: Target, phase: Phase) -> None:
    unit = UNITS[phase.kind]
    meter = phase.meter
    mean_in_flight = meter["busy_seconds"] / phase.dispatch if phase.dispatch else 0.0
    print(
        f"  {phase.kind:<14} {phase.units:>9,} {unit:<8} enqueue {phase.enqueue:6.1f} s  dispatch "
        f"{phase.dispatch:7.1f} s  {phase.rate:9,.0f} {unit}/s  ({phase.passes} passes; outbox {phase.statuses})"
    )
    print(
        f"    at the emulator: {meter['requests']:,} calls {meter['statuses']}, most in flight "
        f"{meter['max_in_flight']}, mean in flight {mean_in_flight:.1f}, busiest second {meter['peak_1s']}, "
        f"busiest minute {meter['peak_60s']}"
    )
    print(
        f"    CPU: hub {phase.cpu / phase.dispatch:.0%} of a core, {phase.cpu / phase.units * 1e6:,.0f} us per "
        f"{unit[:-1]} (alone on a free core: at most {phase.units / phase.cpu:,.0f} {unit}/s); emulator "
        f"{meter['cpu_seconds'] / phase.dispatch:.0%} of a core"
    )
    if phase.ceiling and phase.probe:
        probe = phase.probe
        print(
            f"    probe: {probe.batches} batches of {probe.batch_messages:,.0f} alone: "
            f"t = {probe.batch_seconds * 1000:.1f} ms per batch, q = {probe.calls_per_batch:.2f} calls; "
            f"outcomes {probe.outcomes}"
        )
        print(
            f"    ceiling {phase.ceiling.units_per_second:9,.0f} {unit}/s = {phase.units:,} / {phase.ceiling.formula}"
            f"   ratio {phase.ratio:.2f}"
        )


def _print_run(result: Run) -> None:
    label = "with faults" if result.faulted else "no faults"
    print(f"{result.target.name} ({label}); load average {result.load[0]:.1f} -> {result.load[1]:.1f}")
    for phase in result.phases:
        _print_phase(result.target, phase)
    extra = f", faults injected {result.fault_stats}" if result.faulted else ""
    lacking = _expected_lines(result) - result.counts["lines"]
    parked = (
        f", parked {result.parked_orders} orders holding {result.parked_lines} lines, of which Raptor lacks {lacking}"
        if result.parked_orders
        else ""
    )
    print(f"  at the emulator: {result.counts}{parked}{extra}")
    for problem in result.problems:
        print(f"  CHECK FAILED: {problem}")


def _expected_lines(result: Run) -> int:
    return next(p.units for p in result.phases if p.kind == "order")


def _summary(runs: list[Run], args: argparse.Namespace) -> None:
    print()
    print("python bench/deliver.py " + " ".join(sys.argv[1:]))
    print(
        f"Summary: {args.contacts:,} contacts, {args.lines:,} order lines ({args.lines_per_order} per order), "
        f"fault rate {args.fault_rate:.0%}, {os.cpu_count()} cpus"
    )
    header = (
        f"{'destination':<11} {'phase':<9} {'n':>8} {'dispatch s':>10} {'rate/s':>9} {'ceiling/s':>10} "
        f"{'ratio':>6} {'load':>9} | {'faults: s':>9} {'sent':>8} {'dead':>5} {'at emulator':>11}"
    )
    print(header)
    print("-" * len(header))
    by_target: dict[str, dict[bool, Run]] = {}
    for result in runs:
        by_target.setdefault(result.target.name, {})[result.faulted] = result
    for name, pair in by_target.items():
        clean, faulted = pair.get(False), pair.get(True)
        kinds = [p.kind for p in (clean or faulted).phases]  # type: ignore[union-attr]
        for kind in kinds:
            unit = UNITS[kind]
            left = f"{name:<11} {unit:<9}"
            if clean is not None:
                p = next(x for x in clean.phases if x.kind == kind)
                ceiling_text = f"{p.ceiling.units_per_second:10,.0f}" if p.ceiling else f"{'-':>10}"
                ratio = f"{p.ratio:6.2f}" if p.ratio is not None else f"{'-':>6}"
                load = f"{clean.load[0]:.1f}-{clean.load[1]:.1f}"
                left += f" {p.units:>8,} {p.dispatch:>10.1f} {p.rate:>9,.0f} {ceiling_text} {ratio} {load:>9}"
            else:
                left += " " * 58
            right = ""
            if faulted is not None:
                f = next(x for x in faulted.phases if x.kind == kind)
                held = faulted.counts["contacts" if kind == "contact_upsert" else "lines"]
                right = (
                    f"{f.enqueue + f.dispatch:>9.1f} {f.statuses.get('sent', 0):>8,} "
                    f"{f.statuses.get('dead', 0):>5,} {held:>11,}"
                )
            print(f"{left} | {right}")
    print(
        "ratio = achieved rate / ceiling (target >= 0.8); faults: enqueue + dispatch seconds, messages sent and dead "
        "(Raptor: parked at most once), and what the emulator holds (contacts, order lines)"
    )


def _warn_one_by_one(args: argparse.Namespace) -> None:
    """Actito takes a batch below its ``bulk_threshold`` one call per message, at 100 calls a minute."""
    from hub_plugins.actito.settings import ActitoSettings

    threshold = ActitoSettings.model_fields["bulk_threshold"].default
    if min(args.contacts, args.lines // args.lines_per_order) < threshold:
        print(
            f"  note: fewer than {threshold} contacts or orders go one by one, not by import, at 100 calls a "
            "minute (an order is 1 + its lines): this takes minutes"
        )


def _latency(values: list[str]) -> dict[str, float]:
    latency = dict(DEFAULT_LATENCY)
    for value in values:
        name, _, seconds = value.partition("=")
        latency[name.strip()] = float(seconds)
    return latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--destination", choices=["voyado", "agillic", "actito", "raptor", "all"], default="all")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=300_000, help="order lines (orders = lines / lines-per-order)")
    parser.add_argument("--lines-per-order", type=int, default=3)
    parser.add_argument("--fault-rate", type=float, default=0.2, help="transient faults in the second run")
    parser.add_argument("--skip-faults", action="store_true")
    parser.add_argument("--skip-clean", action="store_true")
    parser.add_argument(
        "--latency", action="append", default=[], metavar="NAME=SECONDS",
        help=f"the emulator's processing time per call (default {DEFAULT_LATENCY})",
    )  # fmt: skip
    parser.add_argument(
        "--rate", action="append", default=[], metavar="NAME=PER_SECOND",
        help="hub's delivery.rate_limit for a destination (default: Voyado 200, the others their plugin's default)",
    )  # fmt: skip
    parser.add_argument("--import-seconds", type=float, default=5.0, help="Actito emulator: seconds an import runs")
    parser.add_argument("--keep", action="store_true", help="keep the projects and databases for inspection")
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds a phase may take")
    args = parser.parse_args()
    from hub.logging import configure_logging

    configure_logging(level="ERROR")
    chosen = targets(_latency(args.latency), args.import_seconds)
    for value in args.rate:
        name, _, per_second = value.partition("=")
        target = chosen[name.strip()]
        chosen[target.name] = replace(target, delivery={**target.delivery, "rate_limit": float(per_second)})
    names = list(chosen) if args.destination == "all" else [args.destination]
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-deliver-"))
    rate = args.fault_rate
    print(
        f"{args.contacts:,} contacts, {args.lines:,} order lines; emulators in their own processes; "
        f"cpus: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}"
    )
    runs: list[Run] = []
    try:
        for name in names:
            target = chosen[name]
            print(f"\n{name}: {target.limits.source}; hub: {target.delivery}; emulator: {target.emulator}")
            if name == "actito":
                _warn_one_by_one(args)
            if not args.skip_clean:
                runs.append(run(target, args, workdir, faults=None))
                _print_run(runs[-1])
            if not args.skip_faults:
                faults = {
                    "error_rate": rate * 0.75,
                    "rate_429": rate * 0.2,
                    "retry_after": None,
                    "timeout_rate": rate * 0.05,
                    "hang_seconds": target.fault_read_timeout + 1,
                    "seed": 1,
                }
                runs.append(run(target, args, workdir, faults=faults))
                _print_run(runs[-1])
        _summary(runs, args)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if any(result.problems for result in runs):
        raise SystemExit("some checks failed (CHECK FAILED above)")


if __name__ == "__main__":
    main()
