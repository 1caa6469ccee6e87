"""Reading hub.yaml: locate every key, interpolate placeholders, validate, report every problem at once."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

import pluggy
from pydantic import ValidationError

from hub._yaml import Loc, load_located
from hub.config._hub import HubConfig
from hub.config._interpolate import InterpolationError, interpolate
from hub.config._models import LoadContext
from hub.errors import ConfigError, ConfigIssue
from hub.plugins import attribute_names, connector_types

DEFAULT_CONFIG_PATH = Path("config/hub.yaml")

# pydantic error type -> our wording. None of these repeat the input (the input may be a secret).
_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
    "url_parsing": "invalid URL",
    "dict_type": "expected a mapping of keys to values",
    "model_type": "expected a mapping of keys to values",
    "model_attributes_type": "expected a mapping of keys to values",
    "list_type": "expected a list",
}
_PREFIXES = ("Value error, ", "Assertion failed, ")
# Resolved values shorter than this are not scrubbed from messages: they would mangle ordinary words, and
# a value that short is no secret.
_MIN_SCRUB = 4


def config_path(path: Path | str | None = None) -> Path:
    """The configuration file: the argument, else ``HUB_CONFIG``, else ``config/hub.yaml``."""
    return Path(path or os.environ.get("HUB_CONFIG") or DEFAULT_CONFIG_PATH)


def load_config(
    path: Path | str | None,
    pm: pluggy.PluginManager,
    *,
    environ: Mapping[str, str] | None = None,
    project_dir: Path | None = None,
) -> HubConfig:
    """Load and validate hub.yaml; raise one ConfigError with every problem as ``file:line: key: message``.

    ``environ`` answers ``${NAME}`` placeholders (default: ``os.environ``); ``${scheme:ref}`` goes to the
    plugins' ``hub_resolve_secret``. ``project_dir`` overrides the file's ``project_dir`` key, which is
    relative to the working directory and defaults to it.
    """
    path = config_path(path)
    located = load_located(path, display=_display(path))
    if not isinstance(located.data, dict):
        raise ConfigError(located.issue((), "expected a mapping of keys such as database: and connectors:"))
    placeholders = _Placeholders(os.environ if environ is None else environ, pm)
    data = placeholders.resolve(located.data, ())
    context = LoadContext(
        connector_types=connector_types(pm),
        project_dir=_project_dir(data, project_dir),
        source_file=located.file,
        connector_names=_connector_names(data),
        connector_plugins=_connector_plugins(data),
        segment_names=_names(data.get("segments")),
        message_types=_message_types(data),
        attribute_names=attribute_names(pm),
    )
    issues = [located.issue(loc, message) for loc, message in placeholders.problems]
    config = None
    try:
        config = HubConfig.model_validate(data, context=context)
    except ValidationError as exc:
        issues += [
            located.issue(loc, message)
            for loc, message in _validation_problems(exc)
            if not placeholders.failed_at_or_above(loc)
        ]
    if issues or config is None:
        issues.sort(key=lambda issue: issue.line or 0)
        raise ConfigError([placeholders.scrub(issue) for issue in issues])
    return config


class _Placeholders:
    """Interpolates every string of the parsed file, remembering failures and every value it resolved."""

    def __init__(self, environ: Mapping[str, str], pm: pluggy.PluginManager) -> None:
        self._environ = environ
        self._pm = pm
        self.problems: list[tuple[Loc, str]] = []
        self._failed: list[Loc] = []
        self._values: set[str] = set()

    def resolve(self, node: Any, loc: Loc) -> Any:
        if isinstance(node, dict):
            return {key: self.resolve(value, (*loc, key)) for key, value in node.items()}
        if isinstance(node, list):
            return [self.resolve(item, (*loc, i)) for i, item in enumerate(node)]
        if isinstance(node, str):
            try:
                return interpolate(node, self._env, self._secret)
            except InterpolationError as exc:
                self.problems.extend((loc, problem) for problem in exc.problems)
                self._failed.append(loc)
        return node

    def failed_at_or_above(self, loc: Loc) -> bool:
        """True if ``loc`` or a parent failed to interpolate: its validation error would only repeat that."""
        return any(loc[: len(failed)] == failed for failed in self._failed)

    def scrub(self, issue: ConfigIssue) -> ConfigIssue:
        """Mask resolved values in a message, in case a plugin's validator quoted its input."""
        message = issue.message
        for value in self._values:
            if len(value) >= _MIN_SCRUB:
                message = message.replace(value, "***")
        return dataclasses.replace(issue, message=message)

    def _env(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value:
            self._values.add(value)
        return value

    def _secret(self, scheme: str, reference: str) -> str | None:
        try:
            value = self._pm.hook.hub_resolve_secret(scheme=scheme, reference=reference)
        except Exception as exc:  # a resolver's failure is a problem of this placeholder, not a crash
            raise InterpolationError([f"resolving scheme {scheme!r} failed: {type(exc).__name__}: {exc}"]) from None
        if value is None and scheme == "env":
            raise InterpolationError([f"environment variable {reference} is not set"])
        if value is not None and not isinstance(value, str):
            raise InterpolationError([f"the resolver of scheme {scheme!r} returned {type(value).__name__}, not text"])
        if value:
            self._values.add(value)
        return value


def _validation_problems(exc: ValidationError) -> list[tuple[Loc, str]]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = tuple(
            part
            for part in error["loc"]
            if not (isinstance(part, str) and (part.startswith("function-") or part == "[key]"))
        )
        message = _MESSAGES.get(error["type"], error["msg"])
        for prefix in _PREFIXES:
            message = message.removeprefix(prefix)
        problems.append((loc, message))
    return problems


def _project_dir(data: dict[str, Any], override: Path | None) -> Path:
    if override is not None:
        return Path(override).expanduser().resolve()
    value = data.get("project_dir")
    if isinstance(value, str) and value:
        return Path(value).expanduser().resolve()
    return Path.cwd()


def _connector_names(data: dict[str, Any]) -> frozenset[str]:
    connectors = data.get("connectors")
    return frozenset(str(name) for name in connectors) if isinstance(connectors, dict) else frozenset()


def _connector_plugins(data: dict[str, Any]) -> dict[str, str]:
    connectors = data.get("connectors")
    if not isinstance(connectors, dict):
        return {}
    return {
        str(name): str(block["plugin"])
        for name, block in connectors.items()
        if isinstance(block, dict) and isinstance(block.get("plugin"), str)
    }


def _names(block: Any) -> frozenset[str]:
    return frozenset(str(name) for name in block) if isinstance(block, dict) else frozenset()


def _message_types(data: dict[str, Any]) -> frozenset[str] | None:
    pressure = data.get("contact_pressure")
    types = pressure.get("message_types") if isinstance(pressure, dict) else None
    return _names(types) if isinstance(types, dict) else frozenset()


def _display(path: Path) -> str:
    """The file as errors name it: relative to the working directory when it lies below it."""
    if path.is_absolute():
        with suppress(ValueError):
            return str(path.relative_to(Path.cwd()))
    return str(path)
