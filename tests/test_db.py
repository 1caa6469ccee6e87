"""hub.db on SQLite and on a real PostgreSQL: engines, column types, bulk_upsert and select_ids."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    event,
    func,
    select,
    text,
)
from sqlalchemy.exc import StatementError

from hub.db import Money, UTCDateTime, bulk_upsert, is_postgres, is_sqlite, make_engine, select_ids
from hub.errors import DatabaseError

CEST = timezone(timedelta(hours=2))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def _items(metadata: MetaData) -> Table:
    return Table(
        "item",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("sku", String(32), nullable=False, unique=True),
        Column("name", String(100), nullable=False),
        Column("price", Money),
        Column("stock", Integer, nullable=False),
    )


def _rows(engine: Engine, table: Table) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(table).order_by(table.c.sku))]


# ------------------------------------------------------------------------------------------------ engines


def test_make_engine_creates_the_sqlite_directory(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'data' / 'hub.db'}")
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    engine.dispose()
    assert (tmp_path / "var" / "data" / "hub.db").is_file()


def test_make_engine_sets_sqlite_pragmas_on_every_connection(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        pragmas = [
            conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "foreign_keys", "busy_timeout")
        ]
    engine.dispose()
    assert pragmas == ["wal", 1, 1, 30000]


def test_sqlite_begin_is_a_real_transaction_that_covers_ddl(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
        raise RuntimeError("roll back")
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'")).all()
    engine.dispose()
    assert tables == []


def test_sqlite_writers_queue_instead_of_failing_when_another_commits_between_read_and_write(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    reading = threading.Event()
    other_done: list[str] = []

    def other_writer() -> None:
        reading.wait()
        with engine.begin() as conn:  # waits for the first writer's commit instead of breaking its snapshot
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        other_done.append("ok")

    thread = threading.Thread(target=other_writer)
    thread.start()
    with engine.begin() as conn:
        count = conn.exec_driver_sql("SELECT count(*) FROM t").scalar()
        reading.set()
        thread.join(timeout=0.3)  # the other writer is blocked, not committing under our read
        conn.exec_driver_sql("INSERT INTO t VALUES (?)", (count + 1,))
    thread.join(timeout=10)

    assert other_done == ["ok"]
    with engine.connect() as conn:
        assert sorted(conn.exec_driver_sql("SELECT x FROM t").scalars()) == [1, 2]
    engine.dispose()


@pytest.mark.parametrize("url", ["postgresql://hub@db.example/hub", "postgres://hub@db.example/hub"])
def test_make_engine_uses_psycopg_for_plain_postgresql_urls(url: str) -> None:
    assert make_engine(url).dialect.driver == "psycopg"


def test_make_engine_refuses_other_postgresql_drivers() -> None:
    with pytest.raises(DatabaseError, match="'postgresql\\+asyncpg'"):
        make_engine("postgresql+asyncpg://hub@db.example/hub")


def test_make_engine_refuses_other_databases() -> None:
    with pytest.raises(DatabaseError, match="unsupported database URL scheme 'mysql'"):
        make_engine("mysql://hub:secret@db.example/hub")


def test_dialect_helpers_name_the_engine(engine: Engine, database_url: str) -> None:
    assert (is_sqlite(engine), is_postgres(engine)) == (
        database_url.startswith("sqlite"),
        database_url.startswith("postgresql"),
    )


# -------------------------------------------------------------------------------------------- column types


def test_utcdatetime_returns_aware_utc(engine: Engine) -> None:
    metadata = MetaData()
    events = Table("event", metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime))
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(events.insert(), {"id": 1, "at": datetime(2024, 3, 1, 14, 30, 5, 250, tzinfo=CEST)})
    with engine.connect() as conn:
        at = conn.execute(select(events.c.at)).scalar_one()
    assert at == datetime(2024, 3, 1, 12, 30, 5, 250, tzinfo=UTC)
    assert at.tzinfo is UTC


def test_utcdatetime_refuses_naive_datetimes(engine: Engine) -> None:
    metadata = MetaData()
    events = Table("event", metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime))
    metadata.create_all(engine)
    with (
        pytest.raises(StatementError, match="naive datetime; hub stores timezone-aware UTC"),
        engine.begin() as conn,
    ):
        conn.execute(events.insert(), {"id": 1, "at": datetime(2024, 3, 1, 12, 0)})


def test_money_sums_and_sorts_as_numbers_in_sql(engine: Engine) -> None:
    metadata = MetaData()
    items = _items(metadata)
    metadata.create_all(engine)
    prices = [Decimal("9.9900"), Decimal("10.0100"), Decimal("100.5000"), Decimal("-0.2500")]
    with engine.begin() as conn:
        conn.execute(
            items.insert(),
            [{"sku": f"s{i}", "name": "x", "price": price, "stock": 0} for i, price in enumerate(prices)],
        )
    with engine.connect() as conn:
        total = conn.execute(select(func.sum(items.c.price))).scalar_one()
        ordered = conn.execute(select(items.c.price).order_by(items.c.price)).scalars().all()
    assert total == Decimal("120.2500")
    assert ordered == sorted(prices)


def test_money_reads_back_decimal_without_a_warning(engine: Engine) -> None:
    metadata = MetaData()
    items = _items(metadata)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(items.insert(), {"sku": "a", "name": "x", "price": Decimal("12.3400"), "stock": 0})
    with warnings.catch_warnings(record=True) as caught, engine.connect() as conn:
        warnings.simplefilter("always")
        price = conn.execute(select(items.c.price)).scalar_one()
    assert (price, str(price), caught) == (Decimal("12.34"), "12.3400", [])


# -------------------------------------------------------------------------------------------- bulk_upsert


def test_bulk_upsert_inserts_new_rows(engine: Engine) -> None:
    metadata = MetaData()
    items = _items(metadata)
    metadata.create_all(engine)
    with engine.begin() as conn:
        written = bulk_upsert(
            conn,
            items,
            [("a", "Apple", Decimal("1.5000"), 3), ("b", "Bread", None, 0)],
            ["sku", "name", "price", "stock"],
            ["sku"],
        )
    assert written == 2
    assert [row[1:] for row in _rows(engine, items)] == [
        ("a", "Apple", Decimal("1.5000"), 3),
        ("b", "Bread", None, 0),
    ]


def test_bulk_upsert_updates_rows_whose_key_exists(engine: Engine) -> None:
    metadata = MetaData()
    items = _items(metadata)
    metadata.create_all(engine)
    columns = ["sku", "name", "price", "stock"]
    with engine.begin() as conn:
        bulk_upsert(conn, items, [("a", "Apple", Decimal("1"), 3)], columns, ["sku"])
        written = bulk_upsert(
            conn, items, [("a", "Green apple", Decimal("2"), 5), ("b", "B", None, 1)], columns, ["sku"]
        )
    assert written == 2
    assert [row[1:] for row in _rows(engine, items)] == [
        ("a", "Green apple", Decimal("2.0000"), 5),
        ("b", "B", None, 1),
    ]


def test_bulk_upsert_keeps_the_surrogate_id_of_updated_rows(engine: Engine) -> None:
    metadata = MetaData()
    items = _items(metadata)
    metadata.create_all(engine)
    columns = ["sku", "name", "price", "stock"]
    with engine.begin() as conn:
        bulk_upsert(conn, items, [("a", "Apple", None, 3)], columns, ["sku"])
        first_id = conn.execute(select(items.c.id)).scalar_one()
        bulk_upsert(conn, items, [("a", "Apple", None, 4)], columns, ["sku"])
        assert conn.execute(select(items.c.id)).scalar_one() == first_id


def test_bulk_upsert_updates_only_the_listed_columns(engine: Engine) -> None:
    metadata = MetaData()
    items = _items(metadata)
    metadata.create_all(engine)
    columns = ["sku", "name", "price", "stock"]
    with engine.begin() as conn:
        bulk_upsert(conn, items, [("a", "Apple", Decimal("1"), 3)], columns, ["sku"])
        bulk_upsert(conn, items, [("a", "Renamed", Decimal("9"), 7)], columns, ["sku"], update=["stock"])
    assert [row[1:] for row in _rows(engine, items)] == [("a", "Apple", Decimal("1.0000"), 7)]


def test_bulk_upsert_with_empty_update_does_nothing_on_conflict(engine: Engine) -> None:
    metadata = MetaData()
    items = _items(metadata)
    metadata.create_all(engine)
    columns = ["sku", "name", "price", "stock"]
    with engine.begin() as conn:
        bulk_upsert(conn, items, [("a", "Apple", None, 3)], columns, ["sku"])
        written = bulk_upsert(conn, items, [("a", "Other", None, 9), ("b", "Bread", None, 1)], columns, ["sku"], [])
    assert written == 1
    assert [row[1:] for row in _rows(engine, items)] == [("a", "Apple", None, 3), ("b", "Bread", None, 1)]


def test_bulk_upsert_where_changed_rewrites_only_changed_rows(engine: Engine) -> None:
    metadata = MetaData()
    items = _items(metadata)
    metadata.create_all(engine)
    columns = ["sku", "name", "price", "stock"]
    rows = [("a", "Apple", Decimal("1.5"), 3), ("b", "Bread", None, 1), ("c", "Cheese", Decimal("7"), 0)]
    with engine.begin() as conn:
        bulk_upsert(conn, items, rows, columns, ["sku"])
        again = [rows[0], ("b", "Bread", None, 2), rows[2]]
        written = bulk_upsert(conn, items, again, columns, ["sku"], where_changed=True)
    assert written == 1
    assert [row[1:] for row in _rows(engine, items)][1] == ("b", "Bread", None, 2)


def test_bulk_upsert_without_where_changed_rewrites_every_conflicting_row(engine: Engine) -> None:
    metadata = MetaData()
    items = _items(metadata)
    metadata.create_all(engine)
    columns = ["sku", "name", "price", "stock"]
    rows = [("a", "Apple", Decimal("1.5"), 3), ("b", "Bread", None, 1)]
    with engine.begin() as conn:
        bulk_upsert(conn, items, rows, columns, ["sku"])
        assert bulk_upsert(conn, items, rows, columns, ["sku"]) == 2


def test_bulk_upsert_last_row_of_a_repeated_key_wins(engine: Engine) -> None:
    metadata = MetaData()
    items = _items(metadata)
    metadata.create_all(engine)
    with engine.begin() as conn:
        bulk_upsert(
            conn,
            items,
            [("a", "first", None, 1), ("a", "second", None, 2)],
            ["sku", "name", "price", "stock"],
            ["sku"],
        )
    assert [row[1:] for row in _rows(engine, items)] == [("a", "second", None, 2)]


def _samples(metadata: MetaData) -> Table:
    return Table(
        "sample",
        metadata,
        Column("key", String(20), primary_key=True),
        Column("amount", Money),
        Column("placed_at", UTCDateTime),
        Column("born", Date),
        Column("attrs", JSON),
        Column("active", Boolean),
        Column("note", String(50)),
    )


SAMPLE = (
    "k1",
    Decimal("-12345678.9012"),
    datetime(2024, 3, 1, 14, 30, 5, 123456, tzinfo=CEST),
    date(1984, 2, 29),
    {"tags": ["vip", "b2b"], "score": 3, "nested": {"none": None, "pi": 3.25}},
    True,
    None,
)


def test_bulk_upsert_round_trips_values_exactly(engine: Engine) -> None:
    metadata = MetaData()
    samples = _samples(metadata)
    metadata.create_all(engine)
    with engine.begin() as conn:
        bulk_upsert(conn, samples, [SAMPLE], [c.name for c in samples.columns], ["key"])
    with engine.connect() as conn:
        row = tuple(conn.execute(select(samples)).one())
    assert row == SAMPLE
    assert row[2].tzinfo is UTC


def test_bulk_upsert_stores_values_exactly_as_sqlalchemy_does(engine: Engine) -> None:
    metadata = MetaData()
    samples = _samples(metadata)
    metadata.create_all(engine)
    names = [c.name for c in samples.columns]
    with engine.begin() as conn:
        conn.execute(samples.insert(), dict(zip(names, SAMPLE, strict=True)))
        rewritten = bulk_upsert(conn, samples, [SAMPLE], names, ["key"], where_changed=True)
    assert rewritten == 0


def test_bulk_upsert_refuses_naive_datetimes_for_utc_columns(engine: Engine) -> None:
    metadata = MetaData()
    samples = _samples(metadata)
    metadata.create_all(engine)
    with pytest.raises(ValueError, match="naive datetime"), engine.begin() as conn:
        bulk_upsert(conn, samples, [("k", datetime(2024, 1, 1))], ["key", "placed_at"], ["key"])


def test_bulk_upsert_refuses_unknown_columns(engine: Engine) -> None:
    metadata = MetaData()
    items = _items(metadata)
    with pytest.raises(ValueError, match="table 'item' has no column 'colour'"), engine.begin() as conn:
        bulk_upsert(conn, items, [("a", "red")], ["sku", "colour"], ["sku"])


def test_bulk_upsert_writes_inside_the_callers_transaction(engine: Engine) -> None:
    metadata = MetaData()
    items = _items(metadata)
    metadata.create_all(engine)
    with engine.connect() as conn:
        bulk_upsert(conn, items, [("a", "Apple", None, 1)], ["sku", "name", "price", "stock"], ["sku"])
        conn.rollback()
    assert _rows(engine, items) == []


def test_bulk_upsert_loads_100k_rows_from_a_generator(engine: Engine) -> None:
    metadata = MetaData()
    items = _items(metadata)
    metadata.create_all(engine)
    rows = ((f"sku-{i}", f"item {i}", Decimal(i) / 100, i % 7) for i in range(100_000))
    with engine.begin() as conn:
        written = bulk_upsert(conn, items, rows, ["sku", "name", "price", "stock"], ["sku"])
    with engine.connect() as conn:
        count, total = conn.execute(select(func.count(), func.sum(items.c.stock))).one()
    assert (written, count, total) == (100_000, 100_000, sum(i % 7 for i in range(100_000)))


@settings(max_examples=200, deadline=None)
@given(
    amount=st.decimals(min_value=-(10**11) + 1, max_value=10**11 - 1, places=4),
    placed_at=st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1)),
    offset_minutes=st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_sqlite_bulk_upsert_round_trips_any_money_and_timestamp(
    amount: Decimal, placed_at: datetime, offset_minutes: int
) -> None:
    engine = make_engine("sqlite://")
    metadata = MetaData()
    samples = _samples(metadata)
    metadata.create_all(engine)
    aware = placed_at.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    with engine.begin() as conn:
        bulk_upsert(conn, samples, [("k", amount, aware)], ["key", "amount", "placed_at"], ["key"])
        stored = tuple(conn.execute(select(samples.c.amount, samples.c.placed_at)).one())
    engine.dispose()
    assert stored == (amount, aware)


# --------------------------------------------------------------------------------------------- select_ids


def test_select_ids_maps_50k_natural_keys_in_one_call(engine: Engine) -> None:
    metadata = MetaData()
    identities = Table(
        "identity",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("system", String(20), nullable=False),
        Column("value", String(64), nullable=False),
        UniqueConstraint("system", "value"),
    )
    metadata.create_all(engine)
    keys = [("shop" if i % 2 else "pos", f"customer-{i}") for i in range(50_000)]
    with engine.begin() as conn:
        bulk_upsert(conn, identities, keys, ["system", "value"], ["system", "value"])
        expected = {(system, value): id_ for id_, system, value in conn.execute(select(identities))}
        found = select_ids(conn, identities, ["system", "value"], [*keys, ("shop", "nobody")])
    assert len(found) == 50_000
    assert found == expected


def test_select_ids_matches_keys_stored_in_converted_form(engine: Engine) -> None:
    metadata = MetaData()
    days = Table(
        "store_day",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("store", String(20), nullable=False),
        Column("day", Date, nullable=False),
        UniqueConstraint("store", "day"),
    )
    metadata.create_all(engine)
    with engine.begin() as conn:
        bulk_upsert(
            conn,
            days,
            [("s1", date(2024, 1, 1)), ("s1", date(2024, 1, 2))],
            ["store", "day"],
            ["store", "day"],
        )
        found = select_ids(conn, days, ["store", "day"], [("s1", date(2024, 1, 2)), ("s2", date(2024, 1, 2))])
        expected_id = conn.execute(select(days.c.id).where(days.c.day == date(2024, 1, 2))).scalar_one()
    assert found == {("s1", date(2024, 1, 2)): expected_id}


def test_select_ids_of_no_keys_is_empty(engine: Engine) -> None:
    metadata = MetaData()
    items = _items(metadata)
    metadata.create_all(engine)
    with engine.connect() as conn:
        assert select_ids(conn, items, ["sku"], []) == {}


def test_one_of_matches_integer_and_text_values_passed_as_one_parameter(engine: Engine) -> None:
    from hub.db import one_of

    items = _items(MetaData())
    items.metadata.create_all(engine)
    keys = [f"k{i}" for i in range(3000)]
    with engine.begin() as conn:
        bulk_upsert(conn, items, [(k, k, 1) for k in keys], ["sku", "name", "stock"], conflict=["sku"])
        wanted = [*keys[::7], "missing"]
        found = conn.execute(select(items.c.sku).where(one_of(conn, items.c.sku, wanted))).scalars().all()
        ids = conn.execute(select(items.c.id).where(items.c.sku.in_(keys[:5]))).scalars().all()
        by_id = conn.execute(select(items.c.sku).where(one_of(conn, items.c.id, ids))).scalars().all()
    assert sorted(found) == sorted(keys[::7])
    assert sorted(by_id) == sorted(keys[:5])


def test_writers_of_one_process_queue_in_hub_before_sqlite(tmp_path):
    """SQLite's busy handler polls (sleeping up to 100 ms), so a writer waiting there misses free moments;
    writers of one process wait on hub's lock instead, and only the one holding it emits BEGIN IMMEDIATE."""
    url = f"sqlite:///{tmp_path / 'q.db'}"
    first, second = make_engine(url), make_engine(url)  # two engines on one file share the queue
    begins: list[str] = []

    def record_begin(conn, cursor, statement, *args) -> None:  # before SQLite sees it (and may block in it)
        if statement.startswith("BEGIN"):
            begins.append(threading.current_thread().name)

    for engine in (first, second):
        event.listen(engine, "before_cursor_execute", record_begin)
    for engine in (first, second):
        with engine.connect():  # connected (the pragmas run) before the race: only BEGIN is left to wait
            pass
    inside, release, done = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        with first.begin():
            inside.set()
            release.wait(5)

    def wait_then_write() -> None:
        with second.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        done.set()

    holder = threading.Thread(target=hold, name="holder")
    holder.start()
    assert inside.wait(5)
    waiter = threading.Thread(target=wait_then_write, name="waiter")
    waiter.start()
    time.sleep(0.2)
    assert begins == ["holder"] and not done.is_set()
    release.set()
    assert done.wait(5)
    holder.join(5)
    waiter.join(5)
    assert begins == ["holder", "waiter"]
    first.dispose()
    second.dispose()
