"""The ``hub`` command line. Plugins add commands through ``hub_commands``."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from hub import __version__, report
from hub import plugins as plugin_registry
from hub.app import Hub
from hub.audience.commands import add_commands as add_audience_commands
from hub.config import config_json_schema, config_path, starter_config
from hub.daemon.command import add_commands as add_daemon_commands
from hub.errors import ConfigError, HubError
from hub.logging import configure_logging
from hub.recommend.commands import add_commands as add_recommend_commands
from hub.schema import current_revision, head_revision, upgrade

EXAMPLE_MAPPING = """\
description: customers from a CSV export (written by `hub init`; see docs/mappings.md)
key: "{id}"
entities:
  - entity: customer
    fields:
      external_id: {path: id, required: true}
      email: {path: email, transforms: [email]}
      phone: {path: phone, transforms: [{e164: {region: "NO"}}]}
      first_name: {path: first_name, transforms: [strip]}
      last_name: {path: last_name, transforms: [strip]}
      updated_at: {path: updated_at, type: datetime}
  - entity: consent
    when: newsletter
    fields:
      channel: {value: email}
      status: {path: newsletter, transforms: [lower, {map: {values: {"yes": opt_in, "no": opt_out}, strict: true}}]}
      at: {path: updated_at, type: datetime}
