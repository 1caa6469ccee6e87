"""One daemon per database: a lock file on SQLite, an advisory lock on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from hub.daemon.lock import AlreadyRunning, daemon_lock, lock_path
from hub.db import make_engine


def _refused(engine: sa.Engine, url: str, message: str) -> None:
    with pytest.raises(AlreadyRunning, match=message), daemon_lock(engine, url):
        pass


def test_the_lock_file_sits_next_to_the_sqlite_database(tmp_path: Path) -> None:
    assert lock_path(f"sqlite:///{tmp_path}/var/hub.db") == tmp_path / "var" / "hub.db.lock"
    assert lock_path("sqlite:///:memory:") is None
    assert lock_path("postgresql+psycopg://hub@localhost/hub") is None


def test_a_second_holder_is_refused_and_the_lock_is_free_again_after(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/hub.db"
    engine = make_engine(url)
    try:
        with daemon_lock(engine, url):
            _refused(engine, url, r"already running on this database \(pid \d+")
        with daemon_lock(engine, url):
            pass
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_on_postgresql_an_advisory_lock_refuses_a_second_daemon(pg_database_url: str) -> None:
    first, second = make_engine(pg_database_url), make_engine(pg_database_url)
    try:
        with daemon_lock(first, pg_database_url):
            _refused(second, pg_database_url, "advisory lock")
        with daemon_lock(second, pg_database_url):
            pass
    finally:
        first.dispose()
        second.dispose()
