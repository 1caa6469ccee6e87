"""The ``Hub`` object: one configuration, one plugin manager, one database engine. Nothing here is global."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import pluggy
import sqlalchemy as sa
from pydantic import BaseModel, SecretStr

from hub import plugins as plugin_registry
from hub._yaml import load_located
from hub.audience.types import AttributeSpec
from hub.clock import Clock, SystemClock
from hub.config import HubConfig, config_path, load_config
from hub.connectors import Connector, ConnectorContext, Destination, Source
from hub.db import make_engine
from hub.errors import ConfigError, ConfigIssue, MappingError
from hub.mapping import CompiledMapping, load_mapping
from hub.schema import ensure_current


def _disabled_plugins(path: Path) -> list[str]:
    """Read ``plugins.disable`` before the plugin manager exists: it decides which plugins load at all."""
    try:
        data = load_located(path).data
    except ConfigError:
        return []  # load_config reports the problem with its location
    disable = (data.get("plugins") or {}).get("disable") if isinstance(data, dict) else None
    return [str(n) for n in disable] if isinstance(disable, list) else []


@dataclass
class Hub:
    """A configured hub. Build it with :meth:`Hub.load`; tests build it with their own plugin manager."""

    config: HubConfig
    pm: pluggy.PluginManager
    #: The one clock of compute, segments, triggers and contact pressure; tests and ``--now`` replace it.
    clock: Clock = field(default_factory=SystemClock)
    _connectors: dict[str, Connector] = field(default_factory=dict)
    _mappings: dict[tuple[str, str], CompiledMapping] = field(default_factory=dict)
    _limits: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        pm: pluggy.PluginManager | None = None,
        plugins: Iterable[object] = (),
        environ: dict[str, str] | None = None,
        project_dir: Path | None = None,
    ) -> Hub:
        path = config_path(path)
        if pm is None:
            pm = plugin_registry.make_plugin_manager(plugins=plugins, blocked=_disabled_plugins(path))
        config = load_config(path, pm, environ=environ, project_dir=project_dir)
        return cls(config=config, pm=pm)

    @cached_property
    def engine(self) -> sa.Engine:
        return make_engine(self.config.database_url(), echo=self.config.database.echo)

    @cached_property
    def attribute_specs(self) -> dict[str, AttributeSpec]:
        """Attributes the plugins add (``hub_attributes``), by name."""
        return plugin_registry.attribute_specs(self.pm)

    @cached_property
    def transforms(self) -> dict[str, Any]:
        return plugin_registry.transforms(self.pm)

    @cached_property
    def connector_types(self) -> dict[str, type[Connector]]:
        return plugin_registry.connector_types(self.pm)

    def secret_values(self) -> list[str]:
        """Every secret in the connectors' settings, so the log redactor can hide them wherever they appear."""
        found: list[str] = []

        def walk(value: Any) -> None:
            if isinstance(value, SecretStr):
                found.append(value.get_secret_value())
            elif isinstance(value, BaseModel):
                for name in type(value).model_fields:
                    walk(getattr(value, name))
            elif isinstance(value, dict):
                for v in value.values():
                    walk(v)
            elif isinstance(value, list | tuple):
                for v in value:
                    walk(v)

        for cc in self.config.connectors.values():
            walk(cc.settings)
        return found

    def ensure_schema(self) -> None:
        ensure_current(self.engine)

    def connector(self, name: str) -> Connector:
        """The connector instance for ``connectors.<name>``, built once with its validated settings."""
        if name not in self._connectors:
            if name not in self.config.connectors:
                known = ", ".join(sorted(self.config.connectors)) or "none"
                raise ConfigError(f"no connector named {name!r} in {self.config.source_file} (configured: {known})")
            cc = self.config.connectors[name]
            context = ConnectorContext(
                name=name,
                project_dir=self.config.project_dir,
                timezone=self.config.timezone,
                extra={"batch_size": self.config.batch_size},
            )
            connector = self.connector_types[cc.plugin](cc.settings, context)
            if isinstance(connector, Destination):
                from hub.delivery.http import make_client, rate_limit_for
                from hub.delivery.ratelimit import DestinationLimits

                limits = DestinationLimits(rate_limit_for(connector, cc.delivery), cc.delivery.concurrency)
                connector.bind_http(make_client(connector, cc.delivery, limits=limits))
                self._limits[name] = limits
            self._connectors[name] = connector
        return self._connectors[name]

    def limits(self, name: str) -> Any:
        """The rate and concurrency limits of destination ``name`` (a ``DestinationLimits``), shared by its client."""
        self.connector(name)
        return self._limits[name]

    def destinations(self) -> list[str]:
        """Names of the enabled connectors that receive outbox messages, in configuration order."""
        return [
            name
            for name, cc in self.config.connectors.items()
            if cc.enabled and issubclass(self.connector_types[cc.plugin], Destination)
        ]

    def close(self) -> None:
        """Close the connectors (sources' own clients, destinations' HTTP clients) and the engine's connections."""
        for connector in self._connectors.values():
            if isinstance(connector, Destination) and connector._http is not None:
                connector._http.close()
            if isinstance(connector, Source):
                connector.close()
        if "engine" in self.__dict__:
            self.engine.dispose()

    def sources(self) -> list[str]:
        """Names of the enabled connectors that read records, in configuration order."""
        return [
            name
            for name, cc in self.config.connectors.items()
            if cc.enabled and issubclass(self.connector_types[cc.plugin], Source)
        ]

    def mapping(self, connector: str, stream: str) -> CompiledMapping:
        """The compiled mapping of a connector's stream, compiled once per Hub."""
        key = (connector, stream)
        if key not in self._mappings:
            path = self.config.connectors[connector].mapping_for(stream)
            if path is None:
                raise MappingError(
                    ConfigIssue(
                        file=self.config.source_file,
                        line=None,
                        key=f"connectors.{connector}.mapping",
                        message=f"no mapping for stream {stream!r}",
                    )
                )
            self._mappings[key] = load_mapping(
                path, self.transforms, timezone=self.config.timezone, display=self._display(path)
            )
        return self._mappings[key]

    def check_mappings(self) -> list[ConfigIssue]:
        """Compile every mapping of every enabled source and every destination's outbound mapping; return every
        issue found (for ``hub validate``)."""
        issues: list[ConfigIssue] = []
        for name in self.sources():
            source = self.connector(name)
            assert isinstance(source, Source)
            for stream in source.streams():
                try:
                    self.mapping(name, stream)
                except ConfigError as exc:
                    issues.extend(exc.issues)
        from hub.delivery.outbound import outbound_mapping

        for name in self.destinations():
            if "contact_upsert" in self.connector_types[self.config.connectors[name].plugin].kinds:
                try:
                    outbound_mapping(self, name)
                except ConfigError as exc:
                    issues.extend(exc.issues)
        return issues

    def _display(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.config.project_dir))
        except ValueError:
            return str(path)
