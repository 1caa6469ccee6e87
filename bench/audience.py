"""Audience benchmark: full compute of the attributes, then 10 segments, for N customers on SQLite.

    python bench/audience.py [--customers 100000] [--seed 7] [--keep PATH]

Generates N customers with about 10 order lines each (3.3 orders of 3 lines on average, 5 % returns, three
years of history, 2,000 products in 20 groups with accessories and accessory relations) straight into a fresh
SQLite database with ``executemany`` of tuples, then times ``compute_attributes`` (full) and
``evaluate_segments`` over ten typical segments. Target: 100k customers (~1M lines) in well under 5 s for both,
cost growing no faster than linearly (compare ``--customers 100000`` with ``--customers 400000``).
"""

from __future__ import annotations

import argparse
import functools
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from hub.audience.attributes import compute_attributes
from hub.config._audience import AttributesConfig, SegmentConfig
from hub.db import make_engine
from hub.schema import upgrade

print = functools.partial(print, flush=True)  # progress shows even when piped
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
GROUPS = [f"group{g:02d}" for g in range(20)]
PRODUCTS = 2000
SEGMENTS = {
    "tier_a": 'tier == "A"',
    "tier_a_lapsing": 'tier == "A" and days_since_last_order > 90',
    "champions": 'rfm_segment == "champions"',
    "at_risk": 'rfm_segment in ["at_risk", "cannot_lose"]',
    "new_customers": "orders_lifetime == 1 and days_since_first_order <= 30",
    "grill_owners_no_accessory": 'owns("group01") and not has_accessory_for("group01")',
    "recent_group02": 'bought(group="group02", within="30d")',
    "overdue": "overdue_factor >= 1.5 and orders_lifetime >= 3",
    "high_clv": "clv_predicted > 500",
    "web_loyal": 'favourite_channel == "web" and orders_window >= 3',
}


def _stamp(seconds: np.ndarray) -> list[str]:
    """SQLAlchemy's SQLite storage format for UTC datetimes, from seconds since the epoch."""
    base = np.datetime64("1970-01-01T00:00:00", "us")
    text = np.datetime_as_string(base + (seconds * 1e6).astype("timedelta64[us]"), unit="us")
    return [value.replace("T", " ") for value in text.tolist()]


