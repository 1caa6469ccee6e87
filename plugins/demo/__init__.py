"""hub's demo plugin: ``hub demo-data`` writes a retail chain's exports for ``config/hub.yaml`` to read.

The generator itself is :mod:`hub_plugins.demo.generator`; this module holds only the hook implementations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from hub import hookimpl

__all__ = ["hub_commands"]


@hookimpl
def hub_commands(cli: typer.Typer) -> None:
    @cli.command("demo-data")
    def demo_data(
        out: Annotated[Path, typer.Option("--out", help="directory to write the data set into")] = Path("var/demo"),
        customers: Annotated[int, typer.Option("--customers", min=1, help="people behind the data")] = 10_000,
        seed: Annotated[int, typer.Option("--seed", help="same seed, same bytes")] = 42,
    ) -> None:
        """Write the demo data: one retail chain's web shop, POS, ERP and PIM exports, plus a manifest."""
        # Imported here, not at the top: every `hub` command builds the CLI, and only this one needs it.
        from hub_plugins.demo.generator import generate

        manifest = generate(out, customers=customers, seed=seed)
        records = sum(manifest.streams.values())
        rejects = sum(manifest.rejects.values())
        typer.echo(f"wrote {records:,} records in {len(manifest.files)} files to {out}")
        for stream, count in manifest.streams.items():
            typer.echo(f"  {stream:<16} {count:>10,}")
        typer.echo(
            f"{manifest.persons:,} people, {manifest.expected_customers:,} customers expected after merging,"
            f" {rejects:,} malformed records to set aside"
        )
        # The embedded config/hub.yaml reads var/demo; other directories need paths of their own.
        follow = "hub sync" if out == Path("var/demo") else f"point a config's paths at {out}, then hub sync"
        typer.echo(f"next: {follow}  (manifest: {out / 'manifest.json'})")
