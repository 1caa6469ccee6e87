"""``hub run``: the daemon on the command line.

No ``from __future__ import annotations`` here: typer reads the options' annotations at run time, and they use
the CLI's shared ``ConfigOption``, imported when the command is added.
"""

import faulthandler
import os
import signal
import sys
from contextlib import ExitStack
from typing import Annotated, Any

import typer


def add_commands(cli: typer.Typer) -> None:
    from hub.cli import ConfigOption, _load

    @cli.command("run")
    def run_command(
        config: ConfigOption = None,
        once: Annotated[
            bool,
            typer.Option("--once", help="run every job once in dependency order and exit; non-zero if one failed"),
        ] = False,
        http_port: Annotated[
            int | None,
            typer.Option(
                "--http-port", min=0, max=65535, help="port of /healthz, /readyz, /metrics; overrides daemon.http.port"
            ),
        ] = None,
        upgrade_db: Annotated[bool, typer.Option("--upgrade-db", help="run `hub db upgrade` first")] = False,
    ) -> None:
        """Run the daemon: connector syncs on their schedules, the audience pass, delivery and housekeeping.

        Stops cleanly on SIGTERM or SIGINT: no new job starts, and a running one gets daemon.shutdown_timeout to
        finish. On SQLite only one daemon runs against a database at a time; on PostgreSQL several may: one holds
        the scheduler, the others deliver and stand by to take it over.
        """
        from prometheus_client import disable_created_metrics

        from hub.daemon.lock import SchedulerLeadership, daemon_lock, is_shared, upgrade_lock
        from hub.daemon.runner import Daemon
        from hub.daemon.scheduler import route_scheduler_logs
        from hub.errors import ConfigError
        from hub.schema import upgrade

        hub = _load(config)
        route_scheduler_logs()
        disable_created_metrics()  # no ``*_created`` series beside each counter: noise in the text format
        shared = is_shared(hub.engine) and not once  # several daemons on PostgreSQL; --once still runs alone
        leadership: SchedulerLeadership | None = None
        try:
            with ExitStack() as held:
                if shared:
                    interval = hub.config.daemon.takeover_interval.total_seconds()
                    leadership = SchedulerLeadership(hub.engine, interval=interval)
                    held.callback(leadership.release)
                    leadership.try_acquire()
                else:
                    held.enter_context(daemon_lock(hub.engine, hub.config.database_url()))
                if upgrade_db:
                    with upgrade_lock(hub.engine):  # daemons started together: one migrates, the others wait
                        upgrade(hub.engine)
                hub.ensure_schema()
                issues = hub.check_mappings()
                if issues:
                    raise ConfigError(issues)
                for name in (*hub.sources(), *hub.destinations()):
                    hub.connector(name)  # built now, once, not raced for by two job threads
                daemon = Daemon(hub, http_port=http_port, leadership=leadership)
                _on_signals(daemon)
                if once:
                    ok = daemon.run_once()
                else:
                    daemon.serve()
                    ok = True
                if daemon.abandoned:  # threads still running: leave without joining them (the brief's exit 0)
                    _exit_now(1 if once else 0)
        finally:
            hub.close()
        if not ok:
            raise typer.Exit(1)


def _on_signals(daemon: Any) -> None:
    """SIGTERM and SIGINT stop the daemon gracefully; a second one exits at once. SIGUSR1 writes every thread's
    stack to stderr (``faulthandler``, which works even when Python code cannot run): what a stuck daemon is
    doing, without stopping it."""

    def handle(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if daemon.stopping.is_set():
            sys.stderr.write(f"{name} again: exiting now\n")
            _exit_now(1)
        daemon.stop(name)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    faulthandler.register(signal.SIGUSR1, all_threads=True)


def _exit_now(code: int) -> None:
    """Leave without waiting for job threads that would not finish (the lock goes with the process)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
