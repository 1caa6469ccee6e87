"""Engines, column types and the set-based write path shared by every load.

SQLite (a file, WAL) is the default and PostgreSQL (psycopg 3) the production engine; the same code runs on
both. The hot path, :func:`bulk_upsert`, bypasses SQLAlchemy's per-row machinery: it compiles one converter
per column once per call and hands plain tuples to the driver (``executemany`` of one prepared statement on
SQLite, ``COPY`` into a staging table on PostgreSQL), several times faster than SQLAlchemy Core's
executemany, which spends most of its time per row in Python.

Value contract of :func:`bulk_upsert` and :func:`select_ids`: values arrive as Python objects and are stored
exactly as SQLAlchemy stores them through the column's type, so ORM reads and ``where_changed`` comparisons
see the same values whichever path wrote a row. ``None`` is SQL NULL for every column, JSON included.

- :class:`UTCDateTime`: an aware ``datetime``; a naive one raises ``ValueError``. SQLite: UTC text in
  SQLAlchemy's format ``YYYY-MM-DD HH:MM:SS.ffffff``; PostgreSQL: ``timestamptz``.
- ``DateTime``: a ``datetime``; an aware one is converted to UTC and stored without its zone.
- ``Date``: a ``date``, ISO text on SQLite.
- :class:`Money` and ``Numeric``: ``Decimal`` (or ``int``, ``float``); a number on SQLite (NUMERIC affinity).
- ``JSON`` / ``JSONB``: whatever orjson serialises, a ``Decimal`` inside becoming a string.
- ``Boolean``: a ``bool``. Other TypeDecorators go through their own bind processing; everything else
  (``str``, ``int``, ...) goes to the driver as given.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    Numeric,
    String,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.types import JSON, TypeDecorator

from hub.errors import DatabaseError

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Connection, Dialect, Table
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry
    from sqlalchemy.types import TypeEngine

__all__ = [
    "Money",
    "UTCDateTime",
    "bulk_upsert",
    "is_postgres",
    "is_sqlite",
    "make_engine",
    "one_of",
    "select_ids",
]

_SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=30000",  # first, so that switching to WAL waits for a writer instead of failing
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)
_PG_KEYS_PER_STATEMENT = 100_000
_SQLITE_KEYS_PER_STATEMENT = 50_000
_STAGE = '"_hub_upsert_stage"'
#: Timestamps kept formatted for SQLite: a batch repeats a few (its load time, a receipt's time on its lines).
_DATETIME_CACHE = 4096

Converter = Callable[[Any], Any]
RowConverter = Callable[[Sequence[Any]], tuple[Any, ...]]


class _HasDialect(Protocol):
    @property
    def dialect(self) -> Dialect: ...


def is_sqlite(bind: _HasDialect) -> bool:
    """True when ``bind`` (an Engine or Connection) talks to SQLite."""
    return bind.dialect.name == "sqlite"


def is_postgres(bind: _HasDialect) -> bool:
    """True when ``bind`` (an Engine or Connection) talks to PostgreSQL."""
    return bind.dialect.name == "postgresql"


# --------------------------------------------------------------------------------------------- engines


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Build the engine for ``database.url``: a SQLite file (created with its directory) or PostgreSQL.

    ``postgresql://`` and ``postgres://`` mean psycopg 3, which the COPY path needs; other drivers are
    refused. On SQLite every connection gets WAL, ``synchronous=NORMAL``, foreign keys and a 30 s busy
    timeout, and ``engine.begin()`` emits a real ``BEGIN``: Python 3.11's sqlite3 otherwise begins only
    before DML, which leaves reads and DDL outside the transaction and savepoints broken.
    """
    sa_url = make_url(url)
    backend = sa_url.get_backend_name()
    if backend == "sqlite":
        database = sa_url.database
        if database and database != ":memory:" and sa_url.query.get("uri") != "true":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(sa_url, echo=echo, json_serializer=_json_text)
        engine.__class__ = _SQLiteEngine
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if backend in ("postgresql", "postgres") and sa_url.drivername.partition("+")[2] in ("", "psycopg"):
        sa_url = sa_url.set(drivername="postgresql+psycopg")
        return create_engine(sa_url, echo=echo, json_serializer=_json_text, pool_pre_ping=True)
    raise DatabaseError(
        f"unsupported database URL scheme {sa_url.drivername!r}: hub supports sqlite:///path/to/file.db "
        "and postgresql://user@host/dbname (driver psycopg)"
    )


