"""Delivery benchmark: hub's outbox delivery of N contact upserts to the Voyado emulator against a plain httpx loop.

    python bench/deliver.py [--contacts 100000] [--concurrency 8] [--fault-rate 0.2]

The emulator runs in its own process (as a remote API would), with its rate limit off. Both contenders send the
same requests for a contact Engage does not know yet (look it up by e-mail, then create it), one contact per
request, with the same concurrency over one pooled httpx client:

- plain: a thread pool looping over the contacts, no bookkeeping at all;
- hub: `enqueue_changes` (outbound mapping, hashes, outbox rows) and then `deliver` (claims, rate limiter,
  outcome bookkeeping, remote ids) on SQLite.

Target: hub's dispatch at least 0.8 of the plain loop's rate. Then again with transient faults injected by the
emulator (5xx, 429 with Retry-After, timeouts before processing): every message must end sent; the time is
reported.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "emulator-key"
HEADERS = {"apikey": API_KEY, "User-Agent": "bench/1.0", "Content-Type": "application/json"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_emulator(port: int, faults: dict[str, float]) -> subprocess.Popen[bytes]:
    code = textwrap.dedent(
        f"""
        import uvicorn
        from hub.sandbox import FaultInjector, Faults
        from hub_plugins.voyado.emulator import app
        faults = Faults(**{faults!r}, seed=1)
        uvicorn.run(FaultInjector(app(rate_limit=None), faults), host="127.0.0.1", port={port},
                    log_level="error", access_log=False)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_emulator/state", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the emulator did not start")


def _contacts(n: int) -> list[dict[str, str]]:
    return [
        {"email": f"person{i}@example.com", "firstName": f"First{i}", "lastName": f"Last{i}", "contactType": "Member"}
        for i in range(n)
    ]


