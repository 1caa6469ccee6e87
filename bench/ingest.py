"""Ingest benchmark: end-to-end `hub sync` records/s against the raw SQLite ceiling, and peak memory at N and 4N.

    python bench/ingest.py [--customers 100000] [--seed 42] [--skip-4n]

For N customers (default 100k, about 1M order lines) the demo generator writes the multi-source data set into a
scratch project; `hub db upgrade` and `hub sync` then run as a child process (so its peak RSS is its own). The raw
ceiling inserts the same raw records as tuples with plain ``sqlite3.executemany`` in one transaction, one table
per stream, parsing excluded. Targets: end-to-end >= 30% of the ceiling; peak RSS that does not grow with N.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from hub_plugins.demo.generator import generate

ROOT = Path(__file__).resolve().parent.parent


def _project(workdir: Path, customers: int, seed: int) -> Path:
    project = workdir / f"n{customers}"
    if project.exists():
        shutil.rmtree(project)
    (project / "config").mkdir(parents=True)
    shutil.copy(ROOT / "config" / "hub.yaml", project / "config" / "hub.yaml")
    (project / "mappings").symlink_to(ROOT / "mappings")
    generate(project / "var" / "demo", customers=customers, seed=seed)
    return project


#: ``python -m hub ...`` that writes its own peak RSS (KiB) to the file named by $HUB_BENCH_PEAK when it exits.
#: The child's ``ru_maxrss`` from ``wait4`` will not do: Linux carries the parent's high-water mark into the
#: child across fork and exec, so every child looked as big as this process had ever been (it holds all raw
#: records for the ceiling), which is how 4N once "measured" 754 MiB. VmHWM counts the child's own pages only.
_CHILD = """
import atexit, os, resource, runpy, sys

def _peak():
    try:
        with open("/proc/self/status") as status:
            kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with open(os.environ["HUB_BENCH_PEAK"], "w") as out:
        out.write(str(kib))

atexit.register(_peak)
sys.argv = ["hub", *sys.argv[1:]]
runpy.run_module("hub", run_name="__main__", alter_sys=True)
"""


def _run_child(args: list[str], cwd: Path) -> tuple[float, int]:
    """Run a hub command; return (seconds, peak RSS in MiB) of that child alone."""
    peak_file = cwd / ".bench-peak"
    env = {**os.environ, "HUB_BENCH_PEAK": str(peak_file)}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, *args], cwd=cwd, env=env, stdout=subprocess.PIPE)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"hub {' '.join(args)} failed:\n{proc.stdout.decode()}")
    return seconds, int(peak_file.read_text()) // 1024


def _records_read(project: Path) -> int:
    with sqlite3.connect(project / "var" / "hub.db") as db:
        return db.execute("SELECT coalesce(sum(records_read), 0) FROM sync_run").fetchone()[0]


def _raw_records(project: Path) -> Iterator[tuple[str, list[tuple[object, ...]]]]:
    """Every raw record of every data file, as tuples of its top-level values, one file at a time."""
    for path in sorted((project / "var" / "demo").rglob("*")):
        name = path.name.removesuffix(".gz")
        if not path.is_file() or not name.endswith((".csv", ".jsonl")):
            continue
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
            if name.endswith(".jsonl"):
                rows = []
                for line in fh:
                    try:
                        record = orjson.loads(line)
                    except orjson.JSONDecodeError:
                        continue
                    rows.append(tuple(v if isinstance(v, str | int | float) else str(v) for v in record.values()))
            else:
                sample = fh.readline()
                fh.seek(0)
                delimiter = ";" if sample.count(";") > sample.count(",") else ","
                reader = csv.reader(fh, delimiter=delimiter)
                next(reader)
                rows = [tuple(r) for r in reader]
        yield f"{path.parent.name}_{name.split('-')[0].split('.')[0]}", rows


def raw_ceiling(project: Path) -> tuple[int, float]:
    """Records and seconds for plain sqlite3.executemany of the same raw records in one transaction."""
    tables = list(_raw_records(project))
    db_path = project / "var" / "raw.db"
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    width = {name: max((len(r) for r in rows), default=1) for name, rows in tables}
    for name, w in width.items():
        db.execute(f'CREATE TABLE IF NOT EXISTS "{name}" ({", ".join(f"c{i}" for i in range(w))})')
    records = 0
    started = time.perf_counter()
    db.execute("BEGIN")
    for name, rows in tables:
        w = width[name]
        padded = [r + (None,) * (w - len(r)) for r in rows]
        db.executemany(f'INSERT INTO "{name}" VALUES ({", ".join("?" * w)})', padded)
        records += len(rows)
    db.execute("COMMIT")
    seconds = time.perf_counter() - started
    db.close()
    return records, seconds


def measure(workdir: Path, customers: int, seed: int, *, ceiling: bool) -> dict[str, float]:
    project = _project(workdir, customers, seed)
    _run_child(["db", "upgrade"], project)
    seconds, rss = _run_child(["sync"], project)
    read = _records_read(project)
    out = {
        "customers": customers,
        "records": read,
        "seconds": seconds,
        "rec_s": read / seconds,
        "rss_mib": rss,
    }
    if ceiling:
        raw_records, raw_seconds = raw_ceiling(project)
        out |= {"raw_records": raw_records, "raw_rec_s": raw_records / raw_seconds}
    shutil.rmtree(project, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-4n", action="store_true", help="measure only N (no memory comparison)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        first = measure(Path(tmp), args.customers, args.seed, ceiling=True)
        print(
            f"N={first['customers']:,}: hub sync {first['records']:,} records in {first['seconds']:.1f} s = "
            f"{first['rec_s']:,.0f} rec/s; raw sqlite3 ceiling {first['raw_rec_s']:,.0f} rec/s; "
            f"ratio {first['rec_s'] / first['raw_rec_s']:.3f}; peak RSS {first['rss_mib']} MiB"
        )
        if not args.skip_4n:
            second = measure(Path(tmp), 4 * args.customers, args.seed, ceiling=False)
            print(
                f"4N={second['customers']:,}: hub sync {second['records']:,} records in {second['seconds']:.1f} s "
                f"= {second['rec_s']:,.0f} rec/s; peak RSS {second['rss_mib']} MiB "
                f"({second['rss_mib'] / max(first['rss_mib'], 1):.2f}x of N)"
            )


if __name__ == "__main__":
    main()
