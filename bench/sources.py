"""Source benchmark: a Shopify store's first load and an incremental sync, by the bulk path, the paginated path and
the files source, on the same data.

    python bench/sources.py [--customers 100000] [--orders 300000] [--change 0.01] [--paths bulk,pages,files]
                            [--refund-rate 0.04] [--restore-rate 0] [--bucket 1000] [--seed 7] [--keep]
    python bench/sources.py --customers 2000 --orders 6000          # a quick run

The Shopify emulator runs in its own process (as the remote API would), with ``customers`` customers and
``orders`` orders (1 to 4 lines, ``refund-rate`` of them refunded, 10 % by guests) generated there; it also writes
the same records as JSON Lines for the files source, in the shape the Shopify source yields (its webhooks' REST
shape), so all three paths load the same data through the same mappings (``mappings/shopify_customers.yaml`` and
``shopify_orders.yaml``). Each path syncs a temporary SQLite project with hub's real ``SyncEngine``:

- **bulk**: ``first_load: bulk``: one bulk operation per stream, its JSONL result streamed; refund lines by refund
  id, 25 refunds a query (a bulk query cannot nest them);
- **pages**: ``first_load: pages``: ``customers`` 100 a page, ``orders`` 8 a page (Shopify's 1000-point cap);
- **files**: the files source on ``customers-*.jsonl`` and ``orders-*.jsonl`` (``key: id``, ``updated_at``).

Then ``change`` of the customers and of the orders change, through the emulator's control API
(``POST /_emulator/records/{stream}``: a new last name and e-mail consent, a new financial status), and each path
syncs again: the Shopify paths from their cursors (``updated_at:>=``, pages), the files source from a new
export of the changed records only (``*-0001.jsonl``; files already read are skipped by their hash). Its cost must
follow the change, not the store: records read, requests and time, incremental against first load.

**Requests** are what the emulator process served the source (GraphQL queries, bulk polls every second, bulk
downloads), **MB** the bytes of their answers, **server s** the time the emulator spent on them and on running
bulk operations (**bulk run s**, graphql-core over the whole store, which hub waits for); ``s - server s`` is
roughly hub's own time. The two share the machine's cores, whose load average is printed.
**Points** is the query cost the shop charged. The emulator's cost bucket is off by default
(``--restore-rate 0``): the bench measures hub, not a plan's limit. The paginated path's floor under each plan's
restore rate (Standard 100, Advanced 200, Plus 1000 points/s) is printed from its points, and
``--restore-rate 1000`` runs it paced for real.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
PLANS = {"Standard": 100, "Advanced": 200, "Plus": 1000}  # restore rates, points/s (api-notes: commerce-apis.md)
STREAMS = ("customers", "orders")
FIRST_NAMES = ("Kari", "Ola", "Ingrid", "Lars", "Sofie", "Emil", "Nora", "Jonas", "Maja", "Henrik", "Ella", "Magnus")
LAST_NAMES = ("Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Berg", "Dahl", "Lie", "Haugen", "Bakken")
SKUS = 500
EPOCH = datetime(2023, 1, 1, tzinfo=UTC)
SPAN = 2 * 365 * 86_400  # seconds of history
CHANGE_CHUNK = 1000  # records per control-API request


# ---------------------------------------------------------------------------------------------- the shop


def populate(state: Any, customers: int, orders: int, *, seed: int, refund_rate: float) -> None:
    """Fill an emulated shop with generated customers and orders (its own record shape, ids from its counter)."""
    rng = random.Random(seed)
    prices = [f"{rng.randint(49, 4999)}.00" for _ in range(SKUS)]
    people: list[int] = []
    for n in range(customers):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        created = EPOCH + timedelta(seconds=rng.randrange(SPAN))
        subscribed = rng.random() < 0.55
        ident = state.next_id()
        people.append(ident)
        state.records["customers"][ident] = {
            "id": ident,
            "email": f"{first}.{last}.{n}@example.no".lower(),
            "phone": f"+474{n:07d}",
            "first_name": first,
            "last_name": last,
            "state": "enabled",
            "tags": [],
            "locale": "nb",
            "email_marketing_consent": {
                "state": "subscribed" if subscribed else "not_subscribed",
                "opt_in_level": "single_opt_in",
                "consent_updated_at": created if subscribed else None,
            },
            "sms_marketing_consent": None,
            "default_address": {"address1": f"Storgata {n % 90 + 1}", "city": "Oslo", "zip": "0155"},
            "created_at": created,
            "updated_at": created,
        }
    for n in range(orders):
        guest = rng.random() < 0.1
        customer = None if guest else state.records["customers"][rng.choice(people)]
        created = EPOCH + timedelta(seconds=rng.randrange(SPAN))
        lines = []
        for _ in range(rng.randint(1, 4)):
            sku = rng.randrange(SKUS)
            lines.append(
                {
                    "id": state.next_id(),
                    "sku": f"SKU-{sku:05d}",
                    "title": f"Product {sku}",
                    "quantity": rng.randint(1, 3),
                    "price": prices[sku],
                    "total_discount": "0.00",
                    "variant_id": None,
                    "product_id": None,
                }
            )
        total = sum(int(line["price"][:-3]) * line["quantity"] for line in lines)
        refunds, updated = [], created
        if rng.random() < refund_rate:
            updated = created + timedelta(days=rng.randint(2, 30))
            item = {"id": state.next_id(), "line_item_id": lines[0]["id"], "quantity": 1}
            refunds.append({"id": state.next_id(), "created_at": updated, "refund_line_items": [item]})
        ident = state.next_id()
        state.records["orders"][ident] = {
            "id": ident,
            "name": f"#{1000 + n}",
            "email": f"guest{n}@example.no" if customer is None else customer["email"],
            "phone": None,
            "customer_id": None if customer is None else customer["id"],
            "created_at": created,
            "updated_at": updated,
            "processed_at": created,
            "cancelled_at": None,
            "currency": "NOK",
            "financial_status": "partially_refunded" if refunds else "paid",
            "total_price": f"{total}.00",
            "current_total_price": f"{total}.00",
            "total_discounts": "0.00",
            "discount_codes": [],
            "source_name": "web",
            "line_items": lines,
            "refunds": refunds,
        }


def export(state: Any, stream: str, records: list[dict[str, Any]], path: Path) -> int:
    """Write records as JSON Lines in the shape the Shopify source yields them (REST, as its webhooks carry)."""
    from hub_plugins.shopify.normalise import REST_CONVERTERS

    convert = REST_CONVERTERS[stream]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for record in records:
            out.write(orjson.dumps(convert(state.rest(stream, record))) + b"\n")
    return len(records)


class Meter:
    """ASGI wrapper that counts what the source asked of the emulator, and serves ``/_bench/...`` for the bench."""

    def __init__(self, app: Any, state: Any) -> None:
        self.app, self.state = app, state
        self.reset()
        charge, refund = state.charge, state.refund

        def charged(requested: int) -> tuple[bool, dict[str, Any]]:
            ran, status = charge(requested)
            self.points += requested if ran else 0
            return ran, status

        def refunded(points: float) -> dict[str, Any]:
            self.points -= max(0.0, points)
            return refund(points)

        state.charge, state.refund = charged, refunded  # the shop's own bookkeeping, counted on the way
        from hub_plugins.shopify import _schema

        run_bulk = _schema.run_bulk

        def timed(*args: Any) -> None:  # the thread that runs a bulk operation: emulator time no request shows
            started = time.perf_counter()
            try:
                run_bulk(*args)
            finally:
                self.bulk_seconds += time.perf_counter() - started

        _schema.run_bulk = timed

    def reset(self) -> None:
        self.requests: dict[str, int] = {"graphql": 0, "bulk download": 0}
        self.bytes = 0
        self.seconds = 0.0
        self.bulk_seconds = 0.0
        self.points = 0.0
        self.throttled_at_reset = self.state.throttled

    def figures(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "bytes": self.bytes,
            "server_seconds": self.seconds + self.bulk_seconds,
            "bulk_seconds": self.bulk_seconds,
            "points": round(self.points),
            "throttled": self.state.throttled - self.throttled_at_reset,
        }

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/_emulator"):
            await self.app(scope, receive, send)
            return
        if path.startswith("/_bench/"):
            await self._bench(scope, receive, send)
            return
        kind = "bulk download" if path.startswith("/_bulk/") else "graphql"
        started = time.perf_counter()

        async def counted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                self.bytes += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            self.requests[kind] += 1
            self.seconds += time.perf_counter() - started

    async def _bench(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        ask = orjson.loads(body) if body else {}
        what = scope["path"].removeprefix("/_bench/")
        if what == "meter":
            answer: Any = self.figures()
            if scope["method"] == "DELETE":
                self.reset()
        elif what == "sample":  # keys of a random share of a stream's records
            keys = sorted(self.state.records[ask["stream"]])
            answer = [str(k) for k in random.Random(ask["seed"]).sample(keys, ask["count"])]
        else:  # export: those records, as they are now, to a file
            stream = ask["stream"]
            with self.state.lock:
                records = [self.state.records[stream][int(key)] for key in ask["keys"]]
            answer = export(self.state, stream, records, Path(ask["path"]))
        payload = orjson.dumps(answer)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def serve(spec: dict[str, Any]) -> None:
    """The emulator process: generate the shop, write it for the files source, serve it metered until killed."""
    import uvicorn

    from hub_plugins.shopify import emulator

    restore = float(spec["restore_rate"]) or 1e12  # 0: no bucket to speak of
    app = emulator.app(bucket_max=float(spec["bucket"]), restore_rate=restore)
    state = app.state.shopify
    populate(state, spec["customers"], spec["orders"], seed=spec["seed"], refund_rate=spec["refund_rate"])
    files = Path(spec["files"])
    for stream in STREAMS:
        export(state, stream, list(state.records[stream].values()), files / f"{stream}-0000.jsonl")
    uvicorn.run(Meter(app, state), host="127.0.0.1", port=spec["port"], log_level="warning", lifespan="off")


class Shop:
    """The emulator process, and the bench's line to it."""

    def __init__(self, args: argparse.Namespace, files: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        spec = {
            "port": port,
            "customers": args.customers,
            "orders": args.orders,
            "seed": args.seed,
            "refund_rate": args.refund_rate,
            "bucket": args.bucket,
            "restore_rate": args.restore_rate,
            "files": str(files),
        }
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([sys.executable, __file__, "serve", json.dumps(spec)])
        self.http = httpx.Client(base_url=self.url, timeout=600)
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("the Shopify emulator process failed to start")
            try:
                self.meter(reset=True)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit("the Shopify emulator did not start within an hour")

    def meter(self, *, reset: bool = False) -> dict[str, Any]:
        return dict(self.http.request("DELETE" if reset else "GET", "/_bench/meter").raise_for_status().json())

    def change(self, stream: str, count: int, seed: int) -> list[str]:
        """Change ``count`` random records of ``stream`` through the control API; their keys."""
        keys = self.http.post("/_bench/sample", json={"stream": stream, "count": count, "seed": seed}).json()
        rng = random.Random(seed)
        for start in range(0, len(keys), CHANGE_CHUNK):
            if stream == "customers":
                records = [
                    {
                        "_key": key,
                        "last_name": rng.choice(LAST_NAMES),
                        "email_marketing_consent": {
                            "state": "unsubscribed",
                            "opt_in_level": "single_opt_in",
                            "consent_updated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        },
                    }
                    for key in keys[start : start + CHANGE_CHUNK]
                ]
            else:
                records = [{"_key": key, "financial_status": "refunded"} for key in keys[start : start + CHANGE_CHUNK]]
            self.http.post(f"/_emulator/records/{stream}", json={"records": records}).raise_for_status()
        return list(keys)

    def export(self, stream: str, keys: list[str], path: Path) -> None:
        self.http.post("/_bench/export", json={"stream": stream, "keys": keys, "path": str(path)}).raise_for_status()

    def stop(self) -> None:
        self.http.close()
        self.proc.kill()
        self.proc.wait()


# ---------------------------------------------------------------------------------------------- hub's side


@dataclass(slots=True)
class Sync:
    path: str
    phase: str
    read: int
    loaded: int
    rejected: int
    seconds: float
    meter: dict[str, Any] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(self.meter.get("requests", {}).values())


def project(workdir: Path, path: str, url: str, files: Path) -> Any:
    """A Hub on a new SQLite project whose connector ``shop`` reads the store by ``path``."""
    from hub.app import Hub
    from hub.plugins import make_plugin_manager
    from hub.schema import upgrade
    from hub_plugins.shopify.emulator import settings

    mapping = {stream: str(ROOT / "mappings" / f"shopify_{stream}.yaml") for stream in STREAMS}
    if path == "files":
        streams = {
            s: {"paths": [str(files / f"{s}-*.jsonl")], "key": "id", "updated_at": "updated_at"} for s in STREAMS
        }
        connector = {"plugin": "files", "mapping": mapping, "settings": {"streams": streams}}
    else:
        shop = {**settings(url), "streams": list(STREAMS), "first_load": path, "bulk_poll_interval": 1.0}
        connector = {"plugin": "shopify", "mapping": mapping, "settings": shop}
    home = workdir / f"project-{path}"
    home.mkdir(parents=True)
    config = {
        "database": {"url": f"sqlite:///{home / 'hub.db'}"},
        "timezone": "Europe/Oslo",
        "batch_size": 5000,
        "connectors": {"shop": connector},
    }
    (home / "hub.yaml").write_text(json.dumps(config), encoding="utf-8")
    hub = Hub.load(home / "hub.yaml", pm=make_plugin_manager(), project_dir=ROOT)
    upgrade(hub.engine)
    return hub


def sync(hub: Any, shop: Shop, path: str, phase: str) -> Sync:
    from hub.engine.run import SyncEngine

    shop.meter(reset=True)
    started = time.perf_counter()
    summary = SyncEngine(hub).sync()
    seconds = time.perf_counter() - started
    if not summary.ok:
        raise SystemExit(f"{path} {phase}: {[s.error for s in summary.streams if s.error]}")
    result = Sync(
        path=path,
        phase=phase,
        read=summary.records_read,
        loaded=sum(s.loaded for s in summary.streams),
        rejected=sum(s.rejected for s in summary.streams),
        seconds=seconds,
        meter=shop.meter() if path != "files" else {},
    )
    _print(result)
    return result


def model_counts(hub: Any) -> tuple[int, int, int]:
    with hub.engine.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(sa.text(query)).scalar_one()
            for query in (
                "SELECT count(*) FROM customer WHERE merged_into IS NULL",
                "SELECT count(*) FROM orders",
                "SELECT count(*) FROM order_line",
            )
        )


def close(hub: Any) -> None:
    for connector in getattr(hub, "_connectors", {}).values():
        if hasattr(connector, "close"):
            connector.close()
    hub.close()


# ---------------------------------------------------------------------------------------------- the report

_HEAD = (
    f"{'path':<6} {'phase':<12} {'read':>9} {'loaded':>9} {'requests':>9} {'MB':>7} {'points':>10} "
    f"{'s':>8} {'server s':>9} {'bulk run s':>10} {'rec/s':>8}"
)


def _print(r: Sync) -> None:
    m = r.meter
    mb = f"{m['bytes'] / 1e6:.1f}" if m else "-"
    points = f"{m['points']:,}" if m else "-"
    server = f"{m['server_seconds']:.1f}" if m else "-"
    bulk = f"{m['bulk_seconds']:.1f}" if m else "-"
    requests = f"{r.requests:,}" if m else "-"
    print(
        f"{r.path:<6} {r.phase:<12} {r.read:>9,} {r.loaded:>9,} {requests:>9} {mb:>7} {points:>10} "
        f"{r.seconds:>8.1f} {server:>9} {bulk:>10} {r.read / max(r.seconds, 1e-9):>8,.0f}",
        flush=True,
    )


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.4f}" if b else "-"


