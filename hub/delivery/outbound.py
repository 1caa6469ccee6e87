"""Outbound mappings: the unified customer view -> a destination's contact fields, compiled once into a callable.

A destination connector points at its file with ``mapping:`` in hub.yaml (``connectors.voyado.mapping:
mappings/voyado.yaml``). The file is the mirror image of an inbound mapping: each output key (dotted keys build
nested objects, ``preferences.acceptsEmail``) takes its value from a path into the customer view
(:mod:`hub.delivery.views`), through the same registered transforms, with a default and an optional type::

    description: Voyado Engage contacts
    fields:
      email: customer.email
      birthDay: customer.birth_date
      externalId: identities.external_id.erp
      preferences.acceptsEmail: {path: consents.email.status, transforms: [{map: {opt_in: true, opt_out: false}}]}
      contactType: {value: Member}

Compiling checks every path against the view's shape, every transform and its arguments, types, defaults,
constants and key clashes, and raises one :class:`~hub.errors.MappingError` with every issue as
``file:line: key: message``. Running the callable on a view never raises anything but :class:`OutboundError`
(a transform refused a value), which change detection stores as an ``invalid`` dead letter.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from hub._yaml import Loc, LocatedYaml, issues_from_validation, load_located
from hub.delivery.outcomes import InvalidMessage
from hub.delivery.views import CONSENT_CHANNELS, CONSENT_FIELDS, CUSTOMER_FIELDS, IDENTITY_LISTS, jsonable
from hub.errors import ConfigError, ConfigIssue, MappingError
from hub.mapping.coerce import Converter, make_converter, zone
from hub.mapping.fields import build_transform
from hub.mapping.paths import Path as ViewPath
from hub.mapping.paths import parse_path
from hub.mapping.pipeline import is_missing

if TYPE_CHECKING:
    from hub.app import Hub

__all__ = [
    "RESERVED_KEY",
    "VIEW_PATHS",
    "OutboundError",
    "OutboundMapping",
    "compile_outbound_mapping",
    "load_outbound_mapping",
    "outbound_mapping",
]

#: The payload key hub adds itself (the customer's keys); a mapping cannot write it.
RESERVED_KEY = "_hub"

ModelT = TypeVar("ModelT", bound=BaseModel)
OutputType = Literal["str", "int", "decimal", "bool", "date", "datetime"]
Transform = Callable[[Any], Any]

# The shape of a customer view, for checking paths: a dict of keys, "value", "list" (of values), or
# {"*": ...} for free keys (a system's name).
_VALUE, _LIST = "value", "list"
_SCHEMA: dict[str, Any] = {
    "customer": dict.fromkeys(CUSTOMER_FIELDS, _VALUE),
    "identities": {**dict.fromkeys(IDENTITY_LISTS, _LIST), "external_id": {"*": _VALUE}},
    "consents": {channel: dict.fromkeys(CONSENT_FIELDS, _VALUE) for channel in CONSENT_CHANNELS},
}


def _leaf_paths(node: Any, prefix: str) -> list[str]:
    if not isinstance(node, dict):
        return [prefix]
    return [p for key, child in node.items() for p in _leaf_paths(child, f"{prefix}.{key}" if prefix else key)]


#: Every path a field may read (``identities.external_id.<system>`` stands for any system's name).
VIEW_PATHS: tuple[str, ...] = tuple(p.replace(".*", ".<system>") for p in _leaf_paths(_SCHEMA, ""))


class OutboundError(InvalidMessage):
    """A view the mapping cannot turn into a payload (a transform refused a value); one reason per field."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


class _FieldSpec(BaseModel):
    """One output field. A bare string in YAML is shorthand for ``{path: ...}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    value: Any = None
    transforms: list[Any] = []
    default: Any = None
    type: OutputType | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data

    @property
    def has_value(self) -> bool:
        return "value" in self.model_fields_set


class _Header(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str | None = None
    missing: Literal["omit", "null"] = "omit"  # a value the view lacks: left out, or sent as null
    fields: dict[str, Any]

    @field_validator("missing", mode="before")
    @classmethod
    def _yaml_null(cls, value: Any) -> Any:
        return "null" if value is None else value  # `missing: null` is YAML's null


@dataclass(frozen=True, slots=True)
class _Field:
    key: str
    parts: tuple[str, ...]
    get: Callable[[Mapping[str, Any]], Any]  # view -> JSON-ready value or None; raises ValueError with a reason


class OutboundMapping:
    """A compiled outbound mapping: call it with a customer view to get the destination's fields."""

    __slots__ = ("_fields", "_omit", "description", "fields", "file")

    def __init__(self, *, file: str, description: str | None, fields: tuple[_Field, ...], omit: bool) -> None:
        self.file = file
        self.description = description
        self.fields = tuple(f.key for f in fields)  # the output keys, as written
        self._fields = fields
        self._omit = omit

    def __repr__(self) -> str:
        return f"<OutboundMapping {self.file}: {', '.join(self.fields)}>"

    def __call__(self, view: Mapping[str, Any]) -> dict[str, Any]:
        """The destination's fields for ``view``; raises OutboundError listing every field that failed."""
        out: dict[str, Any] = {}
        errors: list[str] | None = None
        omit = self._omit
        for field in self._fields:
            try:
                value = field.get(view)
            except ValueError as exc:
                errors = errors or []
                errors.append(f"{field.key}: {exc}")
                continue
            if value is None and omit:
                continue
            target = out
            for part in field.parts[:-1]:
                target = target.setdefault(part, {})
            target[field.parts[-1]] = value
        if errors:
            raise OutboundError(errors)
        return out


