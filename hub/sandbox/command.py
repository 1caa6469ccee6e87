"""``hub sandbox``: serve every installed plugin's emulator on loopback and say how to point a config at it.

:func:`start_sandbox` does the work and returns handles (tests and ``make demo`` use it); :func:`sandbox` is the
Typer command, a thin wrapper that prints :func:`print_sandbox` and waits for Ctrl-C.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Annotated, Any

import pluggy
import typer
import yaml
from rich.console import Console
from rich.table import Table

from hub.errors import HubError
from hub.plugins import make_plugin_manager
from hub.sandbox._emulator import Emulator
from hub.sandbox.faults import FAULTS_PATH, STATS_PATH, FaultInjector, Faults
from hub.sandbox.registry import build_app, emulators
from hub.sandbox.server import serve

DEFAULT_HOST = "127.0.0.1"
DEFAULT_INSPECT_PATH = "/_emulator/state"


class SandboxError(HubError):
    """The sandbox cannot start as asked: an unknown emulator name, a port in use, no emulator installed."""


@dataclass(frozen=True, slots=True)
class RunningEmulator:
    """One emulator being served: its description, base URL and fault injector (``injector.app`` is its app)."""

    emulator: Emulator
    url: str
    injector: FaultInjector

    @property
    def name(self) -> str:
        return self.emulator.name

    @property
    def inspect_url(self) -> str:
        """What the emulator received: ``Emulator.extra["inspect_path"]``, by default ``/_emulator/state``."""
        return self.url + str(self.emulator.extra.get("inspect_path", DEFAULT_INSPECT_PATH))

    @property
    def faults_url(self) -> str:
        return self.url + FAULTS_PATH

    @property
    def stats_url(self) -> str:
        return self.url + STATS_PATH

    def settings(self) -> dict[str, Any]:
        return self.emulator.settings(self.url)

    def config_snippet(self) -> str:
        """The ``connectors:`` block for config/hub.yaml that points a connector of this type here."""
        block = {"connectors": {self.name: {"plugin": self.emulator.connector_type, "settings": self.settings()}}}
        return yaml.safe_dump(block, sort_keys=False, default_flow_style=False)


class Sandbox:
    """Running emulators by name; ``close()`` (or leaving the ``with`` block) stops every server."""

    def __init__(self, stack: ExitStack, running: dict[str, RunningEmulator]) -> None:
        self._stack = stack
        self.running = running

    def __getitem__(self, name: str) -> RunningEmulator:
        return self.running[name]

    def __iter__(self) -> Iterator[RunningEmulator]:
        return iter(self.running.values())

    def __len__(self) -> int:
        return len(self.running)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_sandbox(
    pm: pluggy.PluginManager | None = None,
    *,
    ports: Mapping[str, int] | None = None,
    host: str = DEFAULT_HOST,
    faults: Faults | None = None,
    only: Iterable[str] | None = None,
) -> Sandbox:
    """Serve the installed emulators (``only`` some), each in its own thread on ``host``.

    A port comes from ``ports`` (by emulator name), else the emulator's ``default_port``, else a free one.
    Each gets its own copy of ``faults``. Raises SandboxError for unknown names or a server that cannot start.
    """
    available = emulators(pm if pm is not None else make_plugin_manager())
    ports = dict(ports or {})
    wanted = list(dict.fromkeys(only)) if only else list(available)
    unknown = sorted({*wanted, *ports} - set(available))
    if unknown:
        installed = ", ".join(sorted(available)) or "none"
        raise SandboxError(f"no emulator named {', '.join(map(repr, unknown))} (installed: {installed})")
    if not wanted:
        raise SandboxError("no installed plugin provides an emulator")
    stack = ExitStack()
    running: dict[str, RunningEmulator] = {}
    try:
        for name in wanted:
            emulator = available[name]
            port = ports.get(name, emulator.default_port)
            _check_free(name, host, port)
            injector = build_app(emulator, faults.model_copy(deep=True) if faults else None)
            try:
                url = stack.enter_context(serve(injector, host=host, port=port))
            except RuntimeError as exc:
                raise SandboxError(f"emulator {name!r} could not listen on {host}:{port} (port in use?)") from exc
            running[name] = RunningEmulator(emulator=emulator, url=url, injector=injector)
    except BaseException:
        stack.close()
        raise
    return Sandbox(stack, running)


def _check_free(name: str, host: str, port: int) -> None:
    """Fail early, in plain words, rather than let uvicorn log a bind error from its thread."""
    if not port:
        return
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no conflict
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise SandboxError(f"emulator {name!r} cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def print_sandbox(sandbox: Sandbox, console: Console) -> None:
    """For each emulator: a table of its URLs, then the YAML to paste into config/hub.yaml."""
    for running in sandbox:
        emulator = running.emulator
        title = f"{emulator.name} emulator ({emulator.connector_type})"
        table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 2, 0, 0))
        table.add_column(style="bold", no_wrap=True, min_width=11)
        table.add_column(overflow="fold")
        if emulator.description:
            table.add_row("what", emulator.description)
        table.add_row("URL", running.url)
        table.add_row("inspect", running.inspect_url)
        table.add_row("faults", f"{running.faults_url} (GET, PUT, PATCH)")
        table.add_row("fault stats", running.stats_url)
        console.print(table)
        console.print("paste into config/hub.yaml:", style="dim")
        console.print(_indent(running.config_snippet()), markup=False, highlight=False, soft_wrap=True)
        console.print()
    first = next(iter(sandbox))
    console.print(
        f"inject faults at runtime, e.g.: curl -X PATCH {first.faults_url} -d '{{\"error_rate\": 0.1}}'",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.rstrip("\n").splitlines())


def parse_ports(values: Iterable[str]) -> dict[str, int]:
    """``["voyado=8081", ...]`` -> ``{"voyado": 8081}``; ValueError for anything else."""
    ports: dict[str, int] = {}
    for value in values:
        name, sep, port = value.partition("=")
        name, port = name.strip(), port.strip()
        if not sep or not name or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{value!r}: expected NAME=PORT, e.g. voyado=8081")
        ports[name] = int(port)
    return ports


def run_sandbox(
    pm: pluggy.PluginManager | None = None,
    *,
    ports: Mapping[str, int] | None = None,
    host: str = DEFAULT_HOST,
    faults: Faults | None = None,
    only: Iterable[str] | None = None,
    console: Console | None = None,
    stop: threading.Event | None = None,
) -> None:
    """Start, print, and serve until ``stop`` is set or Ctrl-C."""
    console = console or Console()
    stop = stop or threading.Event()
    with start_sandbox(pm, ports=ports, host=host, faults=faults, only=only) as running:
        print_sandbox(running, console)
        try:
            console.print("serving; press Ctrl-C to stop", style="dim")
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            console.print("stopping", style="dim")


def sandbox(
    port: Annotated[
        list[str] | None,
        typer.Option("--port", "-p", help="NAME=PORT for one emulator (repeatable); default: its own or a free one"),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = DEFAULT_HOST,
    faults: Annotated[
        str | None,
        typer.Option(
            "--faults",
            help="faults to inject, e.g. error_rate=0.1,rate_429=0.05,retry_after=2,timeout_rate=0.05,"
            "hang_seconds=30,drop_rate=0.02,latency=0.05,seed=7,paths=/v2/*|/v3/*,methods=POST",
        ),
    ] = None,
    only: Annotated[list[str] | None, typer.Option("--only", help="serve only this emulator (repeatable)")] = None,
) -> None:
    """Serve the installed plugins' API emulators on 127.0.0.1 and print how to point a config at them."""
    try:
        ports = parse_ports(port or [])
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--port") from None
    try:
        parsed = Faults.parse(faults) if faults else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--faults") from None
    run_sandbox(ports=ports, host=host, faults=parsed, only=only)
