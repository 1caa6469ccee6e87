"""Real-time benchmark: signed order webhooks into `hub run`, post-purchase triggers out at the Voyado emulator.

    python bench/realtime.py [--rate 50] [--seconds 30]

A fresh SQLite project in a temporary directory: a `webhook` connector taking Shopify `orders/create` bodies
(mappings/webshop_orders.yaml), a `voyado` destination pointed at the emulator, and a `post_purchase` trigger on
`order_placed`. The emulator runs in its own process (as Engage would be remote), its rate limit off, and stamps
each custom trigger call with the wall-clock time it arrived (a wrapper around its state's `add_trigger`, set up
in the emulator's process; the plugin itself is untouched). `hub run` runs as a subprocess, with its scheduled
audience and delivery passes an hour apart: only the real-time path (webhook -> audience pass -> deliver pass)
can bring a trigger out within seconds.

The client posts `--rate` signed webhooks a second for `--seconds` seconds, each a new order of a new customer,
from a pool of threads (so a slow answer does not delay the next send). For each order it measures the time from
the moment its request was sent to the moment the emulator received the trigger carrying that order's id, and
reports p50, p95, p99 and max, how many arrived, and the webhook answers' own latency. Then, from the daemon's
JSON log, how long its audience and deliver passes took: where the time goes.

Target (issue 5): p95 under 1 s on SQLite.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import math
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SECRET = "shpss_bench_0123456789abcdef"
API_KEY = "emulator-key"  # hub_plugins.voyado.emulator.DEFAULT_API_KEY
TRIGGER_ID = "post-purchase"
FIRST_ORDER = 7_100_000_000_000
SKUS = [("GRL-00001", "Gas grill", "2190.00"), ("ACC-00017", "Grill cover", "349.00"), ("ACC-00042", "Tongs", "99.00")]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = predicate()
            if found:
                return found
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"timed out after {timeout} s waiting for {what}")


def _start_emulator(port: int) -> subprocess.Popen[bytes]:
    """The emulator in its own process; each trigger call gets ``receivedEpoch``, a float wall-clock time."""
    code = textwrap.dedent(
        f"""
        import time
        import uvicorn
        from hub_plugins.voyado.emulator import app

        application = app(rate_limit=None)
        state = application.state.voyado
        original = state.add_trigger

        def add_trigger(trigger_id, contact_id, data):
            received = time.time()
            original(trigger_id, contact_id, data)
            with state.lock:
                for call in reversed(state.triggers):
                    if call["data"] is data:
                        call["receivedEpoch"] = received
                        break

        state.add_trigger = add_trigger
        uvicorn.run(application, host="127.0.0.1", port={port}, log_level="error", access_log=False)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    _wait_for(
        lambda: httpx.get(f"http://127.0.0.1:{port}/_emulator/state", timeout=2).status_code == 200, 20, "emulator"
    )
    return proc


def _config(voyado_url: str) -> dict[str, Any]:
    return {
        "database": {"url": "sqlite:///var/hub.db"},
        "timezone": "UTC",
        "connectors": {
            "shop": {
                "plugin": "webhook",
                "mapping": {"orders": str(ROOT / "mappings" / "webshop_orders.yaml")},
                "settings": {"secret": "${SHOP_WEBHOOK_SECRET}", "topics": {"orders/create": "orders"}},
            },
            "voyado": {
                "plugin": "voyado",
                "mapping": str(ROOT / "mappings" / "voyado.yaml"),
                "settings": {"base_url": voyado_url, "api_key": API_KEY, "store_external_id": "WEB"},
                "delivery": {"rate_limit": 1000, "backoff_initial": "1s", "backoff_max": "1s"},
            },
        },
        "triggers": {
            "post_purchase": {
                "on": "order_placed",
                "message_type": "post_purchase",
                "to": {"voyado": {"trigger_id": TRIGGER_ID}},
            }
        },
        "contact_pressure": {"message_types": {"post_purchase": {"priority": "triggered", "max_hold": "1d"}}},
        # An hour apart: a trigger that arrives within seconds came through the real-time path.
        "daemon": {"audience": {"every": "1h"}, "deliver": {"every": "1h"}, "shutdown_timeout": "10s"},
    }


