"""kill -9 in the middle of a sync, then run it again: the result equals one clean run, nothing lost or doubled."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub_plugins.demo.generator import generate

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def make_project(base: Path, data: Path) -> Path:
    base.mkdir()
    (base / "mappings").symlink_to(ROOT / "mappings")
    (base / "var").mkdir()
    (base / "var" / "demo").symlink_to(data)
    text = (ROOT / "config" / "hub.yaml").read_text(encoding="utf-8")
    assert "batch_size: 5000" in text
    (base / "hub.yaml").write_text(text.replace("batch_size: 5000", "batch_size: 25"), encoding="utf-8")
    return base


def hub(project: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HUB_CONFIG": str(project / "hub.yaml")}
    return subprocess.Popen(
        [sys.executable, "-m", "hub", "--log-json", *args],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def run_to_end(project: Path, *args: str) -> None:
    proc = hub(project, *args)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr.decode()


def kill_when(project: Path, stream: str, batches: int) -> None:
    """Start a sync and SIGKILL it once ``stream`` has committed ``batches`` batches."""
    proc = hub(project, "sync")
    db = project / "var" / "hub.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            proc.communicate()
            pytest.fail("the sync finished before it could be killed; make the data set larger")
        try:
            with sqlite3.connect(db, timeout=5) as conn:
                row = conn.execute(
                    "SELECT batches FROM sync_run WHERE stream = ? AND status = 'running'", (stream,)
                ).fetchone()
        except sqlite3.OperationalError:
            row = None
        if row and row[0] >= batches:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            return
        time.sleep(0.005)
    pytest.fail("the sync never reached the kill point")


def snapshot(project: Path) -> dict[str, object]:
    """The loaded model with surrogate ids replaced by natural keys, so two databases can be compared."""
    with sqlite3.connect(project / "var" / "hub.db") as conn:
        keys: dict[int, frozenset[tuple[str, str, str]]] = {}
        for customer_id, kind, system, value in conn.execute("SELECT customer_id, kind, system, value FROM identity"):
            keys[customer_id] = keys.get(customer_id, frozenset()) | {(kind, system, value)}
        live = {row[0] for row in conn.execute("SELECT id FROM customer WHERE merged_into IS NULL")}
        return {
            "customers": sorted(sorted(keys[c]) for c in live if c in keys),
            "customers_without_keys": len(live - set(keys)),
            "orders": sorted(
                (src, ext, str(total), placed, tuple(sorted(keys.get(cid, ()))))
                for src, ext, total, placed, cid in conn.execute(
                    "SELECT source, external_id, total, placed_at, customer_id FROM orders"
                )
            ),
            "lines": conn.execute("SELECT count(*), sum(quantity), sum(line_total) FROM order_line").fetchone(),
            "consents": sorted(
                (tuple(sorted(keys.get(cid, ()))), channel, status)
                for cid, channel, status in conn.execute("SELECT customer_id, channel, status FROM consent")
            ),
            "consent_events": conn.execute("SELECT count(*) FROM consent_event").fetchone(),
            "rejects": sorted(r[0] for r in conn.execute("SELECT fingerprint FROM reject")),
            "products": conn.execute("SELECT count(*), count(DISTINCT sku) FROM product").fetchone(),
            "cursors": sorted(conn.execute("SELECT connector, stream, cursor FROM sync_state")),
        }


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, customers=600, seed=11)
    return out


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, demo_data: Path) -> dict[str, object]:
    project = make_project(tmp_path_factory.mktemp("ref") / "p", demo_data)
    run_to_end(project, "db", "upgrade")
    run_to_end(project, "sync")
    return snapshot(project)


@pytest.mark.parametrize(("stream", "batches"), [("customers", 3), ("orders", 5), ("receipts", 20)])
def test_a_sync_killed_mid_stream_resumes_to_the_same_result(tmp_path, demo_data, reference, stream, batches):
    project = make_project(tmp_path / "p", demo_data)
    run_to_end(project, "db", "upgrade")
    kill_when(project, stream, batches)
    with sqlite3.connect(project / "var" / "hub.db") as conn:
        assert conn.execute("SELECT count(*) FROM sync_run WHERE status = 'running'").fetchone() == (1,)
    run_to_end(project, "sync")
    assert snapshot(project) == reference


def test_a_second_sync_of_the_same_files_changes_nothing(tmp_path, demo_data, reference):
    project = make_project(tmp_path / "p", demo_data)
    run_to_end(project, "db", "upgrade")
    run_to_end(project, "sync")
    run_to_end(project, "sync")
    assert snapshot(project) == reference
