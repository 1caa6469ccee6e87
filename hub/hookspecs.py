"""Every hook hub calls, grouped by the phase in which it is called. This file is the plugin reference.

Rules (see docs/plugin-guide.md):

- Hooks are called with keyword arguments only; an implementation may accept any subset of them.
- *Hooks register, objects run*: registration hooks are called once per ``Hub`` and return objects (connector
  types, transforms) that do the per-record work. No hook is ever called once per record.
- Built-in defaults are ``trylast=True`` so a third party can override them.
- For a ``firstresult`` hook, ``None`` means "not mine".
- Observer hooks (``*_finished``) return nothing; a failing observer is logged by name and never fails a run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

    import typer
    from starlette.routing import BaseRoute

    from hub.app import Hub
    from hub.audience.types import AttributeSpec
    from hub.connectors import Connector
    from hub.engine.run import RunSummary
    from hub.sandbox import Emulator

hookspec = pluggy.HookspecMarker("hub")


# --- registration: called once per Hub, before the configuration is validated -----------------------------------


@hookspec
def hub_connector_types() -> list[type[Connector]]:
    """Return the connector types this plugin provides.

    Called: once per ``Hub``, before hub.yaml is validated, so that each connector's ``plugin:`` resolves to a type
    and its ``settings:`` are checked against that type's ``Settings`` model. Two types of one name are an error
    naming both plugins.

    :returns: a list of :class:`hub.connectors.Connector` subclasses.
    """


@hookspec
def hub_transforms() -> dict[str, Callable[..., Any]]:
    """Return named transforms for mappings, as ``{name: factory}``.

    Called: once per ``Hub``, before any mapping is compiled. A factory receives the transform's arguments from
    the YAML (``{e164: {region: NO}}`` calls ``factory(region="NO")``; a bare ``lower`` calls ``factory()``) and
    returns a function of one value. The function raises ``ValueError`` with a short reason to reject the record.
    ``None`` passes through a transform untouched unless the transform is about ``None`` (e.g. ``default``).
    A transform may be called more than once for one record (a failing record is re-run to collect every field
    error), so it must be a pure function of its value: no side effects, no I/O.

    :returns: a dict of transform name to factory. A name registered twice is an error naming both plugins.
    """


@hookspec
def hub_attributes() -> list[AttributeSpec]:
    """Return computed attributes this plugin adds to every customer, for segments, triggers and ``hub explain``.

    Called: once per ``Hub``, before hub.yaml is validated (so expressions may name the attributes). Each
    :class:`hub.audience.types.AttributeSpec` has a name, a type, a description and a ``compute(conn,
    customer_ids, now)`` that returns ``(customer_id, value)`` pairs in one set-based query; ``hub compute`` calls
    it for the customers a load touched (``None``: all) inside its transaction. A name that is already built in
    or registered by another plugin is an error naming both.

    :returns: a list of ``AttributeSpec``.
    """


@hookspec(firstresult=True)
def hub_resolve_secret(scheme: str, reference: str) -> str | None:
    """Return the value behind ``${scheme:reference}`` in hub.yaml, or None if this plugin does not own ``scheme``.

    Called: once per ``${scheme:reference}`` placeholder while the configuration loads. ``${NAME}`` and
    ``${NAME:-default}`` are read from the environment by the core itself; ``${env:NAME}`` goes through this hook
    and is answered by the built-in ``standard`` plugin (``trylast``). Stops at the first non-None result.

    :param scheme: the part before the colon, e.g. ``env`` or ``vault``.
    :param reference: the rest, e.g. ``SHOPIFY_TOKEN``.
    :returns: the value as plain text; where the setting is a secret the core wraps it in ``SecretStr``.
    """


@hookspec
def hub_commands(cli: typer.Typer) -> None:
    """Add commands to the ``hub`` command line.

    Called: once, when the CLI is built, before arguments are parsed. Use ``@cli.command()``.

    :param cli: the root Typer application.
    """


@hookspec
def hub_http_routes(hub: Hub) -> list[BaseRoute]:
    """Return Starlette routes (``Route``, ``Mount``, ...) that ``hub run`` serves for this plugin.

    Called: once per ``Hub``, when the daemon builds its HTTP app (only if ``daemon.http.enabled``), after the
    configuration is validated. The daemon mounts each plugin's routes under ``/plugins/<plugin name>``, so a
    plugin named ``raptor`` returning ``Route("/feed.csv", ...)`` is served at ``/plugins/raptor/feed.csv``; a
    plugin cannot shadow the core's paths (``/healthz``, ``/webhooks/...``) or another plugin's. Do no I/O here:
    read ``hub.config`` to decide the routes, and let the endpoints reach the database through ``hub.engine``
    when they are requested. Keep blocking work off the event loop (plain ``def`` endpoints and sync iterators
    run on Starlette's thread pool). An implementation that raises is logged with its plugin's name and left
    out; the daemon and the other plugins' routes carry on.

    :param hub: the configured hub (``hub.config``, ``hub.engine``, ``hub.connector(name)``).
    :returns: a list of Starlette routes, or an empty list for none.
    """


# --- runs ------------------------------------------------------------------------------------------------------------


@hookspec
def hub_run_finished(summary: RunSummary) -> None:
    """Observe a finished sync run (succeeded or failed): counts per stream, merges, rejects, duration.

    Called: after every ``hub sync`` run, once its ``sync_run`` rows are committed. An observer that raises is
    logged with its plugin's name and never fails the run.

    :param summary: the run's figures; read-only.
    """


# --- delivery --------------------------------------------------------------------------------------------------------


@hookspec
def hub_emulators() -> list[Emulator]:
    """Return emulators of the remote APIs this plugin's connector types talk to.

    Called: by ``hub sandbox`` (which serves every installed emulator on 127.0.0.1), by ``make demo`` and by the
    tests, which talk to the same emulators over real loopback HTTP. An emulator is faithful to the real API
    (paths, fields, validation, error bodies, status codes, auth headers) and keeps its state in memory:
    ``Emulator.app()`` must return a new app with fresh state on every call. The core wraps every emulator in
    :class:`hub.sandbox.FaultInjector` (5xx, 429 with Retry-After, timeouts, lost responses, latency), so an
    emulator builds no fault injection of its own. Paths under ``/_emulator/`` are for inspection (what the
    emulator received; ``/_emulator/state`` by default, or ``Emulator.extra["inspect_path"]``) and are never
    faulted; ``/_emulator/faults`` belongs to the fault injector. See :class:`hub.sandbox.Emulator`.

    :returns: a list of :class:`hub.sandbox.Emulator` descriptions.
    """
