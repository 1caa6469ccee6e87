"""One daemon per database: a second ``hub run`` against the same database refuses to start.

SQLite: an exclusive ``flock`` on ``<database>.lock``, next to the database file. The kernel drops the lock when
the process ends, however it ends (``kill -9`` included), so there is never a stale lock to clean up, and no write
transaction is held open: a "row lock" on SQLite would be a held write transaction, which blocks every writer,
the daemon's own jobs included. The file holds the holder's pid, host and start time, for the error message; the
message never relies on them being current, only the lock decides. (``flock`` is unreliable on network file
systems, as SQLite itself is: keep the database on a local disk.)

PostgreSQL: a session-level advisory lock, held on one dedicated connection for the daemon's lifetime and freed
by the server when that connection closes or its process dies. Today a second daemon refuses to start; scale-out
will turn it into a standby that takes the scheduler over.

An in-memory SQLite database needs no lock: no other process can open it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from hub.errors import HubError

#: ``pg_try_advisory_lock`` key of the scheduler: the bytes of "hubsched" as a signed 64-bit integer.
ADVISORY_KEY = int.from_bytes(b"hubsched", "big", signed=True)


class AlreadyRunning(HubError):
    """Another ``hub run`` holds the database."""


def lock_path(database_url: str) -> Path | None:
    """``<database>.lock`` for a file-backed SQLite URL; None for other databases and in-memory SQLite."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):
        path = url.database.removeprefix("file:").split("?", 1)[0]
        return None if not path or "mode=memory" in url.database else Path(path + ".lock")
    return Path(url.database + ".lock")


@contextmanager
def daemon_lock(engine: sa.Engine, database_url: str) -> Iterator[None]:
    """Hold the database's daemon lock for the block; raise :class:`AlreadyRunning` if another process has it."""
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine):
            yield
        return
    path = lock_path(database_url)
    if path is None:
        yield
        return
    with _file_lock(path):
        yield


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            raise AlreadyRunning(
                f"another `hub run` is already running on this database ({holder}; lock file {path});"
                " stop it first, or point this one at another database"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder().encode(), 0)
        try:
            yield
        finally:
            # Emptied, not removed: removing would let a third process lock a new file while a second still
            # waits on the old inode.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _advisory_lock(engine: sa.Engine) -> Iterator[None]:
    with engine.connect() as conn:
        locked = conn.execute(sa.select(sa.func.pg_try_advisory_lock(ADVISORY_KEY))).scalar()
        conn.commit()
        if not locked:
            raise AlreadyRunning(
                "another `hub run` is already running on this database (it holds the scheduler's advisory lock);"
                " stop it first; running several daemons on one PostgreSQL database is not supported yet"
            )
        try:
            yield
        finally:
            conn.execute(sa.select(sa.func.pg_advisory_unlock(ADVISORY_KEY)))
            conn.commit()


def _holder() -> str:
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"pid {os.getpid()} on {socket.gethostname()}, started {started}"
