"""Database fixtures for hub's tests and for plugin authors' tests.

``database_url`` runs a test once on a SQLite file and once on a fresh PostgreSQL database, so code that
must work on both is tested on both. PostgreSQL is a real server the session starts on 127.0.0.1; where
its binaries are missing the PostgreSQL cases are skipped, except under ``CI=true``, where that is a failure
(a CI machine that silently skips them would test half of hub).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from hub.testing.postgres import PostgresNotFound, PostgresServer, find_bindir

__all__ = ["database_url", "pg_database_url", "postgres_url", "pytest_configure", "sqlite_url"]

_MARKERS = ("postgres: runs against a real PostgreSQL server started by the tests",)
_database_numbers = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    for marker in _MARKERS:
        config.addinivalue_line("markers", marker)


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the PostgreSQL tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of the ``postgres`` database of a PostgreSQL server that lives for the test session."""
    bindir = _postgres_bindir()
    if isinstance(bindir, str):
        _unavailable(bindir)
    server = PostgresServer(bindir)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def _postgres_bindir() -> Path | str:
    """Where the server binaries are, or why the PostgreSQL tests cannot run."""
    try:
        import psycopg  # noqa: F401  # the driver is an extra; without it the server would be useless
    except ImportError:
        return "psycopg is not installed (pip install 'hub[postgres]')"
    try:
        return find_bindir()
    except PostgresNotFound as exc:
        return f"PostgreSQL binaries not found (install postgresql): {exc}"


@pytest.fixture
def pg_database_url(postgres_url: str) -> Iterator[str]:
    """URL of a new, empty database on the session's server; dropped after the test."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"hub_test_{os.getpid()}_{next(_database_numbers)}"
    admin = make_url(postgres_url).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        # FILE_COPY (PostgreSQL 15+) makes the drop 4x faster on a server without fsync.
        strategy = " STRATEGY FILE_COPY" if conn.info.server_version >= 150000 else ""
        conn.execute(f'CREATE DATABASE "{name}"{strategy}')
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
            # FORCE: a test that forgot to dispose its engine must not make the drop fail.
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a SQLite file in the test's temporary directory (created on first connect)."""
    return f"sqlite:///{tmp_path / 'hub.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh database on each dialect hub supports: the test runs once per dialect."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_database_url"
    return str(request.getfixturevalue(fixture))