"""
EXAMPLE_CSV = """\
id,email,phone,first_name,last_name,newsletter,updated_at
1,Kari.Nordmann@example.no,+47 412 34 567,Kari,Nordmann,yes,2025-05-01T10:00:00+02:00
2,ola@example.no,41234568,Ola,Hansen,no,2025-05-02T11:30:00+02:00
3,not-an-email,,Per,Berg,maybe,2025-05-03T09:15:00+02:00
"""

console = Console(stderr=False)
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="hub.yaml to use (default: $HUB_CONFIG or config/hub.yaml)"),
]


class _State:
    log_json: bool | None = None
    log_level: str = "INFO"


state = _State()


def _load(config: Path | None) -> Hub:
    hub = Hub.load(config)
    configure_logging(json=state.log_json, level=state.log_level, secrets=hub.secret_values())
    return hub


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    return typer.Exit(code)


def make_cli() -> typer.Typer:
    """Build the CLI: the core commands, then whatever installed plugins add."""
    cli = typer.Typer(no_args_is_help=True, add_completion=False, help="hub: commerce data in, marketing out.")

    @cli.callback()
    def _options(
        log_json: Annotated[bool, typer.Option("--log-json", help="JSON log lines even on a terminal")] = False,
        log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING, ERROR")] = "INFO",
    ) -> None:
        state.log_json = True if log_json else None
        state.log_level = log_level
        configure_logging(json=state.log_json, level=log_level)

    @cli.command()
    def version() -> None:
        """Print hub's version."""
        console.print(__version__)

    @cli.command()
    def init(
        path: Annotated[Path, typer.Argument(help="where to write the starter configuration")] = Path(
            "config/hub.yaml"
        ),
        force: Annotated[bool, typer.Option("--force", help="overwrite existing files")] = False,
    ) -> None:
        """Write a commented starter configuration, an example mapping and a small CSV to try them on."""
        files = {
            path: starter_config(),
            Path("mappings/example.yaml"): EXAMPLE_MAPPING,
            Path("data/customers.csv"): EXAMPLE_CSV,
        }
        if not force and (existing := [str(p) for p in files if p.exists()]):
            raise _fail(f"{', '.join(existing)} already exist; use --force to overwrite")
        for target, text in files.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            console.print(f"wrote {target}")
        console.print(f"next: `hub validate -c {path}`, `hub db upgrade -c {path}`, `hub sync -c {path}`")

    @cli.command()
    def validate(config: ConfigOption = None) -> None:
        """Check the configuration and every mapping, without touching data."""
        hub = _load(config)
        issues = hub.check_mappings()
        if issues:
            raise ConfigError(issues)
        n_maps = len(hub._mappings)
        audience = f", {len(hub.config.segments)} segments, {len(hub.config.triggers)} triggers"
        console.print(
            f"{config_path(config)}: OK ({len(hub.config.connectors)} connectors, {n_maps} mappings{audience})"
        )

    @cli.command()
    def schema(config: ConfigOption = None) -> None:
        """Print the JSON Schema of hub.yaml, installed plugins' settings included."""
        pm = plugin_registry.make_plugin_manager()
        sys.stdout.write(json.dumps(config_json_schema(pm), indent=2) + "\n")

    @cli.command("plugins")
    def list_plugins(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """List plugins, their connector types and roles, and the hooks they implement."""
        pm = plugin_registry.make_plugin_manager()
        info = plugin_registry.describe(pm)
        if as_json:
            sys.stdout.write(json.dumps(info, indent=2) + "\n")
            return
        table = Table("plugin", "distribution", "connector types (roles)", "hooks")
        for p in info["plugins"]:
            types = ", ".join(f"{t['type']} ({'/'.join(t['roles'])})" for t in p["connector_types"])
            table.add_row(p["name"], p["distribution"] or "-", types or "-", ", ".join(p["hooks"]))
        console.print(table)
        for p in info["plugins"]:
            for t in p["connector_types"]:
                for kind, spec in t["kinds"].items():
                    console.print(
                        f"{t['type']}.{kind}: {spec['guarantee'].replace('_', '-')}, {spec['batch_size']} per request"
                        + (f"; {spec['why']}" if spec["why"] else ""),
                        highlight=False,
                    )
        for failure in info["failures"]:
            err.print(f"[red]plugin {failure['name']} failed to load:[/red] {failure['error']}")

    db = typer.Typer(no_args_is_help=True, help="Database schema.")
    cli.add_typer(db, name="db")

    @db.command("upgrade")
    def db_upgrade(config: ConfigOption = None) -> None:
        """Apply the database migrations (creates the schema on a new database)."""
        hub = _load(config)
        before, after = upgrade(hub.engine)
        if before == after:
            console.print(f"database already at {after}")
        else:
            console.print(f"database upgraded from {before or 'empty'} to {after}")

    @db.command("current")
    def db_current(config: ConfigOption = None) -> None:
        """Show the database's schema revision and the one this hub needs."""
        hub = _load(config)
        console.print(f"database: {current_revision(hub.engine) or 'empty'}  hub needs: {head_revision()}")

    @cli.command()
    def sync(
        connectors: Annotated[
            list[str] | None, typer.Argument(help="connectors to sync (default: all sources)")
        ] = None,
        config: ConfigOption = None,
        upgrade_db: Annotated[bool, typer.Option("--upgrade-db", help="run `hub db upgrade` first")] = False,
        sandbox: Annotated[
            bool,
            typer.Option(
                "--sandbox",
                help="read API sources from their installed emulators (seeded with the demo data where the plugin "
                "can), started in this process, not the configured URLs; file sources are read as configured",
            ),
        ] = False,
    ) -> None:
        """Run one sync: read every stream from its cursor, map, resolve, load. Prints a summary."""
        from hub.engine.run import SyncEngine

        hub = _load(config)
        if upgrade_db:
            upgrade(hub.engine)
        started = time.perf_counter()
        with contextlib.ExitStack() as stack, _progress() as progress:
            if sandbox:
                from hub.delivery.sandboxed import point_at_emulators

                names = [name for name in (connectors or hub.sources()) if name in hub.sources()]
                running = point_at_emulators(hub, stack, names, missing="skip")
                for name, emulator in running.items():
                    progress.console.print(
                        f"sandbox: {name} -> {emulator.name} emulator at {emulator.url}", highlight=False
                    )
            tasks: dict[tuple[str, str], Any] = {}

            def on_batch(connector: str, stream: str, read: int) -> None:
                key = (connector, stream)
                if key not in tasks:
                    tasks[key] = progress.add_task(f"{connector}.{stream}", total=None, rate="")
                task = progress.tasks[tasks[key]]
                rate = read / max(task.elapsed or 1e-9, 1e-9)
                progress.update(tasks[key], completed=read, rate=f"{rate:,.0f} rec/s")

            summary = SyncEngine(hub, progress=on_batch).sync(connectors or None)
        _print_summary(hub, summary, time.perf_counter() - started)
        if not summary.ok:
            raise typer.Exit(1)

    @cli.command()
    def status(config: ConfigOption = None) -> None:
        """Last runs with their counts, the saved cursors, and source fields no mapping reads."""
        hub = _load(config)
        hub.ensure_schema()
        with hub.engine.connect() as conn:
            runs = report.last_runs(conn)
            states = report.states(conn)
        table = Table("run", "connector.stream", "status", "started", "read", "loaded", "rejected", "deleted", "merges")
        for r in runs:
            table.add_row(
                str(r["id"]),
                f"{r['connector']}.{r['stream']}",
                r["status"],
                r["started_at"].strftime("%Y-%m-%d %H:%M:%S"),
                f"{r['records_read']:,}",
                f"{r['records_loaded']:,}",
                f"{r['records_rejected']:,}",
                _deletions(r["records_deleted"], r["deletions_ignored"]),
                f"{r['merges']:,}",
            )
        console.print(table)
        cursors = Table("connector.stream", "cursor", "unknown source fields (ignored)")
        for s in states:
            cursor = orjson.dumps(s["cursor"]).decode()
            cursors.add_row(
                f"{s['connector']}.{s['stream']}",
                cursor if len(cursor) <= 80 else cursor[:77] + "...",
                ", ".join(s["unknown_fields"]) or "-",
            )
        console.print(cursors)

    rejects = typer.Typer(help="Records set aside with their reasons.", invoke_without_command=True)
    cli.add_typer(rejects, name="rejects")

    @rejects.callback()
    def rejects_list(
        ctx: typer.Context,
        config: ConfigOption = None,
        connector: Annotated[str | None, typer.Option(help="only this connector")] = None,
        stream: Annotated[str | None, typer.Option(help="only this stream")] = None,
        limit: Annotated[int, typer.Option(help="how many, newest first")] = 50,
    ) -> None:
        """List rejects (newest first) and the top reasons; `hub rejects show ID` shows one whole."""
        if ctx.invoked_subcommand is not None:
            return
        hub = _load(config)
        hub.ensure_schema()
        with hub.engine.connect() as conn:
            rows = report.rejects(conn, connector=connector, stream=stream, limit=limit)
            reasons = report.reject_reasons(conn)
        table = Table("id", "connector.stream", "stage", "record", "errors")
        for r in rows:
            table.add_row(
                str(r["id"]),
                f"{r['connector']}.{r['stream']}",
                r["stage"],
                r["record_key"] or "-",
                "; ".join(r["errors"]),
            )
        console.print(table)
        _print_reasons(reasons)

    @rejects.command("show")
    def rejects_show(reject_id: int, config: ConfigOption = None) -> None:
        """Show one reject: its reasons and the raw payload exactly as it arrived."""
        hub = _load(config)
        hub.ensure_schema()
        with hub.engine.connect() as conn:
            row = report.reject(conn, reject_id)
        if row is None:
            raise _fail(f"no reject with id {reject_id}")
        console.print(f"reject {row['id']}: {row['connector']}.{row['stream']} ({row['stage']}), run {row['run_id']}")
        for e in row["errors"]:
            console.print(f"  - {e}", highlight=False)
        sys.stdout.write(json.dumps(row["payload"], indent=2, ensure_ascii=False, default=str) + "\n")

    _delivery_commands(cli)
    add_audience_commands(cli)
    add_recommend_commands(cli)
    add_daemon_commands(cli)
    try:
        from hub.sandbox.command import sandbox as sandbox_command
    except ImportError:
        pass
    else:
        cli.command("sandbox")(sandbox_command)

    pm = plugin_registry.make_plugin_manager()
    pm.hook.hub_commands(cli=cli)
    return cli


def _delivery_commands(cli: typer.Typer) -> None:
    """``hub deliver``, ``hub outbox``, ``hub deadletters`` and ``hub check``."""

    @cli.command("deliver")
    def deliver_command(
        destinations: Annotated[
            list[str] | None, typer.Argument(help="destinations to deliver to (default: all enabled)")
        ] = None,
        config: ConfigOption = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="show what would go out per destination; send nothing")
        ] = False,
        sandbox: Annotated[
            bool,
            typer.Option(
                "--sandbox", help="deliver to the installed emulators, started in this process, not the configured URLs"
            ),
        ] = False,
        faults: Annotated[
            str | None,
            typer.Option(help="with --sandbox: faults the emulators inject, e.g. error_rate=0.05,rate_429=0.02"),
        ] = None,
    ) -> None:
        """One delivery pass: recover stale messages, enqueue changes, send what is due. Prints a summary."""
        from contextlib import ExitStack

        from hub.delivery.dispatcher import deliver

        hub = _load(config)
        hub.ensure_schema()
        if faults and not sandbox:
            raise _fail("--faults needs --sandbox: faults are injected by the emulators", code=2)
        with ExitStack() as stack:
            stack.callback(hub.close)  # pooled connections of the destinations' clients
            running: dict[str, Any] = {}
            if sandbox:
                from hub.delivery.sandboxed import point_at_emulators
                from hub.sandbox import Faults

                try:
                    injected = Faults.parse(faults) if faults else None
                except ValueError as exc:
                    raise _fail(f"--faults: {exc}", code=2) from None
                running = point_at_emulators(hub, stack, destinations or None, injected)
                for name, emulator in running.items():
                    console.print(f"sandbox: {name} -> {emulator.name} emulator at {emulator.url}", highlight=False)
            if dry_run:
                _print_plan(deliver(hub, destinations or None, dry_run=True))
                return
            with _delivery_progress() as progress:
                tasks: dict[str, Any] = {}

                def on_progress(name: str, done: int, total: int) -> None:
                    if name not in tasks:
                        tasks[name] = progress.add_task(name, total=total or None)
                    progress.update(tasks[name], completed=done, total=max(total, done) or None)

                summary = deliver(hub, destinations or None, progress=on_progress)
            _print_delivery(summary)
            if running:
                _print_received(running)
        if not summary.ok:
            raise typer.Exit(1)

    @cli.command("outbox")
    def outbox_command(config: ConfigOption = None) -> None:
        """Outbox counts by destination, kind and status; the oldest pending message; paused destinations."""
        from datetime import UTC, datetime

        from hub.delivery import outbox

        hub = _load(config)
        hub.ensure_schema()
        with hub.engine.connect() as conn:
            counts = outbox.counts(conn)
            oldest = outbox.oldest_pending(conn)
            paused = outbox.paused_destinations(conn)
        statuses = ("pending", "in_flight", "sent", "dead", "skipped")
        table = Table("destination", "kind", *statuses, box=None, header_style="bold")
        grid: dict[tuple[str, str], dict[str, int]] = {}
        for destination, kind, status_, n in counts:
            grid.setdefault((destination, kind), {})[status_] = n
        for (destination, kind), by_status in grid.items():
            table.add_row(destination, kind, *(f"{by_status.get(s, 0):,}" for s in statuses))
        if grid:
            console.print(table)
        else:
            console.print("the outbox is empty")
        now = datetime.now(UTC)
        for destination, created in sorted(oldest.items()):
            console.print(f"{destination}: oldest pending message is {_age(now - created)} old", highlight=False)
        for destination, (reason, since) in sorted(paused.items()):
            when = since.strftime("%Y-%m-%d %H:%M:%S") if since else "?"
            err.print(f"[red]{destination} is PAUSED[/red] since {when}: {reason}", highlight=False)

    letters = typer.Typer(no_args_is_help=True, help="Messages that could not be delivered, kept for review.")
    cli.add_typer(letters, name="deadletters")

    @letters.command("list")
    def deadletters_list(
        config: ConfigOption = None,
        destination: Annotated[str | None, typer.Option(help="only this destination")] = None,
        kind: Annotated[str | None, typer.Option(help="only this kind")] = None,
        limit: Annotated[int, typer.Option(help="how many, newest first")] = 100,
    ) -> None:
        """List dead letters, newest first; `hub deadletters show ID` shows one whole."""
        from hub.delivery import outbox

        hub = _load(config)
        hub.ensure_schema()
        with hub.engine.connect() as conn:
            rows = outbox.dead_letters(conn, destination=destination, kind=kind, limit=limit)
        table = Table("id", "destination", "kind", "customer", "attempts", "class", "code", "error", box=None)
        for r in rows:
            error = (r["last_error"] or "").replace("\n", " ")
            table.add_row(
                str(r["id"]),
                r["destination"],
                r["kind"],
                str(r["customer_id"] or "-"),
                str(r["attempts"]),
                r["error_class"] or "-",
                str(r["last_status_code"] or "-"),
                error if len(error) <= 80 else error[:77] + "...",
            )
        console.print(table if rows else "no dead letters")

    @letters.command("show")
    def deadletters_show(message_id: int, config: ConfigOption = None) -> None:
        """Show one message: status, attempts, the error with the destination's body, the payload, its audit."""
        from hub.delivery import outbox

        hub = _load(config)
        hub.ensure_schema()
        with hub.engine.connect() as conn:
            message = outbox.get_message(conn, message_id)
            audit = outbox.audit_of(conn, message_id)
        if message is None:
            raise _fail(f"no message with id {message_id}")
        console.print(
            f"message {message.id}: {message.destination} {message.kind} (customer {message.customer_id or '-'})"
            f", {message.status}, {message.attempts} attempts, key {message.idempotency_key}",
            highlight=False,
        )
        if message.error_class or message.last_error:
            code = f" {message.last_status_code}" if message.last_status_code else ""
            console.print(f"error ({message.error_class or '-'}{code}): {message.last_error or ''}", highlight=False)
        for entry in audit:
            console.print(
                f"  {entry['at']:%Y-%m-%d %H:%M:%S} {entry['action']} by {entry['actor']}: {entry['detail'] or ''}"
            )
        sys.stdout.write(json.dumps(message.payload, indent=2, ensure_ascii=False, default=str) + "\n")

    @letters.command("replay")
    def deadletters_replay(
        message_ids: Annotated[list[int] | None, typer.Argument(help="dead letters to re-queue")] = None,
        config: ConfigOption = None,
        replay_all: Annotated[bool, typer.Option("--all", help="every dead letter (of --destination)")] = False,
        destination: Annotated[str | None, typer.Option(help="with --all: only this destination")] = None,
        actor: Annotated[str | None, typer.Option(help="who replays (default: the OS user)")] = None,
    ) -> None:
        """Re-queue dead letters with a new attempt budget, the payload rebuilt from today's data where possible."""
        from hub.delivery.dispatcher import replay_dead_letters

        if not message_ids and not replay_all:
            raise _fail("name the dead letters to replay, or use --all")
        hub = _load(config)
        hub.ensure_schema()
        result = replay_dead_letters(hub, message_ids or None, destination=destination, actor=actor)
        for message_id, reason in result.refused:
            err.print(f"[yellow]not replayed[/yellow] {message_id}: {reason}", highlight=False)
        ids = ", ".join(str(i) for i in result.replayed) or "none"
        console.print(f"replayed {len(result.replayed)} by {result.actor}: {ids}", highlight=False)
        if result.refused and not result.replayed:
            raise typer.Exit(1)

    @cli.command("check")
    def check_command(name: str, config: ConfigOption = None) -> None:
        """Ask a connector whether its remote end answers and its credentials work."""
        hub = _load(config)
        try:
            result = hub.connector(name).check()
            ok, message = result.ok, result.message
        except HubError:
            raise
        except Exception as exc:
            ok, message = False, f"{type(exc).__name__}: {exc}"
        if ok:
            console.print(f"{name}: OK, {message}", highlight=False)
        else:
            console.print(f"{name}: NOT OK, {message}", highlight=False)
            raise typer.Exit(1)