def load_outbound_mapping(
    path: Path, transforms: Mapping[str, Callable[..., Transform]], *, timezone: str = "UTC", display: str | None = None
) -> OutboundMapping:
    """Read and compile an outbound mapping file; raises MappingError listing every issue."""
    try:
        located = load_located(path, display=display)
    except ConfigError as exc:
        raise MappingError(exc.issues) from None
    return compile_outbound_mapping(located, transforms, timezone=timezone)


def outbound_mapping(hub: Hub, destination: str) -> OutboundMapping:
    """The compiled outbound mapping of a destination connector (``connectors.<name>.mapping``: one file, or
    ``{contact_upsert: file}``). Raises MappingError when none is configured or the file is invalid."""
    config = hub.config.connectors[destination]
    path = config.mapping_for("contact_upsert")
    if path is None:
        raise MappingError(
            ConfigIssue(
                file=hub.config.source_file,
                line=None,
                key=f"connectors.{destination}.mapping",
                message="a destination that takes contact_upsert needs an outbound mapping, e.g. mappings/voyado.yaml",
            )
        )
    try:
        display = str(path.relative_to(hub.config.project_dir))
    except ValueError:
        display = str(path)
    return load_outbound_mapping(path, hub.transforms, timezone=hub.config.timezone, display=display)


def compile_outbound_mapping(
    located: LocatedYaml, transforms: Mapping[str, Callable[..., Transform]], *, timezone: str = "UTC"
) -> OutboundMapping:
    """Compile parsed YAML; raises MappingError listing every issue, sorted by line."""
    issues: list[ConfigIssue] = []
    data = located.data
    if not isinstance(data, dict):
        raise MappingError(located.issue((), "an outbound mapping is a YAML mapping with a `fields:` mapping"))
    raw_fields = data.get("fields")
    header_data = {**data, "fields": {}} if isinstance(raw_fields, dict) else data
    header = _validate(_Header, header_data, located, (), issues)
    try:
        tz = zone(timezone)
    except ValueError as exc:
        raise MappingError(ConfigIssue(located.file, None, "timezone", str(exc))) from None
    compiled: list[_Field] = []
    if isinstance(raw_fields, dict):
        if not raw_fields:
            issues.append(located.issue(("fields",), "add at least one field"))
        compiled = _compile_fields(located, raw_fields, transforms, tz, issues)
    if issues:
        raise MappingError(sorted(issues, key=lambda issue: issue.line or 0))
    assert header is not None
    return OutboundMapping(
        file=located.file, description=header.description, fields=tuple(compiled), omit=header.missing == "omit"
    )


def _compile_fields(
    located: LocatedYaml,
    raw_fields: dict[str, Any],
    transforms: Mapping[str, Callable[..., Transform]],
    tz: Any,
    issues: list[ConfigIssue],
) -> list[_Field]:
    compiled: list[_Field] = []
    keys: dict[tuple[str, ...], str] = {}
    for key, raw in raw_fields.items():
        loc: Loc = ("fields", key)
        parts = tuple(key.split("."))
        if not all(parts):
            issues.append(located.issue(loc, "an output key is names joined by dots, e.g. preferences.acceptsEmail"))
            continue
        if parts[0] == RESERVED_KEY:
            issues.append(located.issue(loc, f"{RESERVED_KEY} is reserved: hub adds the customer's keys there"))
            continue
        keys[parts] = key
        if raw is None:
            issues.append(located.issue(loc, "a field needs a path, or {path: ..., ...} or {value: ...}"))
            continue
        spec = _validate(_FieldSpec, raw, located, loc, issues)
        if spec is not None:
            field = _compile_field(
                located, loc, key, parts, spec, transforms, tz, issues, shorthand=isinstance(raw, str)
            )
            if field is not None:
                compiled.append(field)
    for parts, key in keys.items():
        for cut in range(1, len(parts)):
            if parts[:cut] in keys:
                other = keys[parts[:cut]]
                issues.append(
                    located.issue(("fields", key), f"{other} is a field too: a key cannot be a value and an object")
                )
                break
    return compiled


