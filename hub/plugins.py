"""The plugin manager: hookspecs, entry points, a blocklist, and a typed view of what plugins registered."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy
import structlog

from hub import hookspecs
from hub.connectors import Connector
from hub.errors import PluginError

if TYPE_CHECKING:
    from hub.audience.types import AttributeSpec

ENTRYPOINT_GROUP = "hub"
hookimpl = pluggy.HookimplMarker("hub")
log = structlog.get_logger("hub.plugins")


@dataclass(slots=True)
class PluginFailure:
    """A plugin that could not be imported or registered; reported by name, the others carry on."""

    name: str
    error: str


@dataclass(slots=True)
class PluginState:
    """What a plugin manager loaded: failures are kept so ``hub plugins`` can show them."""

    failures: list[PluginFailure] = field(default_factory=list)
    distributions: dict[str, str] = field(default_factory=dict)  # plugin name -> "dist version"


def _names_from_env(var: str) -> list[str]:
    return [n.strip() for n in os.environ.get(var, "").split(",") if n.strip()]


def make_plugin_manager(
    *, entrypoints: bool = True, plugins: Iterable[object] = (), blocked: Iterable[str] = ()
) -> pluggy.PluginManager:
    """Build a fresh plugin manager: specs, entry-point plugins (minus blocked ones), then ``plugins``.

    A plugin whose import fails is recorded in ``pm.hub_state.failures`` and skipped. ``HUB_DISABLE_PLUGINS``
    (comma-separated names) blocks plugins like ``blocked``. ``HUB_TRACE_PLUGINS=1`` logs every hook call.
    """
    pm = pluggy.PluginManager("hub")
    pm.add_hookspecs(hookspecs)
    state = PluginState()
    pm.hub_state = state  # type: ignore[attr-defined]
    for name in (*blocked, *_names_from_env("HUB_DISABLE_PLUGINS")):
        pm.set_blocked(name)
    if entrypoints:
        _load_entrypoints(pm, state)
    for plugin in plugins:
        pm.register(plugin)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{exc.plugin!r} implements a hook hub does not know: {exc}") from exc
    if os.environ.get("HUB_TRACE_PLUGINS") == "1":
        pm.trace.root.setwriter(lambda msg: log.debug("hook", trace=msg.rstrip()))
        pm.enable_tracing()
    return pm


def _load_entrypoints(pm: pluggy.PluginManager, state: PluginState) -> None:
    seen: set[str] = set()
    for ep in importlib.metadata.entry_points(group=ENTRYPOINT_GROUP):
        if ep.name in seen or pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
            continue
        seen.add(ep.name)
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # a broken plugin must not take the others down
            state.failures.append(PluginFailure(name=ep.name, error=f"{type(exc).__name__}: {exc}"))
            log.warning("plugin failed to load", plugin=ep.name, error=f"{type(exc).__name__}: {exc}")
            continue
        if ep.dist is not None:
            state.distributions[ep.name] = f"{ep.dist.name} {ep.dist.version}"


def plugin_failures(pm: pluggy.PluginManager) -> list[PluginFailure]:
    state = getattr(pm, "hub_state", None)
    return list(state.failures) if state else []


def _owner(pm: pluggy.PluginManager, impl: pluggy.HookImpl) -> str:
    return pm.get_name(impl.plugin) or impl.plugin_name


def connector_types(pm: pluggy.PluginManager) -> dict[str, type[Connector]]:
    """Connector type name -> class, from every plugin's ``hub_connector_types``. Duplicates name both plugins."""
    found: dict[str, tuple[type[Connector], str]] = {}
    for impl in pm.hook.hub_connector_types.get_hookimpls():
        owner = _owner(pm, impl)
        for cls in impl.function() or []:
            if not (isinstance(cls, type) and issubclass(cls, Connector)) or not getattr(cls, "type", None):
                raise PluginError(f"plugin {owner!r} registered {cls!r}, which is not a Connector with a type")
            if cls.type in found:
                raise PluginError(
                    f"connector type {cls.type!r} is registered by both {found[cls.type][1]!r} and {owner!r}"
                )
            found[cls.type] = (cls, owner)
    return {name: cls for name, (cls, _) in found.items()}


