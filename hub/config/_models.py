"""The typed configuration: one pydantic model per block of hub.yaml.

Checks that need the outside world (installed connector types, the project directory, the names of the
configured connectors) read a :class:`LoadContext` passed as pydantic's validation context, so one
``HubConfig.model_validate`` call reports every problem in the file at once. Without a context (a config built
in code) those checks are skipped and values are trusted.

A new block is a new model plus one field on :class:`HubConfig`; its errors are located like every other.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PositiveInt,
    SerializeAsAny,
    TypeAdapter,
    ValidationInfo,
    WithJsonSchema,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from hub.connectors import Connector, ConnectorSettings

DEFAULT_DATABASE_URL = "sqlite:///var/hub.db"
CONNECTOR_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_EVERY = re.compile(r"^(?:\d+[smhd])+$")
_EVERY_PART = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}

IdentityKind = Literal["external_id", "member_no", "email", "phone"]
IDENTITY_KINDS: tuple[IdentityKind, ...] = get_args(IdentityKind)
#: At most this many values of each identity kind attach to one customer before further ones are ignored.
DEFAULT_MAX_PER_CUSTOMER: dict[str, int] = {"external_id": 5, "member_no": 1, "email": 5, "phone": 5}

_BLOCK = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class LoadContext:
    """What validation needs to know beyond the file itself; built by ``load_config``."""

    connector_types: Mapping[str, type[Connector]]
    project_dir: Path
    source_file: str
    connector_names: frozenset[str]
    #: Names the audience blocks may refer to, collected from the file before validation.
    segment_names: frozenset[str] = frozenset()
    #: None when the file has no ``contact_pressure.message_types`` block to check against.
    message_types: frozenset[str] | None = None
    #: Every attribute an expression may read (built-in and from plugins); None: not checked.
    attribute_names: frozenset[str] | None = None
    #: Connector name -> its ``plugin:`` (type name), to check what a reference to a connector expects of it.
    connector_plugins: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _FromLoader:
    """A value only the loader sets (a connector's name, the file name); in the file it is an unknown key."""

    value: str


def _context(info: ValidationInfo) -> LoadContext | None:
    return info.context if isinstance(info.context, LoadContext) else None


def _set_by_loader(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, _FromLoader):
        return value.value
    if _context(info) is not None:
        raise ValueError("unknown key")
    return value


def _check_database_url(url: str) -> str:
    try:
        make_url(url)
    except ArgumentError:
        # SQLAlchemy's message repeats the URL, which may hold a password.
        raise ValueError("not a valid database URL (e.g. sqlite:///var/hub.db)") from None
    return url


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("unknown time zone (use an IANA name such as Europe/Oslo)") from None
    return name


def _check_connector_name(name: str) -> str:
    if not CONNECTOR_NAME.match(name):
        raise ValueError("connector names are lower-case letters, digits and _, starting with a letter")
    return name


def _known_connector(name: str, info: ValidationInfo) -> str:
    context = _context(info)
    if context is not None and name not in context.connector_names:
        configured = ", ".join(sorted(context.connector_names)) or "none"
        raise ValueError(f"unknown connector {name!r} (configured: {configured})")
    return name


def _identity_kind(kind: str) -> str:
    if kind not in IDENTITY_KINDS:
        raise ValueError(f"unknown identity kind (use {', '.join(IDENTITY_KINDS)})")
    return kind


# Keys typed as plain ``str`` so callers can merge these dicts into their own ``dict[str, ...]``.
_IdentityKindKey = Annotated[str, AfterValidator(_identity_kind)]
_KIND_KEYS: dict[str, Any] = {"propertyNames": {"enum": list(IDENTITY_KINDS)}}


def _known_type(name: str, info: ValidationInfo) -> str:
    context = _context(info)
    if context is not None and name not in context.connector_types:
        installed = ", ".join(sorted(context.connector_types)) or "none"
        raise ValueError(f"unknown connector type {name!r} (installed: {installed})")
    return name


def _parse_every(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if not _EVERY.match(text):
        raise ValueError("use a number and a unit: 30s, 15m, 2h, 1d (or combined, e.g. 1h30m)")
    every = timedelta()
    for amount, unit in _EVERY_PART.findall(text):
        every += timedelta(**{_UNITS[unit]: int(amount)})
    if not every:
        raise ValueError("must be longer than zero")
    return every


def _check_cron(expression: str | None) -> str | None:
    if expression is not None and (len(expression.split()) != 5 or not croniter.is_valid(expression)):
        raise ValueError("invalid cron expression (five fields: minute hour day-of-month month day-of-week)")
    return expression


def _mapping_file(path: Path, info: ValidationInfo) -> Path:
    context = _context(info)
    if context is None:
        return path.absolute()
    full = path if path.is_absolute() else context.project_dir / path
    if not full.is_file():
        raise ValueError(f"file not found: {full}")
    return full


_MappingFile = Annotated[Path, AfterValidator(_mapping_file)]
_ONE_MAPPING: TypeAdapter[Path] = TypeAdapter(_MappingFile)
_MAPPING_PER_STREAM: TypeAdapter[dict[str, Path]] = TypeAdapter(dict[str, _MappingFile])


def _validate_mapping(value: Any, info: ValidationInfo) -> dict[str, Path] | Path | None:
    if value is None:
        return None
    if isinstance(value, str | Path):
        return _ONE_MAPPING.validate_python(value, context=info.context)
    if isinstance(value, dict):
        return _MAPPING_PER_STREAM.validate_python(value, context=info.context)
    raise ValueError("give one mapping file, or a mapping of stream name to mapping file")


def _validate_settings(value: Any, info: ValidationInfo) -> Any:
    """Validate ``settings`` with the Settings model of the connector's type (the ``plugin`` field)."""
    if isinstance(value, ConnectorSettings):
        return value
    context = _context(info)
    if context is None:
        raise ValueError("settings must be the connector type's Settings instance")
    plugin = info.data.get("plugin")
    if not isinstance(plugin, str) or plugin not in context.connector_types:
        return value  # the unknown type is reported on `plugin`; these settings cannot be checked
    return context.connector_types[plugin].Settings.model_validate({} if value is None else value)


_MAPPING_SCHEMA = {
    "anyOf": [
        {"type": "string", "description": "one mapping file for every stream"},
        {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "stream -> mapping file",
        },
    ],
    "description": "Mapping file(s), relative to project_dir.",
}


class DatabaseConfig(BaseModel):
    """Where hub keeps its data: any SQLAlchemy URL (SQLite by default, PostgreSQL in production)."""

    model_config = _BLOCK

    url: Annotated[str, AfterValidator(_check_database_url)] = DEFAULT_DATABASE_URL
    echo: bool = False

    @field_serializer("url")
    def _masked_url(self, url: str) -> str:
        """Dumps are for display: the password stays in ``url`` itself, never in a dump or repr."""
        return make_url(url).render_as_string(hide_password=True)

    def __repr_args__(self) -> Iterator[tuple[str, Any]]:
        yield "url", self._masked_url(self.url)
        yield "echo", self.echo


class PluginsConfig(BaseModel):
    """Which installed plugins to leave out (read before the plugin manager is built)."""

    model_config = _BLOCK

    disable: list[str] = []


class IdentityConfig(BaseModel):
    """How records are resolved to one golden customer."""

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    source_priority: list[Annotated[str, AfterValidator(_known_connector)]] = []
    blocked_values: dict[_IdentityKindKey, list[str]] = Field(default={}, json_schema_extra=_KIND_KEYS)
    max_per_customer: dict[_IdentityKindKey, PositiveInt] = Field(
        default_factory=lambda: dict(DEFAULT_MAX_PER_CUSTOMER), json_schema_extra=_KIND_KEYS
    )

    @field_validator("source_priority")
    @classmethod
    def _unique(cls, names: list[str]) -> list[str]:
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"listed more than once: {', '.join(twice)}")
        return names

    @field_validator("max_per_customer")
    @classmethod
    def _with_defaults(cls, limits: dict[str, int]) -> dict[str, int]:
        return {**DEFAULT_MAX_PER_CUSTOMER, **limits}


class Schedule(BaseModel):
    """When the daemon runs a connector: ``every`` (an interval) or ``cron`` (five fields), not both."""

    model_config = _BLOCK

    every: Annotated[
        timedelta | None,
        BeforeValidator(_parse_every),
        WithJsonSchema({"type": "string", "pattern": _EVERY.pattern, "examples": ["15m", "1h30m"]}),
    ] = None
    cron: Annotated[str | None, AfterValidator(_check_cron)] = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Schedule:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give either every or cron")
        return self


_Duration = Annotated[
    timedelta,
    BeforeValidator(_parse_every),
    WithJsonSchema({"type": "string", "pattern": _EVERY.pattern, "examples": ["1s", "30s", "10m"]}),
]
_Kind = Literal["contact_upsert", "contact_delete", "order", "segment_membership", "trigger", "product"]


class DeliveryConfig(BaseModel):
    """How the outbox delivers to one destination connector. Every key has a default; the plugin's own
    per-kind defaults (batch size, guarantee) apply unless overridden here."""

    model_config = _BLOCK

    rate_limit: float | None = Field(default=None, gt=0, description="requests per second; the plugin's default")
    concurrency: PositiveInt = 4
    batch_size: dict[_Kind, PositiveInt] = {}
    guarantee: dict[_Kind, Literal["at_least_once", "at_most_once"]] = {}
    max_attempts: PositiveInt = 10
    attempts_per_pass: PositiveInt = 4
    backoff_initial: _Duration = timedelta(seconds=1)
    backoff_max: _Duration = timedelta(minutes=10)
    connect_timeout: float = Field(default=5.0, gt=0, description="seconds to open a connection")
    read_timeout: float = Field(default=30.0, gt=0, description="seconds to wait for each chunk of the response")
    write_timeout: float = Field(default=30.0, gt=0, description="seconds to send each chunk of the request")
    pool_timeout: float = Field(default=60.0, gt=0, description="seconds to wait for a free pooled connection")
    lease: _Duration = Field(
        default=timedelta(minutes=10),
        description="how long a claimed row may stay in flight before another pass treats it as stale",
    )
    claim_size: PositiveInt = Field(default=500, description="rows claimed per database round-trip")


class ConnectorConfig(BaseModel):
    """One entry under ``connectors:``; ``settings`` is an instance of its type's own Settings model."""

    model_config = _BLOCK

    name: Annotated[SkipJsonSchema[str], BeforeValidator(_set_by_loader)] = ""
    plugin: Annotated[str, AfterValidator(_known_type)]
    mapping: Annotated[
        dict[str, Path] | Path | None, PlainValidator(_validate_mapping), WithJsonSchema(_MAPPING_SCHEMA)
    ] = None
    settings: Annotated[
        SerializeAsAny[ConnectorSettings],
        PlainValidator(_validate_settings),
        WithJsonSchema({"type": "object"}),
    ] = Field(default_factory=dict, validate_default=True)
    schedule: Schedule | None = None
    delivery: DeliveryConfig = DeliveryConfig()
    enabled: bool = True

    def mapping_for(self, stream: str) -> Path | None:
        """The mapping file of ``stream``: the single file, the stream's entry, or None."""
        if isinstance(self.mapping, dict):
            return self.mapping.get(stream)
        return self.mapping
