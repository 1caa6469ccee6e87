"""One daemon per database: a second ``hub run`` against the same database refuses to start.

SQLite: an exclusive ``flock`` on ``<database>.lock``, next to the database file. The kernel drops the lock when
the process ends, however it ends (``kill -9`` included), so there is never a stale lock to clean up, and no write
transaction is held open: a "row lock" on SQLite would be a held write transaction, which blocks every writer,
the daemon's own jobs included. The file holds the holder's pid, host and start time, for the error message; the
message never relies on them being current, only the lock decides. (``flock`` is unreliable on network file
systems, as SQLite itself is: keep the database on a local disk.)

PostgreSQL: several daemons share one database. The scheduler (syncs, the audience pass, housekeeping) belongs to
whichever process holds a session-level advisory lock (:class:`SchedulerLeadership`), taken with
``pg_try_advisory_lock`` on one dedicated connection and freed by the server when that connection closes or its
process dies (``kill -9`` included). The others are standbys: they retry every ``daemon.takeover_interval`` and
take the scheduler over when the lock frees. Every process runs the dispatcher, whose claims (``FOR UPDATE SKIP
LOCKED``) never overlap. A job that more than one process may start (the audience pass, woken by a webhook on
any process) runs under a per-job advisory lock as well (:func:`cluster_job_lock`). ``hub run --once`` still
refuses while a daemon holds the scheduler.

An in-memory SQLite database needs no lock: no other process can open it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url

from hub.errors import HubError

log = structlog.get_logger("hub.daemon")

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
                " `hub run --once` runs only while no daemon holds the scheduler (a daemon runs every job itself)"
            )
        try:
            yield
        finally:
            conn.execute(sa.select(sa.func.pg_advisory_unlock(ADVISORY_KEY)))
            conn.commit()


def _holder() -> str:
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"pid {os.getpid()} on {socket.gethostname()}, started {started}"


def is_shared(engine: sa.Engine) -> bool:
    """True where several daemons may share the database (PostgreSQL): a leader and standbys."""
    return engine.dialect.name == "postgresql"


class SchedulerLeadership:
    """Which process runs the scheduler, on PostgreSQL: the holder of :data:`ADVISORY_KEY` on a dedicated connection.

    :meth:`try_acquire` makes one attempt. :meth:`watch` runs on a thread until ``stopping``: every ``interval``
    a standby tries again and a leader checks that its connection (hence its lock) is still there; each change is
    handed to ``on_change(leader)``. A leader whose connection broke (the server restarted, the network dropped)
    has lost the lock with it and steps down at once, before another process can have taken it for long.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        interval: float = 5.0,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.on_change = on_change
        self._conn: sa.Connection | None = None
        self._leader = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        #: When this process last became the leader (None while a standby).
        self.since: datetime | None = None

    @property
    def is_leader(self) -> bool:
        return self._leader.is_set()

    @property
    def role(self) -> str:
        return "leader" if self.is_leader else "standby"

    def try_acquire(self) -> bool:
        """One attempt at the lock; True if this process holds it now (already held counts)."""
        with self._lock:
            if self._leader.is_set():
                return True
            try:
                if self._conn is None:
                    self._conn = self.engine.connect()
                locked = bool(self._conn.execute(sa.select(sa.func.pg_try_advisory_lock(ADVISORY_KEY))).scalar())
                self._conn.commit()
            except Exception as exc:
                log.warning("could not ask for the scheduler lock", error=f"{type(exc).__name__}: {exc}")
                self._drop_connection()
                return False
            if locked:
                self.since = datetime.now(UTC)
                self._leader.set()
            return locked

    def still_held(self) -> bool:
        """A leader's check: its lock connection still answers. False (and a standby from now) when it does not."""
        with self._lock:
            if not self._leader.is_set():
                return False
            try:
                assert self._conn is not None
                self._conn.execute(sa.text("SELECT 1"))
                self._conn.commit()
                return True
            except Exception as exc:
                log.error(
                    "lost the scheduler lock: its database connection broke; stepping down to standby",
                    error=f"{type(exc).__name__}: {exc}",
                )
                self._drop_connection()
                self._leader.clear()
                self.since = None
                return False

    def watch(self, stopping: threading.Event) -> threading.Thread:
        """Start the thread that retries (standby) or checks (leader) every ``interval`` until ``stopping``."""

        def loop() -> None:
            while not stopping.wait(self.interval):
                try:
                    self.step()
                except Exception:  # never let the watcher die: a standby must keep trying
                    log.exception("scheduler lock check failed")

        self._thread = threading.Thread(target=loop, name="hub-leadership", daemon=True)
        self._thread.start()
        return self._thread

    def step(self) -> None:
        """One round of :meth:`watch`: take the lock if free, or confirm it is still held; report a change."""
        if self.is_leader:
            if not self.still_held():
                self._changed(False)
        elif self.try_acquire():
            log.info("took over the scheduler: the previous holder stopped or died", role="leader")
            self._changed(True)

    def _changed(self, leader: bool) -> None:
        if self.on_change is not None:
            self.on_change(leader)

    def release(self) -> None:
        """Give the lock back (a standby takes over at its next attempt) and close the connection."""
        with self._lock:
            if self._conn is not None and self._leader.is_set():
                try:
                    self._conn.execute(sa.select(sa.func.pg_advisory_unlock(ADVISORY_KEY)))
                    self._conn.commit()
                except Exception:  # the connection is gone: so is the lock
                    pass
            self._leader.clear()
            self.since = None
            self._drop_connection()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.interval + 1)

    def _drop_connection(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.invalidate()  # never back to the pool: a pooled session could still hold the lock
            self._conn.close()
        except Exception:
            pass
        self._conn = None


#: Held while ``hub run --upgrade-db`` migrates, so daemons started together migrate one after the other.
UPGRADE_KEY = int.from_bytes(b"hubmigr8", "big", signed=True)


@contextmanager
def upgrade_lock(engine: sa.Engine) -> Iterator[None]:
    """PostgreSQL: wait for and hold the migration lock for the block. Elsewhere: nothing to hold."""
    if not is_shared(engine):
        yield
        return
    with engine.connect() as conn:
        conn.execute(sa.select(sa.func.pg_advisory_lock(UPGRADE_KEY)))
        conn.commit()
        try:
            yield
        finally:
            conn.execute(sa.select(sa.func.pg_advisory_unlock(UPGRADE_KEY)))
            conn.commit()


def job_key(job_id: str) -> int:
    """The advisory lock key of one daemon job: 8 bytes of the SHA-256 of ``hubjob:<id>``, signed."""
    return int.from_bytes(hashlib.sha256(f"hubjob:{job_id}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def cluster_job_lock(
    engine: sa.Engine, job_id: str, *, wait: threading.Event | None = None, poll: float = 0.2
) -> Iterator[bool]:
    """Hold ``job_id``'s advisory lock for the block, so no other daemon runs that job meanwhile; yields False
    if it could not be had. Without ``wait``, one attempt; with it, retry every ``poll`` seconds until the event
    is set (the daemon stops), then give up. Not PostgreSQL: yields True (one daemon per database there)."""
    if not is_shared(engine):
        yield True
        return
    key = job_key(job_id)
    with engine.connect() as conn:
        locked = False
        while True:
            locked = bool(conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar())
            conn.commit()
            if locked or wait is None or wait.wait(poll):
                break
        try:
            yield locked
        finally:
            if locked:
                try:
                    conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                    conn.commit()
                except Exception:
                    conn.invalidate()  # the lock goes with the connection
