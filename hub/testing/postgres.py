"""A throwaway PostgreSQL server for tests: its own data directory, port and socket; stopped by data dir.

Independent of pytest so that benchmarks and scripts can use it too. ``initdb``, ``pg_ctl`` and ``postgres``
refuse to run as root, so as root every server command runs as the ``postgres`` user (``runuser``) on a
directory that user owns. The server is tuned for throwaway data (``fsync=off``): never point it at data
that matters.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PostgresNotFound", "PostgresServer", "find_bindir"]

_INITDB_OPTIONS = ("-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
_SERVER_OPTIONS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=200")
_START_ATTEMPTS = 3


class PostgresNotFound(RuntimeError):
    """The PostgreSQL server binaries (``initdb``, ``pg_ctl``) are not installed where we look."""


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: ``pg_config --bindir``, the newest
    ``/usr/lib/postgresql/*/bin`` (Debian, Ubuntu), then ``PATH``."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30)
            candidates.append(Path(out.stdout.strip()))
    versioned = glob.glob("/usr/lib/postgresql/*/bin")
    candidates.extend(Path(p) for p in sorted(versioned, key=_version_key, reverse=True))
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).resolve().parent)
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    looked = ", ".join(str(c) for c in candidates) or "pg_config, /usr/lib/postgresql/*/bin, PATH"
    raise PostgresNotFound(f"no initdb and pg_ctl in {looked}")


def _version_key(bindir: str) -> tuple[int, ...]:
    version = Path(bindir).parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """One server in a fresh temporary directory. ``start()`` returns its URL; ``stop()`` removes it all.

    Usable as a context manager. The superuser is ``postgres`` with trust authentication, on 127.0.0.1 only.
    """

    bindir: Path = field(default_factory=find_bindir)
    port: int = 0
    base: Path | None = None

    @property
    def data_dir(self) -> Path:
        if self.base is None:
            raise RuntimeError("the server has not been started")
        return self.base / "data"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL of the ``postgres`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> str:
        # A temp dir of its own, not pytest's tmp_path: the postgres user must be able to enter it.
        self.base = Path(tempfile.mkdtemp(prefix="hub-pg-"))
        try:
            self._chown(self.base)
            self._run("initdb", "-D", str(self.data_dir), *_INITDB_OPTIONS)
            for attempt in range(1, _START_ATTEMPTS + 1):
                self.port = _free_port()
                try:
                    self._pg_ctl_start()
                    break
                except subprocess.CalledProcessError:
                    # Another process may have taken the port between probing and binding; try another.
                    if attempt == _START_ATTEMPTS:
                        raise
        except BaseException:
            self._remove()
            raise
        return self.url

    def stop(self) -> None:
        """Stop the server of this data directory (never by process name) and delete the directory."""
        if self.base is None:
            return
        try:
            if (self.data_dir / "postmaster.pid").exists():
                try:
                    self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")
                except subprocess.CalledProcessError:
                    self._run("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        finally:
            self._remove()

    def log(self) -> str:
        """The server log, for error messages."""
        if self.base is None:
            return ""
        try:
            return (self.base / "postgres.log").read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _pg_ctl_start(self) -> None:
        options = [
            "-c listen_addresses=127.0.0.1",
            f"-c port={self.port}",
            f"-c unix_socket_directories={shlex.quote(str(self.data_dir))}",
            *(f"-c {option}" for option in _SERVER_OPTIONS),
        ]
        log = str(self.data_dir.parent / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data_dir), "-l", log, "-w", "-t", "60", "-o", " ".join(options), "start")

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        try:
            subprocess.run(
                command,
                cwd=self.base,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            )
        except subprocess.CalledProcessError as exc:
            exc.add_note(f"{shlex.join(command)}\n{exc.stdout}{exc.stderr}{self.log()[-4000:]}")
            raise

    @staticmethod
    def _chown(path: Path) -> None:
        if os.geteuid() != 0:
            return
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresNotFound("running as root needs the 'postgres' user to own the server") from None
        shutil.chown(path, "postgres", "postgres")

    def _remove(self) -> None:
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None
