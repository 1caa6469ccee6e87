"""``hub compute``, ``hub segments``, ``hub audience`` and ``hub explain``: the audience steps on the command line.

No ``from __future__ import annotations`` here: typer reads the options' annotations at run time, and they use
the CLI's shared ``ConfigOption``, imported when the commands are added.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from hub.clock import FixedClock

if TYPE_CHECKING:
    from hub.app import Hub

NowOption = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="run as if it were this moment (ISO 8601; without an offset, in the configured timezone)",
    ),
]


def parse_now(text: str, timezone: str) -> datetime:
    """``--now``: an ISO date or datetime; a naive one is read in hub's configured timezone."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 date or datetime", param_hint="--now") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo(timezone))


def add_commands(cli: typer.Typer) -> None:
    from hub.cli import ConfigOption, _fail, _load, console

    @contextmanager
    def opened(config: Path | None, now: str | None) -> Iterator["Hub"]:
        """The configured hub on a current schema, at ``--now`` if given; closed (engine and clients) after."""
        hub = _load(config)
        try:
            hub.ensure_schema()
            if now is not None:
                hub.clock = FixedClock(parse_now(now, hub.config.timezone))
            yield hub
        finally:
            hub.close()

    @cli.command("compute")
    def compute_command(
        config: ConfigOption = None,
        full: Annotated[
            bool, typer.Option("--full", help="every customer, and refit CLV (default: what changed)")
        ] = False,
        now: NowOption = None,
    ) -> None:
        """Recompute customer attributes (RFM, CLV, tiers, rhythm, product groups) for changed customers, or all."""
        from hub.audience.pipeline import compute

        with opened(config, now) as hub:
            summary = compute(hub, full=True if full else None)
        _print_compute(console, summary)

    segments = typer.Typer(help="Segment sizes and changes; `preview NAME` shows members.", no_args_is_help=False)
    cli.add_typer(segments, name="segments")

    @segments.callback(invoke_without_command=True)
    def segments_list(ctx: typer.Context, config: ConfigOption = None) -> None:
        """List every configured segment with its size and the last evaluation's entered and left."""
        if ctx.invoked_subcommand is not None:
            return
        from hub.audience.segments import segment_sizes

        with opened(config, None) as hub, hub.engine.connect() as conn:
            known = {info.name: info for info in segment_sizes(conn)}
        table = Table("segment", "members", "entered", "left", "evaluated", "when", title="segments")
        for name, segment in hub.config.segments.items():
            info = known.get(name)
            table.add_row(
                name,
                f"{info.members:,}" if info else "-",
                f"{info.entered:,}" if info else "-",
                f"{info.left:,}" if info else "-",
                f"{info.evaluated_at:%Y-%m-%d %H:%M}" if info and info.evaluated_at else "never",
                segment.when,
            )
        console.print(table)

    @segments.command("preview")
    def segments_preview(
        name: Annotated[str, typer.Argument(help="the segment")],
        config: ConfigOption = None,
        limit: Annotated[int, typer.Option(help="members to show")] = 20,
        now: NowOption = None,
    ) -> None:
        """Show sample members of a segment with their key attributes."""
        from hub.audience.segments import preview

        with opened(config, now) as hub:
            if name not in hub.config.segments:
                known = ", ".join(hub.config.segments) or "none"
                raise _fail(f"no segment named {name!r} (configured: {known})")
            with hub.engine.connect() as conn:
                rows = preview(conn, name, limit=limit, now=hub.clock.now())
        if not rows:
            console.print(f"{name}: no members (run `hub audience` to evaluate segments)")
            return
        table = Table(*rows[0].keys(), title=f"{name}: {len(rows)} sample members")
        for row in rows:
            table.add_row(*(_cell(value) for value in row.values()))
        console.print(table)

    @cli.command("audience")
    def audience_command(
        config: ConfigOption = None,
        full: Annotated[bool, typer.Option("--full", help="recompute every customer's attributes first")] = False,
        now: NowOption = None,
    ) -> None:
        """Compute attributes, evaluate segments, fire triggers and decide every due message under contact pressure."""
        from hub.audience.pipeline import run_audience

        with opened(config, now) as hub:
            summary = run_audience(hub, full=True if full else None)
        _print_audience(console, hub, summary)

    @cli.command("explain")
    def explain_command(
        customer: Annotated[str, typer.Argument(help="customer id, e-mail, member number or phone")],
        config: ConfigOption = None,
        message: Annotated[
            str | None, typer.Option("--message", "-m", help="a message type, e.g. post_purchase")
        ] = None,
        now: NowOption = None,
        as_json: Annotated[bool, typer.Option("--json", help="the explanation as JSON")] = False,
    ) -> None:
        """Why a customer did or did not get a message: attributes, segments, candidates and every decision."""
        import json

        from hub.audience.explain import explain, resolve_customer

        with opened(config, now) as hub:
            if message is not None and message not in hub.config.contact_pressure.message_types:
                known = ", ".join(hub.config.contact_pressure.message_types) or "none"
                raise _fail(f"no message type {message!r} (contact_pressure.message_types: {known})")
            with hub.engine.connect() as conn:
                customer_id = resolve_customer(conn, customer)
                if customer_id is None:
                    raise _fail(f"no customer matches {customer!r} (try an id, e-mail, member number or phone)")
                explanation = explain(
                    conn,
                    hub.config,
                    customer_id,
                    hub.clock.now(),
                    message_type=message,
                    plugin_attributes=hub.attribute_specs,
                )
        if as_json:
            typer.echo(json.dumps(explanation.to_dict(), indent=2, default=str))
        else:
            console.print(explanation.render())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d}"
    return str(value)


def _print_compute(console: Any, summary: Any) -> None:
    kind = "all" if summary.full else "changed"
    console.print(f"attributes: {summary.customers:,} customers ({kind}) in {summary.seconds:.1f} s", highlight=False)
    if summary.tiers:
        console.print("tiers: " + ", ".join(f"{tier} {n:,}" for tier, n in sorted(summary.tiers.items())))
    if getattr(summary, "fitted", False):
        console.print("CLV: BG/NBD and Gamma-Gamma refitted on this data")


def _print_audience(console: Any, hub: "Hub", summary: Any) -> None:
    console.print(f"audience pass at {summary.now:%Y-%m-%d %H:%M} UTC", highlight=False)
    _print_compute(console, summary.compute)
    if summary.segments:
        table = Table("segment", "members", "entered", "left", title="segments")
        for name, result in summary.segments.items():
            table.add_row(name, f"{result.members:,}", f"{result.entered:,}", f"{result.left:,}")
        console.print(table)
    if hub.config.triggers:
        fired = ", ".join(f"{name} {summary.fired.get(name, 0):,}" for name in hub.config.triggers)
        console.print(f"triggers fired: {fired}", highlight=False)
    decided = ", ".join(f"{summary.decisions.get(d, 0):,} {d}" for d in ("send", "hold", "suppress"))
    console.print(f"decisions: {decided}", highlight=False)
    for decision in ("hold", "suppress"):
        reasons = sorted(
            ((rule, n) for (d, rule), n in summary.rules.items() if d == decision), key=lambda item: -item[1]
        )
        if reasons:
            word = "held" if decision == "hold" else "suppressed"
            console.print(f"  {word}: " + ", ".join(f"{rule} {n:,}" for rule, n in reasons), highlight=False)
    for segment, counts in summary.pushed.items():
        if segment in hub.config.segments and not hub.config.segments[segment].push:
            continue
        console.print(
            f"pushed {segment}: {counts.get('entered', 0):,} entered, {counts.get('left', 0):,} left", highlight=False
        )
