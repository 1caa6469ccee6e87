"""The shape of a mapping file (``mappings/*.yaml``) as pydantic models, and a parser locating every error.

The models say which keys exist and what type each holds; what the values mean (entities, paths, transforms,
types) is checked by :mod:`hub.mapping.compile`. The file is validated piece by piece (the header, then each
entity block, then each field) so that one bad piece does not hide the problems of the others: a user fixes
every issue in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from hub._yaml import Loc, LocatedYaml, issues_from_validation
from hub.errors import ConfigIssue
from hub.mapping.coerce import FieldType

ModelT = TypeVar("ModelT", bound=BaseModel)

_YAML_BOOLEANS = "quote it: YAML reads unquoted yes/no/on/off/true/false as booleans"


class FieldSpec(BaseModel):
    """How one field of an entity gets its value. A bare string in YAML is shorthand for ``{path: ...}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str | None = None
    paths: list[str] | None = None
    value: Any = None
    type: FieldType = "str"
    format: str | None = None
    tz: str | None = None
    true_values: list[str] | None = None
    false_values: list[str] | None = None
    transforms: list[Any] = []  # each a name or {name: arguments}; checked against the registered transforms
    default: Any = None
    required: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data

    @field_validator("true_values", "false_values", mode="before")
    @classmethod
    def _words(cls, values: Any) -> Any:
        if isinstance(values, list):
            if any(isinstance(v, bool) for v in values):
                raise ValueError(_YAML_BOOLEANS)
            return [str(v) if isinstance(v, int | float) else v for v in values]
        return values

    @property
    def has_value(self) -> bool:
        """True when ``value:`` is written, even as ``null``."""
        return "value" in self.model_fields_set

    @property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set and self.default is not None


class EntitySpec(BaseModel):
    """One block under ``entities:``: it emits 0..n rows of one entity per raw record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: str
    optional: bool = False  # customer only: a record without an identity key is anonymous, not an error
    each: str | None = None  # one row per element of the list at this path
    when: str | None = None  # emit only when the value at this path is present
    replace: bool = False  # with `each`: the rows are all of this connector's rows for the record's `$.` keys
    fields: dict[str, FieldSpec]


class MappingSpec(BaseModel):
    """A whole mapping file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str | None = None
    key: str | None = None  # template of raw paths that identifies a raw record in rejects
    entities: list[EntitySpec]


@dataclass(frozen=True, slots=True)
class ParsedBlock:
    """An entity block as far as it is valid. ``spec`` is None when the block's own keys are invalid; its
    fields are still parsed so their problems are reported too."""

    position: int
    spec: EntitySpec | None
    fields: dict[str, FieldSpec]
    declared: frozenset[str]  # every field name written in the block, valid or not


@dataclass(slots=True)
class ParsedMapping:
    """The valid parts of a mapping file, and the issues found in the rest."""

    description: str | None = None
    key: str | None = None
    blocks: list[ParsedBlock] = field(default_factory=list)
    issues: list[ConfigIssue] = field(default_factory=list)


def parse_mapping(located: LocatedYaml) -> ParsedMapping:
    """Validate the shape of ``located`` piece by piece; never raises, every problem is in ``issues``."""
    parsed = ParsedMapping()
    data = located.data
    if not isinstance(data, dict):
        parsed.issues.append(located.issue((), "a mapping file must be a YAML mapping with an `entities:` list"))
        return parsed
    entities = data.get("entities")
    header = _validate(MappingSpec, _emptied(data, "entities", list, []), located, (), parsed.issues)
    if header is not None:
        parsed.description, parsed.key = header.description, header.key
    if not isinstance(entities, list):
        return parsed
    if not entities:
        parsed.issues.append(located.issue(("entities",), "add at least one entity block"))
    for position, block in enumerate(entities):
        parsed.blocks.append(_parse_block(located, position, block, parsed.issues))
    return parsed


def _parse_block(located: LocatedYaml, position: int, block: Any, issues: list[ConfigIssue]) -> ParsedBlock:
    loc: Loc = ("entities", position)
    spec = _validate(EntitySpec, _emptied(block, "fields", dict, {}), located, loc, issues)
    fields: dict[str, FieldSpec] = {}
    raw_fields = block.get("fields") if isinstance(block, dict) else None
    declared = frozenset(raw_fields) if isinstance(raw_fields, dict) else frozenset()
    if isinstance(raw_fields, dict):
        if not raw_fields:
            issues.append(located.issue((*loc, "fields"), "add at least one field"))
        for name, value in raw_fields.items():
            if value is None:
                issues.append(located.issue((*loc, "fields", name), "a field needs a path or {path: ..., ...}"))
                continue
            parsed = _validate(FieldSpec, value, located, (*loc, "fields", name), issues)
            if parsed is not None:
                fields[name] = parsed
    return ParsedBlock(
        position=position,
        spec=spec,
        fields=fields,
        declared=declared,
    )


def _emptied(data: Any, key: str, kind: type, empty: Any) -> Any:
    """``data`` with its children under ``key`` set aside, so they can be validated one by one."""
    if isinstance(data, dict) and isinstance(data.get(key), kind):
        return {**data, key: empty}
    return data


def _validate(
    model: type[ModelT], data: Any, located: LocatedYaml, loc: Loc, issues: list[ConfigIssue]
) -> ModelT | None:
    """Validate ``data``, reporting every error. When only unknown keys are wrong, the rest is still returned
    (quietly validated without them), so the meaning of the known keys gets checked in the same pass."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        issues.extend(issues_from_validation(exc, located, loc))
    if not isinstance(data, dict):
        return None
    known = {k: v for k, v in data.items() if k in model.model_fields}
    if len(known) == len(data):
        return None
    try:
        return model.model_validate(known)
    except ValidationError:
        return None