def _sqlite_on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    dbapi_connection.isolation_level = None  # type: ignore[attr-defined]  # sqlite3: we emit BEGIN ourselves
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


class _SQLiteEngine(Engine):
    """An engine whose ``begin()`` takes SQLite's write lock up front (``BEGIN IMMEDIATE``), writers of one
    process queueing on a Python lock first.

    ``engine.begin()`` is how hub writes. A deferred ``BEGIN`` that reads, then writes after another connection
    committed, fails at once with ``SQLITE_BUSY_SNAPSHOT`` (the busy timeout does not apply): under the daemon's
    concurrent jobs and webhooks that made passes fail. Taking the lock first makes writers queue instead. Reads
    (``engine.connect()``) stay deferred and never wait, as WAL allows.

    SQLite's busy handler polls, sleeping up to 100 ms between tries, so under a steady stream of short writes
    (webhooks every 20 ms) a waiting writer keeps missing the free moments and waits for hundreds of
    milliseconds. Writers of this process therefore wait on :func:`_writer_lock` first, which hands over at
    once; another process (the CLI beside the daemon) still meets the busy timeout.
    """

    __slots__ = ()

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        lock = _writer_lock(self.url.database or "")
        held = lock.acquire(timeout=_WRITER_WAIT)  # past the busy timeout, SQLite decides (and names the error)
        try:
            with self.connect() as conn:
                conn.execution_options(hub_sqlite_begin="BEGIN IMMEDIATE")
                with conn.begin():
                    yield conn
        finally:
            if held:
                lock.release()


#: How long a writer waits for this process's other writers: SQLite's own busy timeout.
_WRITER_WAIT = 30.0
_writer_locks: dict[str, threading.RLock] = {}
_writer_locks_guard = threading.Lock()


def _writer_lock(database: str) -> threading.RLock:
    """The write queue of one database file in this process (reentrant: a nested ``begin()`` on the same thread
    meets SQLite's own lock, as it always did)."""
    key = database if database in ("", ":memory:") else str(Path(database).resolve())
    with _writer_locks_guard:
        return _writer_locks.setdefault(key, threading.RLock())


def _sqlite_on_begin(conn: Connection) -> None:
    options = conn.get_execution_options()
    if options.get("isolation_level") != "AUTOCOMMIT":
        conn.exec_driver_sql(options.get("hub_sqlite_begin", "BEGIN"))