def _order(n: int, rng: random.Random) -> dict[str, Any]:
    """A Shopify ``orders/create`` body of a new customer, the shape of the demo's web shop orders JSONL."""
    order_id = FIRST_ORDER + n
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    lines = rng.sample(SKUS, rng.randint(1, len(SKUS)))
    quantities = [rng.randint(1, 2) for _ in lines]
    total = sum(float(price) * q for (_, _, price), q in zip(lines, quantities, strict=True))
    return {
        "id": order_id,
        "name": f"#{n + 1001}",
        "created_at": now,
        "updated_at": now,
        "currency": "NOK",
        "total_price": f"{total:.2f}",
        "current_total_price": f"{total:.2f}",
        "total_discounts": "0.00",
        "financial_status": "paid",
        "customer": {
            "id": 9_000_000 + n,
            "email": f"bench.customer.{n}@example.no",
            "phone": None,
            "first_name": rng.choice(["Kari", "Ola", "Ingrid", "Lars", "Sofie", "Jonas"]),
            "last_name": rng.choice(["Nordmann", "Hansen", "Johansen", "Olsen", "Berg"]),
            "accepts_marketing": True,
            "accepts_marketing_updated_at": now,
        },
        "line_items": [
            {"id": order_id * 10 + i, "sku": sku, "title": title, "quantity": q, "price": price, "total_discount": "0"}
            for i, ((sku, title, price), q) in enumerate(zip(lines, quantities, strict=True))
        ],
    }


def _sign(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


def _order_id_of(data: dict[str, Any]) -> int | None:
    """The order's (external) id in a trigger's flattened data: the key that names it, whatever its prefix."""
    for key in ("order_external_id", "order.external_id", "orderExternalId"):
        if key in data:
            return int(data[key])
    for key, value in data.items():
        if "external_id" in key.lower() and "order" in key.lower() and str(value).isdigit():
            return int(value)
    return None


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered), max(1, math.ceil(q * len(ordered)))) - 1]  # nearest rank

    return {
        "p50": pick(0.50),
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": ordered[-1],
        "mean": statistics.fmean(ordered),
    }


def _line(label: str, values: list[float]) -> str:
    p = _percentiles(values)
    if not p:
        return f"{label:<34} (none)"
    return (
        f"{label:<34} p50 {p['p50'] * 1000:7.0f} ms  p95 {p['p95'] * 1000:7.0f} ms  p99 {p['p99'] * 1000:7.0f} ms"
        f"  max {p['max'] * 1000:7.0f} ms  (n={len(values)})"
    )