def transforms(pm: pluggy.PluginManager) -> dict[str, Callable[..., Any]]:
    """Transform name -> factory, from every plugin's ``hub_transforms``. Duplicates name both plugins."""
    found: dict[str, tuple[Callable[..., Any], str]] = {}
    for impl in pm.hook.hub_transforms.get_hookimpls():
        owner = _owner(pm, impl)
        for name, factory in (impl.function() or {}).items():
            if name in found:
                raise PluginError(f"transform {name!r} is registered by both {found[name][1]!r} and {owner!r}")
            found[name] = (factory, owner)
    return {name: factory for name, (factory, _) in found.items()}


def attribute_specs(pm: pluggy.PluginManager) -> dict[str, AttributeSpec]:
    """Attribute name -> spec, from every plugin's ``hub_attributes``. A clash (with a built-in or another
    plugin's) names both."""
    from hub.audience.catalog import ATTRIBUTES
    from hub.audience.types import AttributeSpec

    found: dict[str, tuple[AttributeSpec, str]] = {}
    for impl in pm.hook.hub_attributes.get_hookimpls():
        owner = _owner(pm, impl)
        for spec in impl.function() or []:
            if not isinstance(spec, AttributeSpec):
                raise PluginError(f"plugin {owner!r} registered {spec!r}, which is not an AttributeSpec")
            if spec.name in ATTRIBUTES:
                raise PluginError(f"attribute {spec.name!r} of plugin {owner!r} is a built-in attribute")
            if spec.name in found:
                raise PluginError(
                    f"attribute {spec.name!r} is registered by both {found[spec.name][1]!r} and {owner!r}"
                )
            found[spec.name] = (spec, owner)
    return {name: spec for name, (spec, _) in found.items()}


def attribute_names(pm: pluggy.PluginManager) -> frozenset[str]:
    """Every attribute an expression may read: the built-in catalog and the plugins' attributes."""
    from hub.audience.catalog import builtin_names

    return builtin_names() | frozenset(attribute_specs(pm))


def call_observers(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> None:
    """Call an observer hook implementation by implementation, so one failing plugin cannot stop the others."""
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        try:
            impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
        except Exception as exc:
            log.error("plugin observer failed", plugin=_owner(pm, impl), hook=hook_name, error=str(exc))


def describe(pm: pluggy.PluginManager) -> dict[str, Any]:
    """Every registered plugin with its distribution, hooks and connector types (for ``hub plugins``)."""
    state: PluginState | None = getattr(pm, "hub_state", None)
    by_plugin: dict[str, dict[str, Any]] = {}
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [] if caller.name.startswith("hub_"))
        by_plugin[name] = {
            "name": name,
            "distribution": state.distributions.get(name) if state else None,
            "hooks": hooks,
            "connector_types": [],
        }
    for impl in pm.hook.hub_connector_types.get_hookimpls():
        entry = by_plugin.get(_owner(pm, impl))
        for cls in impl.function() or []:
            if entry is not None:
                entry["connector_types"].append(
                    {
                        "type": cls.type,
                        "roles": list(cls.roles),
                        "description": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
                        "settings_schema": cls.Settings.model_json_schema(),
                        "kinds": {
                            kind: {"batch_size": spec.batch_size, "guarantee": spec.guarantee, "why": spec.why}
                            for kind, spec in (getattr(cls, "kinds", None) or {}).items()
                        },
                    }
                )
    return {
        "plugins": sorted(by_plugin.values(), key=lambda p: p["name"]),
        "failures": [{"name": f.name, "error": f.error} for f in (state.failures if state else [])],
    }
