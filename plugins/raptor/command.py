"""``hub raptor feed``: write a ``raptor`` connector's product feed to a file (for an FTP upload or a web server)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from hub_plugins.raptor.routes import CONNECTOR_TYPE
from hub_plugins.raptor.settings import RaptorSettings


def add_commands(cli: typer.Typer) -> None:
    group = typer.Typer(no_args_is_help=True, help="Raptor: the product feed.")
    cli.add_typer(group, name="raptor")

    @group.command("feed")
    def feed(
        out: Annotated[Path, typer.Option("--out", help="file to write; replaced whole, never half-written")],
        connector: Annotated[
            str | None, typer.Option("--connector", help="which raptor connector (default: the only one)")
        ] = None,
        format: Annotated[
            str | None, typer.Option("--format", help="csv, json or xml (default: the connector's feed.format)")
        ] = None,
        config: Annotated[
            Path | None,
            typer.Option("--config", "-c", help="hub.yaml to use (default: $HUB_CONFIG or config/hub.yaml)"),
        ] = None,
    ) -> None:
        """Write the product feed Raptor pulls: one row per product of the unified product table."""
        from hub.app import Hub
        from hub_plugins.raptor.feed import write_feed

        hub = Hub.load(config)
        try:
            name = _connector(hub.config.connectors, connector)
            settings = hub.config.connectors[name].settings
            assert isinstance(settings, RaptorSettings)
            feed_settings = settings.feed
            if format is not None:
                if format not in ("csv", "json", "xml"):
                    raise typer.BadParameter(f"{format!r}: use csv, json or xml", param_hint="--format")
                chosen: Literal["csv", "json", "xml"] = format  # type: ignore[assignment]
                feed_settings = feed_settings.model_copy(update={"format": chosen})
            count = write_feed(hub.engine, feed_settings, out)
        finally:
            hub.close()
        typer.echo(f"wrote {count:,} products to {out} ({feed_settings.format}, prices in {feed_settings.culture})")


def _connector(connectors: dict[str, object], wanted: str | None) -> str:
    names = [n for n, c in connectors.items() if getattr(c, "plugin", None) == CONNECTOR_TYPE]
    if wanted is not None:
        if wanted not in names:
            raise typer.BadParameter(
                f"no raptor connector named {wanted!r} (raptor connectors: {', '.join(names) or 'none'})"
            )
        return wanted
    if len(names) != 1:
        found = ", ".join(names) or "none"
        raise typer.BadParameter(f"name the raptor connector with --connector (raptor connectors: {found})")
    return names[0]