def _passes(log_path: Path) -> dict[str, list[dict[str, Any]]]:
    """The daemon's finished jobs from its JSON log, per job id."""
    jobs: dict[str, list[dict[str, Any]]] = {}
    for raw in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if event.get("event") == "job finished" or event.get("event") == "job failed":
            jobs.setdefault(str(event.get("job")), []).append(event)
    return jobs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=50.0, help="webhooks per second (default 50)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to post (default 30)")
    parser.add_argument("--wait", type=float, default=60.0, help="how long to wait for stragglers after (default 60)")
    parser.add_argument(
        "--retry",
        type=int,
        default=0,
        help="resend a webhook answered 503 up to N times, 1 s apart, as a shop would (latency from the first send)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary project (its log and database)")
    args = parser.parse_args()
    total = int(args.rate * args.seconds)

    base = Path(tempfile.mkdtemp(prefix="hub-bench-realtime-"))
    (base / "var").mkdir()
    emulator_port, hub_port = _free_port(), _free_port()
    voyado = f"http://127.0.0.1:{emulator_port}"
    env = {**os.environ, "SHOP_WEBHOOK_SECRET": SECRET}
    emulator = _start_emulator(emulator_port)
    daemon: subprocess.Popen[bytes] | None = None
    log_path = base / "daemon.log"
    try:
        config = base / "hub.yaml"
        config.write_text(json.dumps(_config(voyado), indent=1), encoding="utf-8")
        hub = [sys.executable, "-m", "hub"]
        subprocess.run([*hub, "db", "upgrade", "-c", str(config)], cwd=base, env=env, check=True, capture_output=True)
        with log_path.open("wb") as log_file:
            daemon = subprocess.Popen(
                [*hub, "--log-json", "run", "-c", str(config), "--http-port", str(hub_port)],
                cwd=base,
                env=env,
                stdout=log_file,
                stderr=log_file,
            )
        url = f"http://127.0.0.1:{hub_port}"
        _wait_for(lambda: httpx.get(f"{url}/readyz", timeout=2).status_code == 200, 30, "the daemon's /readyz")
        _wait_for(
            lambda: 'hub_job_runs_total{job="audience"' in httpx.get(f"{url}/metrics").text,
            30,
            "the start-up audience pass",
        )
        print(f"project {base}; emulator {voyado}; daemon {url}")
        print(f"posting {total} signed orders/create webhooks at {args.rate:g}/s for {args.seconds:g} s ...")

        rng = random.Random(5)
        bodies = [json.dumps(_order(n, rng)).encode() for n in range(total)]
        sent_at: dict[int, float] = {}
        answered: list[float] = []
        statuses: dict[int, int] = {}
        final: dict[int, int] = {}
        retried = [0]
        errors: list[str] = []
        lock = threading.Lock()
        local = threading.local()

        def post(n: int) -> None:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = httpx.Client(timeout=30)
            body = bodies[n]
            headers = {
                "Content-Type": "application/json",
                "X-Shopify-Topic": "orders/create",
                "X-Shopify-Hmac-Sha256": _sign(body),
                "X-Shopify-Webhook-Id": f"bench-{n}",
            }
            first_wall = time.time()
            for attempt in range(args.retry + 1):
                if attempt:
                    time.sleep(1.0)
                started = time.perf_counter()
                try:
                    answer = client.post(f"{url}/webhooks/shop", content=body, headers=headers)
                    status = answer.status_code
                except httpx.HTTPError as exc:
                    status = 0
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                took = time.perf_counter() - started
                with lock:
                    answered.append(took)
                    statuses[status] = statuses.get(status, 0) + 1
                    if attempt:
                        retried[0] += 1
                if status != 503:
                    break
            with lock:
                sent_at[FIRST_ORDER + n] = first_wall
                final[status] = final.get(status, 0) + 1

        t0 = time.perf_counter() + 0.2
        with ThreadPoolExecutor(max_workers=64, thread_name_prefix="poster") as pool:
            for n in range(total):
                delay = t0 + n / args.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(post, n)
        posting = time.perf_counter() - t0
        print(f"posted in {posting:.1f} s; answers: {dict(sorted(statuses.items()))}", end="")
        print(f"; {retried[0]} resends; final: {dict(sorted(final.items()))}" if args.retry else "")
        if errors:
            print(f"  {len(errors)} request errors, e.g. {errors[0]}")

        # The emulator stamped each arrival; poll only to know when they are all in.
        accepted = final.get(202, 0)
        deadline = time.monotonic() + args.wait
        triggers: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            state = httpx.get(f"{voyado}/_emulator/state", timeout=30).json()
            triggers = [t for t in state["triggers"] if t["triggerId"] == TRIGGER_ID]
            if len(triggers) >= accepted:
                break
            time.sleep(0.25)

        arrived: dict[int, float] = {}
        unmatched = 0
        for call in triggers:
            order_id = _order_id_of(call["data"])
            if order_id is None or "receivedEpoch" not in call:
                unmatched += 1
                continue
            arrived.setdefault(order_id, call["receivedEpoch"])  # the first one seen
        doubled = len(triggers) - unmatched - len(arrived)
        latencies = [arrived[o] - sent_at[o] for o in arrived if o in sent_at]

        print()
        print(f"triggers arrived: {len(arrived)} of {total} orders ({accepted} webhooks accepted)")
        if unmatched:
            print(f"  {unmatched} trigger calls without a recognisable order id; e.g. data {triggers[0]['data']}")
        if doubled:
            print(f"  {doubled} orders triggered more than once")
        print(_line("webhook sent -> trigger at ESP", latencies))
        print(_line("webhook HTTP answer", answered))
        p95 = _percentiles(latencies).get("p95")
        if p95 is not None:
            verdict = "met" if p95 < 1.0 and len(arrived) == total else "MISSED"
            print(f"target p95 < 1 s with every trigger arriving: {verdict}")

        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        pending = [line for line in metrics.splitlines() if line.startswith("hub_outbox_messages{")]
        if pending:
            print("outbox now: " + ", ".join(line.split("{", 1)[1] for line in pending))
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
        emulator.terminate()
        emulator.wait(timeout=10)

    # Where the time goes: the real-time passes the daemon ran during the run, from its log.
    jobs = _passes(log_path)
    print()
    for job in ("audience", "deliver"):
        runs = jobs.get(job, [])[1 if job == "audience" else 0 :]  # skip the start-up audience pass
        seconds = [float(r.get("seconds", 0)) for r in runs if "seconds" in r]
        print(_line(f"{job} pass duration (succeeded)", seconds))
        failures = [str(r.get("error", "")).splitlines()[0][:90] for r in runs if r.get("event") == "job failed"]
        if failures:
            common = max(set(failures), key=failures.count)
            print(f"  {len(failures)} {job} passes failed, {failures.count(common)} with: {common}")
        if job == "audience" and runs:
            keys = sorted({k for r in runs for k, v in r.items() if isinstance(v, int | float)} - {"seconds"})
            if keys:
                print(f"  figures logged per pass: {', '.join(keys)}")
    events = [json.loads(raw) for raw in log_path.read_text(errors="replace").splitlines() if raw.startswith("{")]
    problems: dict[str, int] = {}
    for event in events:
        if event.get("level") in ("warning", "error") and event.get("event") != "job failed":
            error = str(event.get("error") or "").splitlines()
            key = f"{event.get('event')}: {error[0][:70] if error else ''}"
            problems[key] = problems.get(key, 0) + 1
    for key, count in sorted(problems.items(), key=lambda kv: -kv[1]):
        print(f"daemon log, {count} x {key}")
    if args.keep:
        print(f"kept {base}")
    else:
        import shutil

        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