def plain_loop(base_url: str, n: int, concurrency: int) -> float:
    """Look up then create each contact with a bare httpx client and a thread pool; return seconds."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with httpx.Client(base_url=base_url, headers=HEADERS, limits=limits, timeout=30) as client:

        def one(contact: dict[str, str]) -> None:
            found = client.get("/api/v2/contacts/id", params={"email": contact["email"]})
            if found.status_code == 404:
                client.post("/api/v2/contacts", json=contact).raise_for_status()

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            for _ in pool.map(one, _contacts(n), chunksize=64):
                pass
        return time.perf_counter() - started


def _project(workdir: Path, base_url: str, concurrency: int, read_timeout: float) -> Path:
    project = workdir / "project"
    if project.exists():
        shutil.rmtree(project)
    (project / "var").mkdir(parents=True)
    (project / "mappings").symlink_to(ROOT / "mappings")
    (project / "hub.yaml").write_text(
        textwrap.dedent(
            f"""
            database: {{url: "sqlite:///var/hub.db"}}
            batch_size: 5000
            connectors:
              voyado:
                plugin: voyado
                mapping: mappings/voyado.yaml
                settings: {{base_url: "{base_url}", api_key: "{API_KEY}"}}
                delivery:
                  concurrency: {concurrency}
                  rate_limit: 100000
                  read_timeout: {read_timeout}
                  backoff_initial: 1s
                  backoff_max: 5s
                  max_attempts: 30
            """
        ),
        encoding="utf-8",
    )
    return project


def _load_customers(engine: sa.Engine, n: int) -> None:
    """N customers written straight into the unified model, set-based (this benchmark is about delivery)."""
    now = datetime.now(UTC).isoformat()
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO customer (email, first_name, last_name, is_b2b, source, source_rank, created_at, updated_at)"
            " VALUES (?, ?, ?, 0, 'bench', 0, ?, ?)",
            [(f"person{i}@example.com", f"First{i}", f"Last{i}", now, now) for i in range(n)],
        )


def hub_delivery(workdir: Path, base_url: str, n: int, concurrency: int, read_timeout: float) -> dict[str, float]:
    from hub.app import Hub
    from hub.delivery.changes import enqueue_changes
    from hub.delivery.dispatcher import deliver
    from hub.schema import upgrade

    project = _project(workdir, base_url, concurrency, read_timeout)
    hub = Hub.load(project / "hub.yaml", project_dir=project)
    upgrade(hub.engine)
    _load_customers(hub.engine, n)

    started = time.perf_counter()
    enqueue_changes(hub, "voyado")
    enqueued = time.perf_counter() - started

    started = time.perf_counter()
    passes = 0
    while True:
        passes += 1
        summary = deliver(hub, ["voyado"])
        with hub.engine.connect() as conn:
            open_rows, next_due = conn.execute(
                sa.text("SELECT count(*), min(next_attempt_at) FROM message WHERE status IN ('pending', 'in_flight')")
            ).one()
        if not open_rows or passes > 50:
            break
        time.sleep(0.5)
    dispatched = time.perf_counter() - started
    with hub.engine.connect() as conn:
        statuses = dict(conn.execute(sa.text("SELECT status, count(*) FROM message GROUP BY status")).all())
    hub.engine.dispose()
    del summary, next_due
    return {"enqueue": enqueued, "dispatch": dispatched, "passes": passes, **statuses}


def _emulator_counts(base_url: str) -> tuple[int, int]:
    state = httpx.get(f"{base_url}/_emulator/state", timeout=60).json()
    return len(state["contacts"]), state["requests"]


def _reset(base_url: str) -> None:
    httpx.post(f"{base_url}/_emulator/reset", timeout=30).raise_for_status()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--fault-rate", type=float, default=0.2, help="transient faults in the second run")
    parser.add_argument("--skip-faults", action="store_true")
    args = parser.parse_args()
    n, concurrency = args.contacts, args.concurrency
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-deliver-"))
    print(f"{n:,} contact upserts, concurrency {concurrency}, emulator in its own process (cpus: {os.cpu_count()})")
    try:
        port = _free_port()
        emulator = _start_emulator(port, {})
        base_url = f"http://127.0.0.1:{port}"
        try:
            plain = plain_loop(base_url, n, concurrency)
            contacts, _ = _emulator_counts(base_url)
            assert contacts == n, f"plain loop created {contacts} contacts"
            _reset(base_url)
            result = hub_delivery(workdir, base_url, n, concurrency, read_timeout=30)
            contacts, _ = _emulator_counts(base_url)
            assert contacts == n and result.get("sent") == n, (contacts, result)
        finally:
            emulator.kill()
        plain_rate, hub_rate = n / plain, n / result["dispatch"]
        overall = n / (result["enqueue"] + result["dispatch"])
        print(f"plain httpx loop:   {plain:7.1f} s  {plain_rate:8,.0f} contacts/s")
        print(f"hub dispatch:       {result['dispatch']:7.1f} s  {hub_rate:8,.0f} contacts/s")
        print(f"hub enqueue:        {result['enqueue']:7.1f} s  (change detection, outbound mapping, outbox rows)")
        print(
            f"ratio dispatch/plain: {hub_rate / plain_rate:.2f}  (enqueue+dispatch)/plain: {overall / plain_rate:.2f}"
        )

        if not args.skip_faults:
            rate = args.fault_rate
            # 429s come without Retry-After here: with it, each one pauses the whole destination (as it must), and
            # thousands of random 429s would measure the pause, not the delivery.
            faults = {
                "error_rate": rate * 0.75,
                "rate_429": rate * 0.2,
                "retry_after": None,
                "timeout_rate": rate * 0.05,
                "hang_seconds": 2,
            }
            port = _free_port()
            emulator = _start_emulator(port, faults)
            base_url = f"http://127.0.0.1:{port}"
            try:
                result = hub_delivery(workdir, base_url, n, concurrency, read_timeout=1)
                contacts, _ = _emulator_counts(base_url)
            finally:
                emulator.kill()
            total = result["enqueue"] + result["dispatch"]
            print(
                f"with {rate:.0%} transient faults ({faults}): {result.get('sent', 0):,}/{n:,} sent, "
                f"{contacts:,} contacts at the emulator, {result['passes']} passes, {total:.1f} s "
                f"(dispatch {result['dispatch']:.1f} s)"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