def _compile_field(
    located: LocatedYaml,
    loc: Loc,
    key: str,
    parts: tuple[str, ...],
    spec: _FieldSpec,
    transforms: Mapping[str, Callable[..., Transform]],
    tz: Any,
    issues: list[ConfigIssue],
    *,
    shorthand: bool,
) -> _Field | None:
    before = len(issues)
    getter: Callable[[Any], Any] | None = None
    if spec.has_value == (spec.path is not None):
        issues.append(located.issue(loc, "give either a path or a value"))
    elif spec.path is not None:
        # A shorthand field (``email: customer.email``) is reported at its key, a long one at its ``path``.
        getter = _view_getter(located, loc if shorthand else (*loc, "path"), spec.path, issues)
    chain: list[tuple[str, Transform]] = []
    for i, item in enumerate(spec.transforms):
        built = _transform(located, (*loc, "transforms", i), item, transforms, issues)
        if built is not None:
            chain.append(built)
    convert: Converter | None = None
    if spec.type is not None:
        convert = make_converter(spec.type, tz=tz)
    default: Any = None
    if spec.default is not None:
        try:
            default = jsonable(convert(spec.default) if convert is not None else spec.default)
        except ValueError as exc:
            issues.append(located.issue((*loc, "default"), str(exc)))
    if len(issues) > before:
        return None
    run = _pipeline(tuple(chain), convert, default)
    if spec.has_value:
        try:
            constant = run(spec.value)
        except ValueError as exc:
            issues.append(located.issue((*loc, "value"), str(exc)))
            return None
        return _Field(key, parts, lambda view: constant)
    assert getter is not None
    get = getter
    return _Field(key, parts, lambda view: run(get(view)))


def _pipeline(
    chain: tuple[tuple[str, Transform], ...], convert: Converter | None, default: Any
) -> Callable[[Any], Any]:
    """A value read from the view -> transforms -> default when missing -> type -> JSON-ready, or ValueError."""

    def run(value: Any) -> Any:
        if is_missing(value):
            value = None
        for name, transform in chain:
            try:
                value = transform(value)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{name}: {exc}") from None
        if is_missing(value):
            return default
        if convert is not None:
            value = convert(value)
        return jsonable(value)

    return run


def _view_getter(located: LocatedYaml, loc: Loc, text: Any, issues: list[ConfigIssue]) -> Callable[[Any], Any] | None:
    try:
        path = parse_path(text)
    except ValueError as exc:
        issues.append(located.issue(loc, str(exc)))
        return None
    if path.root or path.is_index:
        issues.append(
            located.issue(
                loc, f"path {text!r}: `$` paths belong to inbound mappings; start at customer, identities or consents"
            )
        )
        return None
    problem = _check_path(path)
    if problem is not None:
        issues.append(located.issue(loc, problem))
        return None
    return path.getter()


def _check_path(path: ViewPath) -> str | None:
    """Why ``path`` cannot point into a customer view, or None when it can."""
    node: Any = _SCHEMA
    walked: list[str] = []
    for kind, arg in path.steps:
        here = ".".join(walked)
        if kind == "key":
            if isinstance(node, dict) and arg in node:
                node = node[arg]
            elif isinstance(node, dict) and "*" in node:
                node = node["*"]
            elif isinstance(node, dict):
                return _unknown(path.text, here, node)
            elif node == _LIST:
                return f"unknown path {path.text}: {here} is a list of values; read one with {here}[0]"
            else:
                return f"unknown path {path.text}: {here} is a single value, it has no key {arg!r}"
            walked.append(str(arg))
        else:
            if node != _LIST:
                return f"path {path.text}: {here or 'the view'} is not a list; [n] and [] apply to identities lists"
            node = _VALUE
            walked[-1] += "[]" if kind == "each" else f"[{arg}]"
    return None


def _unknown(text: str, parent: str, node: dict[str, Any]) -> str:
    message = f"unknown path {text}"
    close = difflib.get_close_matches(text, VIEW_PATHS, n=1, cutoff=0.75)
    if close:
        return f"{message}; did you mean {close[0]}?"
    valid = ", ".join(node)
    return f"{message}; valid keys {'of ' + parent if parent else 'at the top'}: {valid}"


def _transform(
    located: LocatedYaml,
    loc: Loc,
    item: Any,
    transforms: Mapping[str, Callable[..., Transform]],
    issues: list[ConfigIssue],
) -> tuple[str, Transform] | None:
    """Build one transform exactly as inbound mappings do: ``name`` or ``{name: arguments}``."""
    return build_transform(item, transforms, lambda message: issues.append(located.issue(loc, message)))


def _validate(
    model: type[ModelT], data: Any, located: LocatedYaml, loc: Loc, issues: list[ConfigIssue]
) -> ModelT | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues.extend(issues_from_validation(exc, located, loc))
        return None