# ----------------------------------------------------------------------------------------- column types


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python and UTC in the database.

    Naive datetimes are refused on bind because their zone is a guess; SQLite (no zone support) stores UTC
    text and PostgreSQL ``timestamptz``, and both read back as aware UTC datetimes.
    """

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("naive datetime; hub stores timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """``NUMERIC(18, 4)`` that reads back as a ``Decimal`` with four places on both dialects.

    On SQLite the column keeps NUMERIC affinity, so values are numbers: ``ORDER BY`` and ``SUM`` work in SQL
    (a text column would sort ``"10" < "9"``). SQLite holds them as 64-bit floats or integers, exact to 15
    significant digits (amounts below 10**11 at four places); reads format the float to four places, which
    gives back the written Decimal, without SQLAlchemy's "does not support Decimal natively" warning.
    """

    impl = Numeric
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(precision=18, scale=4, asdecimal=True)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Numeric(18, 4, asdecimal=False))
        return dialect.type_descriptor(self.impl_instance)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None or isinstance(value, Decimal):
            return value
        return Decimal(f"{value:.4f}")


# -------------------------------------------------------------------------------------------- converters


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json_text(value: Any) -> str:
    """JSON text for a JSON column, and the engines' ``json_serializer``: both write paths store one text."""
    return orjson.dumps(value, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()


def _require_aware(value: datetime) -> datetime:
    if value.utcoffset() is None:
        raise ValueError("naive datetime; hub stores timezone-aware UTC")
    return value


def _sqlite_datetime(value: datetime) -> str:
    """SQLAlchemy's SQLite DATETIME storage format, in UTC; %-formatting is 1.4x faster than isoformat()."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond,
    )  # fmt: skip


@lru_cache(maxsize=_DATETIME_CACHE)
def _sqlite_utc_datetime(value: datetime) -> str:
    """Cached: a batch repeats the same instants (its load time, a receipt's time on each of its lines)."""
    if value.utcoffset() is None:
        raise ValueError("naive datetime; hub stores timezone-aware UTC")
    return _sqlite_datetime(value)


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def _column_converter(type_: TypeEngine[Any], dialect: Dialect) -> Converter | None:
    """The function that turns one Python value into what the driver stores for this column, or None."""
    sqlite = dialect.name == "sqlite"
    if isinstance(type_, UTCDateTime):
        return _sqlite_utc_datetime if sqlite else _require_aware
    if isinstance(type_, Money) or (isinstance(type_, Numeric) and not isinstance(type_, Float)):
        # Text, which NUMERIC affinity parses to the number SQLAlchemy's own float bind stores (no mismatch in
        # 2M random four-place values); str(Decimal) is 2x faster than float(Decimal).
        return str if sqlite else None
    if isinstance(type_, TypeDecorator):
        return type_.dialect_impl(dialect).bind_processor(dialect)
    if isinstance(type_, JSON):
        return _json_text
    if isinstance(type_, DateTime):
        if sqlite:
            return _sqlite_datetime
        return None if type_.timezone else _naive_utc
    if isinstance(type_, Date):
        return date.isoformat if sqlite else None
    if isinstance(type_, Boolean):
        return None  # both drivers bind bool natively (sqlite3 as 0/1); SQLAlchemy's processor only re-checks
    return type_.dialect_impl(dialect).bind_processor(dialect)


def _compile_row_converter(converters: Sequence[Converter | None]) -> RowConverter:
    """Compile one function that converts a whole row, skipping None, with no per-value loop or dispatch.

    Generated source (as ``dataclasses`` and ``namedtuple`` do) because it is ~3x faster per row than a loop
    over (index, converter) pairs; only indices appear in the source, never a name from the caller.
    """
    names = [f"v{i}" for i in range(len(converters))]
    parts = [
        name if conv is None else f"None if {name} is None else c{i}({name})"
        for i, (name, conv) in enumerate(zip(names, converters, strict=True))
    ]
    source = f"def convert(row):\n    {', '.join(names)}, = row\n    return ({', '.join(parts)},)\n"
    namespace: dict[str, Any] = {f"c{i}": conv for i, conv in enumerate(converters) if conv is not None}
    exec(source, namespace)
    return namespace["convert"]  # type: ignore[no-any-return]


def _row_converter(table: Table, columns: Sequence[str], dialect: Dialect) -> RowConverter | None:
    converters = [_column_converter(table.c[name].type, dialect) for name in columns]
    if all(conv is None for conv in converters):
        return None
    return _compile_row_converter(converters)


# ------------------------------------------------------------------------------------------- bulk upsert


@contextmanager
def _driver_cursor(conn: Connection) -> Iterator[Any]:
    """A cursor of the driver's own connection, inside the SQLAlchemy connection's transaction.

    ``begin()`` here is what SQLAlchemy's autobegin would do, so ``conn.commit()`` covers our writes.
    """
    if not conn.in_transaction():
        conn.begin()
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    finally:
        cursor.close()


def _column_names(table: Table, keys: Iterable[str], what: str) -> list[str]:
    names = []
    for key in keys:
        if key not in table.c:
            raise ValueError(f"{what}: table {table.name!r} has no column {key!r}")
        names.append(table.c[key].name)
    return names


def bulk_upsert(
    conn: Connection,
    table: Table,
    rows: Iterable[Sequence[Any]],
    columns: Sequence[str],
    conflict: Sequence[str],
    update: Sequence[str] | None = None,
    *,
    where_changed: bool = False,
) -> int:
    """Insert ``rows`` into ``table``, updating the rows whose ``conflict`` key already exists.

    :param rows: tuples in the order of ``columns``, with values as the module docstring describes.
    :param conflict: the columns of a unique constraint or index (``ON CONFLICT (conflict)``).
    :param update: the columns to overwrite on conflict; None means every non-conflict column, and an empty
        sequence means ``DO NOTHING``.
    :param where_changed: skip the update when every ``update`` column already holds the new value, so
        unchanged rows are not rewritten (no new row version on PostgreSQL, no write on SQLite).
    :returns: the number of rows inserted or updated (skipped rows are not counted).

    Within one call the last row of a repeated key wins (with ``DO NOTHING``, the first), on both dialects.
    Runs in the connection's transaction; the caller commits.
    """
    if isinstance(rows, Sized) and len(rows) == 0:
        return 0
    names = _column_names(table, columns, "columns")
    conflict_names = _column_names(table, conflict, "conflict")
    if update is None:
        update_names = [name for name in names if name not in conflict_names]
    else:
        update_names = _column_names(table, update, "update")
    missing = [name for name in (*conflict_names, *update_names) if name not in names]
    if missing:
        raise ValueError(f"conflict and update columns must be among the inserted columns; missing {missing}")
    if update_names and not conflict_names:
        raise ValueError("an update on conflict needs the conflict columns")

    dialect = conn.dialect
    convert = _row_converter(table, columns, dialect)
    quote = dialect.identifier_preparer.quote
    target = dialect.identifier_preparer.format_table(table)
    column_list = ", ".join(quote(name) for name in names)
    on_conflict = _on_conflict_clause(table, conflict_names, update_names, where_changed, dialect)

    if dialect.name == "sqlite":
        sql = f'INSERT INTO {target} AS "_t" ({column_list}) VALUES ({", ".join("?" * len(names))}) {on_conflict}'
        with _driver_cursor(conn) as cursor:
            cursor.executemany(sql, rows if convert is None else map(convert, rows))
            return int(cursor.rowcount)
    if dialect.name == "postgresql":
        key = itemgetter(*(names.index(name) for name in conflict_names)) if update_names else None
        return _pg_copy_upsert(conn, target, column_list, on_conflict, rows, convert, key)
    raise DatabaseError(f"bulk_upsert supports SQLite and PostgreSQL, not {dialect.name}")


def _on_conflict_clause(
    table: Table, conflict: Sequence[str], update: Sequence[str], where_changed: bool, dialect: Dialect
) -> str:
    quote = dialect.identifier_preparer.quote
    target = f"ON CONFLICT ({', '.join(quote(name) for name in conflict)})" if conflict else "ON CONFLICT"
    if not update:
        return f"{target} DO NOTHING"
    clause = f"{target} DO UPDATE SET " + ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in update)
    if not where_changed:
        return clause
    # JSON is compared by value, not by its text: SQLite's json() minifies, and PostgreSQL's json type has no
    # equality operator at all while jsonb compares values.
    if dialect.name == "sqlite":
        template, json_template = '"_t".{0} IS NOT excluded.{0}', 'json("_t".{0}) IS NOT json(excluded.{0})'
    else:
        template = '"_t".{0} IS DISTINCT FROM excluded.{0}'
        json_template = '"_t".{0}::jsonb IS DISTINCT FROM excluded.{0}::jsonb'
    changed = [
        (json_template if isinstance(_unwrapped(table.c[n].type), JSON) else template).format(quote(n)) for n in update
    ]
    return f"{clause} WHERE {' OR '.join(changed)}"


def _unwrapped(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    return type_.impl_instance if isinstance(type_, TypeDecorator) else type_


def _pg_copy_upsert(
    conn: Connection,
    target: str,
    column_list: str,
    on_conflict: str,
    rows: Iterable[Sequence[Any]],
    convert: RowConverter | None,
    key: Callable[[Sequence[Any]], Any] | None,
) -> int:
    """COPY the rows into a temporary table shaped like the target's columns, then one INSERT ... SELECT.

    The stage is ``CREATE TABLE AS ... WITH NO DATA`` rather than ``LIKE ... INCLUDING DEFAULTS``: it copies
    exactly the listed columns and their types, with no NOT NULL on the others and no serial default that
    would burn sequence values. PostgreSQL refuses to update one row twice in one statement, so with DO
    UPDATE repeated keys are collapsed first, the last one winning as it does on SQLite.
    """
    prepared: Iterable[Sequence[Any]] = rows if convert is None else map(convert, rows)
    if key is not None:
        prepared = {key(row): row for row in prepared}.values()
    with _driver_cursor(conn) as cursor:
        cursor.execute(
            f"CREATE TEMPORARY TABLE {_STAGE} ON COMMIT DROP AS SELECT {column_list} FROM {target} WITH NO DATA"
        )
        with cursor.copy(f"COPY {_STAGE} ({column_list}) FROM STDIN") as copy:
            for row in prepared:
                copy.write_row(row)
        cursor.execute(f'INSERT INTO {target} AS "_t" ({column_list}) SELECT {column_list} FROM {_STAGE} {on_conflict}')
        written = int(cursor.rowcount)
        cursor.execute(f"DROP TABLE {_STAGE}")
    return written


# -------------------------------------------------------------------------------------------- select_ids


def select_ids(
    conn: Connection,
    table: Table,
    key_columns: Sequence[str],
    keys: Iterable[tuple[Any, ...]],
    id_column: str = "id",
) -> dict[tuple[Any, ...], int]:
    """Map natural keys to surrogate ids with a few set-based queries; keys not in the table are absent.

    Each chunk of keys is joined as a VALUES list (SQLite, sized to its bound-variable limit) or as
    ``unnest`` of typed arrays (PostgreSQL); an ordinal travels with every key so the result maps back to
    the caller's own tuples whatever the storage format. Keys follow the value contract of the module; a key
    containing None matches nothing.
    """
    key_list = list(keys)
    if not key_list:
        return {}
    names = _column_names(table, key_columns, "key_columns")
    (id_name,) = _column_names(table, [id_column], "id_column")
    dialect = conn.dialect
    quote = dialect.identifier_preparer.quote
    key_names = ", ".join(quote(n) for n in names)
    pick = f'SELECT "_k"."_ord", "_t".{quote(id_name)}'
    join = f'JOIN {dialect.identifier_preparer.format_table(table)} AS "_t" ON ' + " AND ".join(
        f'"_t".{quote(n)} = "_k".{quote(n)}' for n in names
    )
    convert = _row_converter(table, key_columns, dialect)
    converted = key_list if convert is None else [convert(key) for key in key_list]
    found: dict[tuple[Any, ...], int] = {}
    with _driver_cursor(conn) as cursor:
        if dialect.name == "sqlite":
            # One JSON array parameter per chunk: the statement text never changes, so sqlite3 prepares it
            # once per connection, and there is no bound-variable limit to respect.
            columns = ", ".join(f"json_extract(\"value\", '$[{i}]') AS {quote(n)}" for i, n in enumerate(names))
            sql = f'WITH "_k" AS (SELECT "key" AS "_ord", {columns} FROM json_each(?)) {pick} FROM "_k" {join}'
            for start in range(0, len(key_list), _SQLITE_KEYS_PER_STATEMENT):
                part = converted[start : start + _SQLITE_KEYS_PER_STATEMENT]
                cursor.execute(sql, (orjson.dumps(part, default=_json_default).decode(),))
                found.update((key_list[start + ordinal], id_) for ordinal, id_ in cursor.fetchall())
        else:
            arrays = ", ".join(f"CAST(%s AS {table.c[k].type.compile(dialect=dialect)}[])" for k in key_columns)
            sql = f'{pick} FROM unnest({arrays}) WITH ORDINALITY AS "_k"({key_names}, "_ord") {join}'
            for start in range(0, len(key_list), _PG_KEYS_PER_STATEMENT):
                part = converted[start : start + _PG_KEYS_PER_STATEMENT]
                cursor.execute(sql, [list(column) for column in zip(*part, strict=True)])
                found.update((key_list[start + ordinal - 1], id_) for ordinal, id_ in cursor.fetchall())
    return found


# ------------------------------------------------------------------------------------------------ one_of


def one_of(bind: _HasDialect, column: ColumnElement[Any], values: Iterable[int | str]) -> ColumnElement[bool]:
    """``column IN values`` for integer or text values, passed as one parameter whatever their number.

    SQLAlchemy's ``in_(list)`` renders and binds a placeholder per value, so a batch's thousand ids cost a
    new statement text and a thousand bind steps on every call (and chunks, for SQLite's variable limit).
    Here the values travel as one JSON array (SQLite, through ``json_each``) or one array (PostgreSQL,
    ``= ANY``), so the statement is compiled and prepared once.
    """
    items = list(values)
    if is_sqlite(bind):
        array = bindparam(None, orjson.dumps(items).decode(), type_=String)
        return column.in_(select(literal_column("value")).select_from(func.json_each(array)))
    element_type = Integer() if all(isinstance(v, int) for v in items) else String()
    return column == any_(bindparam(None, items, type_=ARRAY(element_type)))