def generate(path: Path, customers: int, seed: int) -> tuple[int, int]:
    """Write the data set into the (migrated) database at ``path``; returns (orders, order lines)."""
    rng = np.random.default_rng(seed)
    now_s = NOW.timestamp()
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    created = _stamp(np.full(1, now_s - 4 * 365 * 86400))[0]
    db.executemany(
        "INSERT INTO customer (id, email, member_no, is_b2b, source_rank, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, 0, ?, ?)",
        (
            (i, f"c{i}@example.com", f"M{i}" if i % 3 else None, i % 50 == 0, created, created)
            for i in range(1, customers + 1)
        ),
    )
    skus = [f"SKU{p:05d}" for p in range(PRODUCTS)]
    groups = rng.integers(0, len(GROUPS), PRODUCTS)
    accessory = rng.random(PRODUCTS) < 0.2
    prices = np.round(rng.lognormal(4, 0.8, PRODUCTS), 2)
    db.executemany(
        "INSERT INTO product (id, sku, name, product_group, brand, price, is_accessory, source, loaded_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'bench', ?)",
        (
            (p + 1, skus[p], f"Product {p}", GROUPS[groups[p]], f"brand{p % 30}", float(prices[p]), bool(accessory[p]),
             created)
            for p in range(PRODUCTS)
        ),
    )  # fmt: skip
    # Each main product has up to three accessories of its own group.
    by_group = {g: np.flatnonzero(accessory & (groups == g)) for g in range(len(GROUPS))}
    relations = {
        (skus[m], skus[a])
        for m in np.flatnonzero(~accessory)
        if len(by_group[groups[m]])
        for a in rng.choice(by_group[groups[m]], 3)
    }
    db.executemany(
        "INSERT INTO product_relation (sku, related_sku, kind, source, loaded_at)"
        " VALUES (?, ?, 'accessory', 'bench', ?)",
        ((main, related, created) for main, related in sorted(relations)),
    )

    # Orders: a per-customer rate, placed uniformly over three years; 5 % of them are returns.
    per_customer = rng.poisson(rng.gamma(1.2, 2.75, customers))
    owner = np.repeat(np.arange(1, customers + 1), per_customer)
    n_orders = len(owner)
    placed = now_s - rng.random(n_orders) * 3 * 365 * 86400
    is_return = rng.random(n_orders) < 0.05
    lines_per = rng.integers(1, 6, n_orders)
    n_lines = int(lines_per.sum())
    order_of_line = np.repeat(np.arange(n_orders), lines_per)
    line_no = np.arange(n_lines) - np.repeat(np.cumsum(lines_per) - lines_per, lines_per) + 1
    product = rng.integers(0, PRODUCTS, n_lines)
    quantity = rng.integers(1, 3, n_lines) * np.where(is_return[order_of_line], -1, 1)
    line_total = np.round(prices[product] * quantity, 2)
    totals = np.bincount(order_of_line, weights=line_total, minlength=n_orders)
    channels = np.array(["web", "store", "app"])[rng.integers(0, 3, n_orders)]
    stores = rng.integers(1, 161, n_orders)
    placed_text = _stamp(placed)
    db.executemany(
        "INSERT INTO orders (id, source, external_id, customer_id, placed_at, channel, store_external_id, currency,"
        " total, is_return, loaded_at) VALUES (?, 'bench', ?, ?, ?, ?, ?, 'NOK', ?, ?, ?)",
        (
            (o + 1, str(o + 1), int(owner[o]), placed_text[o], str(channels[o]),
             f"S{stores[o]}" if channels[o] == "store" else None, round(float(totals[o]), 2), bool(is_return[o]),
             created)
            for o in range(n_orders)
        ),
    )  # fmt: skip
    db.executemany(
        "INSERT INTO order_line (order_id, line_no, sku, quantity, unit_price, line_total) VALUES (?, ?, ?, ?, ?, ?)",
        (
            (int(order_of_line[i]) + 1, int(line_no[i]), skus[product[i]], int(quantity[i]),
             float(prices[product[i]]), float(line_total[i]))
            for i in range(n_lines)
        ),
    )  # fmt: skip
    db.commit()
    db.execute("ANALYZE")
    db.close()
    return n_orders, n_lines


def _segments() -> dict[str, SegmentConfig] | None:
    try:
        from hub.audience import segments  # noqa: F401
    except ImportError:
        return None
    return {name: SegmentConfig(name=name, when=when) for name, when in SEGMENTS.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="write the database here and keep it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        path = args.keep or Path(scratch) / "audience.db"
        path.unlink(missing_ok=True)
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        started = time.perf_counter()
        orders, lines = generate(path, args.customers, args.seed)
        print(f"generated {args.customers:,} customers, {orders:,} orders, {lines:,} lines "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip

        started = time.perf_counter()
        with engine.begin() as conn:
            summary = compute_attributes(conn, AttributesConfig(), NOW)
        compute_s = time.perf_counter() - started
        print(f"compute (full, incl. commit): {compute_s:.2f} s  customers={summary.customers:,} "
              f"fitted={summary.fitted} tiers={summary.tiers}")  # fmt: skip

        segments = _segments()
        if segments is None:
            print("segments: hub.audience.segments is not there yet; compute timed alone")
            engine.dispose()
            return
        from hub.audience.segments import evaluate_segments

        started = time.perf_counter()
        with engine.begin() as conn:
            results = evaluate_segments(conn, segments, NOW)
        segments_s = time.perf_counter() - started
        sizes = ", ".join(f"{name}={result.members:,}" for name, result in results.items())
        print(f"segments (10, first evaluation): {segments_s:.2f} s  {sizes}")
        print(f"total: {compute_s + segments_s:.2f} s for {args.customers:,} customers")
        engine.dispose()


if __name__ == "__main__":
    main()