def _delivery_progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def _age(delta: Any) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"


def _print_plan(summary: Any) -> None:
    columns = ("contact_create", "contact_update", "contact_delete", "order", "trigger", "invalid")
    table = Table("destination", "creates", "updates", "deletes", "orders", "triggers", "invalid", "other", box=None)
    for name, s in summary.destinations.items():
        other = sum(n for k, n in s.planned.items() if k not in columns)
        table.add_row(name, *(f"{s.planned.get(k, 0):,}" for k in columns), f"{other:,}")
    console.print("dry run: nothing was sent or written")
    console.print(table)


def _print_delivery(summary: Any) -> None:
    for name, s in summary.destinations.items():
        status_ = "[red]PAUSED[/red]" if s.paused else "[red]FAILED[/red]" if s.error else "ok"
        console.print(f"[bold]{name}[/bold]: {status_} in {s.elapsed:.1f} s ({s.requests_per_second:,.0f} requests/s)")
        sent = ", ".join(f"{kind} {n:,}" for kind, n in s.sent.items()) or "nothing"
        if s.created or s.updated:
            sent += f" (contacts: {s.created:,} created, {s.updated:,} updated)"
        console.print(f"  sent      {sent}", highlight=False)
        console.print(f"  retries   {s.retries:,}; dead {s.dead:,}; invalid {s.invalid:,}; skipped {s.skipped:,}")
        enqueued = {k: n for k, n in (s.enqueued or {}).items() if n}
        if enqueued:
            invalid = enqueued.pop("invalid", 0)
            text = ", ".join(f"{k.replace('_', ' ')} {n:,}" for k, n in enqueued.items()) or "nothing new"
            if invalid:
                text += f"; {invalid:,} not sendable (e.g. no match key), kept as dead letters"
            console.print(f"  enqueued  {text}", highlight=False)
    if summary.recovered.get("pending") or summary.recovered.get("dead"):
        console.print(
            f"recovered after an interrupted pass: {summary.recovered['pending']} back to pending,"
            f" {summary.recovered['dead']} parked as dead letters (outcome unknown)"
        )
    for name, s in summary.destinations.items():
        if s.paused:
            err.print(f"[red]{name} is PAUSED:[/red] {s.paused_reason}; fix it, `hub check {name}`, deliver again")
        if s.error:
            err.print(f"[red]{name} failed:[/red] {s.error}", highlight=False)
        if s.dead or s.invalid:
            console.print(
                f"{name}: {s.dead + s.invalid} new dead letters; see `hub deadletters list --destination {name}`"
            )