def report(runs: dict[tuple[str, str], Sync], changed: int, store: int) -> None:
    print(f"\nincremental / first load (changed {changed:,} of {store:,} records = {changed / store:.2%}):")
    print(f"{'path':<6} {'read':>8} {'requests':>9} {'time':>8}   first-load floor under the cost bucket")
    for path in ("bulk", "pages", "files"):
        full, incremental = runs.get((path, "first load")), runs.get((path, "incremental"))
        if full is None or incremental is None:
            continue
        requests = _ratio(incremental.requests, full.requests) if full.meter else "-"
        floor = ""
        if full.meter and path == "pages":
            floor = ", ".join(f"{plan} {full.meter['points'] / rate:,.0f} s" for plan, rate in PLANS.items())
        elif full.meter:
            floor = "none: a bulk operation costs 10 points; refund lines " + f"{full.meter['points']:,} points"
        print(
            f"{path:<6} {_ratio(incremental.read, full.read):>8} {requests:>9} "
            f"{_ratio(incremental.seconds, full.seconds):>8}   {floor}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=300_000)
    parser.add_argument("--change", type=float, default=0.01, help="share of customers and of orders changed")
    parser.add_argument("--paths", default="bulk,pages,files", help="which of bulk, pages, files to run")
    parser.add_argument("--refund-rate", type=float, default=0.04, help="share of orders with a refund")
    parser.add_argument("--restore-rate", type=float, default=0.0, help="cost bucket restore, points/s; 0: off")
    parser.add_argument("--bucket", type=float, default=1000.0, help="cost bucket size, points")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the projects and files for inspection")
    args = parser.parse_args()
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if set(paths) - {"bulk", "pages", "files"}:
        parser.error("--paths takes bulk, pages and files")
    from hub.logging import configure_logging

    configure_logging(level="ERROR")
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-sources-"))
    files = workdir / "files"
    print(
        f"{args.customers:,} customers, {args.orders:,} orders ({args.refund_rate:.0%} refunded); change "
        f"{args.change:.1%}; cost bucket {'off' if not args.restore_rate else f'{args.restore_rate:g} points/s'}; "
        f"cpus {os.cpu_count()}, load average {_load()}",
        flush=True,
    )
    started = time.perf_counter()
    shop = Shop(args, files)
    print(f"emulator process ready in {time.perf_counter() - started:.0f} s (generated, and written for files)\n")
    runs: dict[tuple[str, str], Sync] = {}
    hubs: dict[str, Any] = {}
    try:
        print(_HEAD)
        for path in paths:
            hubs[path] = project(workdir, path, shop.url, files)
            runs[path, "first load"] = sync(hubs[path], shop, path, "first load")
        changed = 0
        for n, stream in enumerate(STREAMS):
            count = max(1, round((args.customers if stream == "customers" else args.orders) * args.change))
            keys = shop.change(stream, count, seed=args.seed + n)
            shop.export(stream, keys, files / f"{stream}-0001.jsonl")
            changed += len(keys)
        for path in paths:
            runs[path, "incremental"] = sync(hubs[path], shop, path, "incremental")
        counts = {path: model_counts(hub) for path, hub in hubs.items()}
        print("\nunified model (customers, orders incl. returns, order lines): " + "; ".join(
            f"{path} {c[0]:,} / {c[1]:,} / {c[2]:,}" for path, c in counts.items()
        ))  # fmt: skip
        report(runs, changed, args.customers + args.orders)
        print(f"\nload average at the end: {_load()}")
    finally:
        for hub in hubs.values():
            close(hub)
        shop.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _load() -> str:
    return " ".join(f"{n:.1f}" for n in os.getloadavg())


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(json.loads(sys.argv[2]))
    else:
        main()