def _print_received(running: dict[str, Any]) -> None:
    from hub.delivery.sandboxed import received

    for name, emulator in running.items():
        counts = received(emulator)
        text = ", ".join(f"{key.replace('_', ' ')} {n:,}" for key, n in counts.items())
        console.print(f"{name} ({emulator.name} emulator) holds: {text}", highlight=False)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<24}"),
        TextColumn("{task.completed:>10,} records"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def _print_reasons(reasons: list[tuple[str, int]]) -> None:
    if reasons:
        console.print("top reasons:")
        for reason, count in reasons:
            console.print(f"  {count:>6,}  {reason}", highlight=False)


def _deletions(deleted: int, ignored: int) -> str:
    """A run's tombstones: those that deleted something, and those naming nothing the source holds, e.g.
    ``12 (+3 ignored)``; just ``12`` when none were ignored."""
    return f"{deleted:,} (+{ignored:,} ignored)" if ignored else f"{deleted:,}"


def _print_summary(hub: Hub, summary: Any, seconds: float) -> None:
    ignored = sum(s.deletions_ignored for s in summary.streams)
    # A deleted column only when this run met tombstones (most runs meet none), to keep the table narrow; the
    # ignored ones are given below it, and per run by `hub status`.
    deletions = bool(summary.records_deleted or ignored)
    table = Table(box=None, header_style="bold")
    table.add_column("stream", no_wrap=True)
    columns = ("status", "read", "loaded", "rejected", *(("deleted",) if deletions else ()), "new cust.", "merges")
    for name in (*columns, "rec/s"):
        table.add_column(name, justify="left" if name == "status" else "right", no_wrap=True)
    for s in summary.streams:
        table.add_row(
            f"{s.connector}.{s.stream}",
            "ok" if s.status == "succeeded" else f"[red]{s.status}[/red]",
            f"{s.read:,}",
            f"{s.loaded:,}",
            f"{s.rejected:,}",
            *((f"{s.deleted:,}",) if deletions else ()),
            f"{s.created:,}",
            f"{s.merges:,}",
            f"{s.read / s.seconds:,.0f}" if s.seconds else "-",
        )
    console.print(table)
    for s in summary.streams:
        if s.error:
            err.print(f"[red]{s.connector}.{s.stream} failed:[/red] {s.error}", highlight=False)
    with hub.engine.connect() as conn:
        counts = report.model_counts(conn)
        reasons = report.reject_reasons(conn, run_ids=[s.run_id for s in summary.streams])
    read = summary.records_read
    console.print(
        f"customers after merging: {counts.customers:,} (from {counts.customers + counts.merged_away:,} created,"
        f" {counts.merges:,} merges, {counts.identities:,} identity keys)"
    )
    console.print("model: " + ", ".join(f"{name} {n:,}" for name, n in counts.tables.items()))
    console.print(f"rejected this run: {sum(s.rejected for s in summary.streams):,}")
    _print_reasons(reasons)
    if deletions:
        console.print(
            f"deleted this run: {summary.records_deleted:,}"
            + (f"; ignored tombstones: {ignored:,} (nothing loaded to delete)" if ignored else "")
        )
    console.print(f"{read:,} records in {seconds:.1f} s ({read / seconds if seconds else 0:,.0f} records/s)")


def main() -> None:
    try:
        make_cli()()
    except ConfigError as exc:
        err.print(f"[red]configuration error{'s' if len(exc.issues) > 1 else ''}:[/red]")
        for issue in exc.issues:
            err.print(f"  {issue}", highlight=False, markup=False)
        sys.exit(2)
    except HubError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)
