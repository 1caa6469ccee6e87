"""A mapping file -> one :class:`CompiledMapping`: a chain of closures, built once, run per raw record.

Nothing here re-reads YAML or re-parses a path per record. Compiling checks everything it can (entities,
fields, paths, types, transforms and their arguments, key template, ``replace``) and raises one
:class:`~hub.errors.MappingError` listing every issue as ``file:line: key.path: message``. Mapping a record
collects every field error of that record and raises one :class:`~hub.errors.RecordError`, which
``map_batch`` turns into a reject.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub._yaml import Loc, LocatedYaml, load_located
from hub.engine.load import replace_keys
from hub.errors import ConfigError, ConfigIssue, MappingError, RecordError
from hub.mapping.blocks import BlockField, BlockRunner, Rows, each_runner, single_runner
from hub.mapping.coerce import zone
from hub.mapping.fields import CompileContext, CompiledField, TransformFactory, compile_field
from hub.mapping.paths import parse_path, parse_template
from hub.mapping.pipeline import FieldGetter, is_missing
from hub.mapping.spec import EntitySpec, ParsedBlock, parse_mapping
from hub.records import ENTITY_FIELDS, FIELD_TYPES, IDENTITY_KEYS, Mapped, RejectedRecord

_NO_IDENTITY = f"customer: no identity key ({', '.join(IDENTITY_KEYS)})"

#: What a ``replace: true`` block read of a record: (entity, its ``$.``-read key fields, their values).
Scope = tuple[str, tuple[str, ...], tuple[Any, ...]]


@dataclass(slots=True)
class ReplacingMapped(Mapped):
    """A record of a mapping with ``replace: true`` blocks, and the scopes they read from it: the loader deletes
    this connector's rows of each scope that the record does not emit (:func:`hub.engine.load.load_batch`)."""

    replaces: tuple[Scope, ...] = ()


@dataclass(frozen=True, slots=True)
class _Replace:
    """A ``replace: true`` block: how to read the scope of a record, even one whose list is empty or missing."""

    entity: str
    fields: tuple[str, ...]  # the entity's key fields the block reads with `$.`
    getters: tuple[FieldGetter, ...]
    each: Callable[[Any], Any]
    when: Callable[[Any], Any] | None  # a `when` on the record: when missing, the block does not read the record

    def scope(self, raw: dict[str, Any]) -> Scope | None:
        """The record's scope; None when the block skips it or a key field has no value (nothing is deleted)."""
        if self.when is not None and is_missing(self.when(raw)):
            return None
        elements = self.each(raw)
        if elements is not None and not isinstance(elements, list):
            return None
        try:
            values = tuple(get(raw, raw, 0) for get in self.getters)
        except ValueError:
            return None
        if any(value is None for value in values):
            return None
        return (self.entity, self.fields, values)


class CompiledMapping:
    """A compiled mapping: ``map`` one raw record, or ``map_batch`` many, into :class:`hub.records.Mapped`."""

    __slots__ = ("_blocks", "_key", "_replaces", "description", "entities", "file", "source_fields")

    def __init__(
        self,
        *,
        file: str,
        description: str | None,
        entities: tuple[str, ...],
        source_fields: frozenset[str],
        blocks: tuple[BlockRunner, ...],
        key: Callable[[dict[str, Any]], str | None] | None,
        replaces: tuple[_Replace, ...] = (),
    ) -> None:
        self.file = file
        self.description = description
        self.entities = entities  # the entities it emits, in block order
        self.source_fields = source_fields  # top-level raw keys it reads, to detect schema drift
        self._blocks = blocks
        self._key = key
        self._replaces = replaces

    def __repr__(self) -> str:
        return f"<CompiledMapping {self.file} -> {', '.join(self.entities)}>"

    def map(self, raw: dict[str, Any]) -> Mapped:
        """Map one raw record; raises RecordError with every field error of the record."""
        rows, errors = self._run(raw)
        if errors:
            raise RecordError(errors)
        key = self._key(raw) if self._key is not None else None
        if self._replaces:
            return ReplacingMapped(rows, key, self._scopes(raw))
        return Mapped(rows=rows, key=key)

    def map_batch(self, raws: list[dict[str, Any]]) -> tuple[list[Mapped], list[RejectedRecord]]:
        """Map every record; a bad one becomes a RejectedRecord holding the very raw object it came from."""
        mapped: list[Mapped] = []
        rejected: list[RejectedRecord] = []
        render, blocks, replaces = self._key, self._blocks, self._replaces
        errors: list[str] = []  # reused: most records have no error
        for raw in raws:
            if not isinstance(raw, dict):
                rejected.append(RejectedRecord(raw=raw, errors=[_not_an_object(raw)]))
                continue
            rows: Rows = {}
            for block in blocks:
                block(raw, rows, errors)
            key = render(raw) if render is not None else None
            if errors:
                rejected.append(RejectedRecord(raw, errors, key))
                errors = []
            elif replaces:
                mapped.append(ReplacingMapped(rows, key, self._scopes(raw)))
            else:
                mapped.append(Mapped(rows, key))
        return mapped, rejected

    def _scopes(self, raw: dict[str, Any]) -> tuple[Scope, ...]:
        return tuple(scope for replace in self._replaces if (scope := replace.scope(raw)) is not None)

    def _run(self, raw: dict[str, Any]) -> tuple[Rows, list[str]]:
        rows: Rows = {}
        errors: list[str] = []
        if not isinstance(raw, dict):
            errors.append(_not_an_object(raw))
            return rows, errors
        for block in self._blocks:
            block(raw, rows, errors)
        return rows, errors


def _not_an_object(raw: Any) -> str:
    return f"record: expected an object, got {type(raw).__name__}"


def load_mapping(
    path: Path,
    transforms: Mapping[str, TransformFactory],
    *,
    timezone: str = "UTC",
    display: str | None = None,
) -> CompiledMapping:
    """Read and compile a mapping file. ``display`` names the file in messages (e.g. relative to the project).

    Naive date-times without a field ``tz`` are read in ``timezone``. Raises MappingError.
    """
    try:
        located = load_located(path, display=display)
    except ConfigError as exc:  # unreadable file or YAML syntax: still a broken mapping
        raise MappingError(exc.issues) from None
    return compile_mapping(located, transforms, timezone=timezone)


def compile_mapping(
    data: LocatedYaml, transforms: Mapping[str, TransformFactory], *, timezone: str = "UTC"
) -> CompiledMapping:
    """Compile parsed mapping YAML; raises MappingError listing every issue."""
    parsed = parse_mapping(data)
    try:
        tz = zone(timezone)
    except ValueError as exc:
        raise MappingError(ConfigIssue(file=data.file, line=None, key="timezone", message=str(exc))) from None
    ctx = CompileContext(located=data, transforms=transforms, timezone=tz, issues=parsed.issues)
    key = None
    if parsed.key is not None:
        try:
            template = parse_template(parsed.key)
        except ValueError as exc:
            ctx.report(("key",), str(exc))
        else:
            ctx.source_fields.update(p.first_key for p in template.paths if p.first_key is not None)
            key = template.renderer()
    blocks: list[BlockRunner] = []
    replaces: list[_Replace] = []
    entities: list[str] = []
    customer_at: int | None = None
    for block in parsed.blocks:
        spec = block.spec
        if spec is not None and spec.entity == "customer":
            if customer_at is not None:
                ctx.report(
                    ("entities", block.position, "entity"),
                    f"only one customer block per mapping (the first is entities[{customer_at}]): "
                    "a raw record is about one person",
                )
            customer_at = block.position
        compiled = _compile_block(ctx, block)
        if compiled is not None and spec is not None:
            runner, replace = compiled
            blocks.append(runner)
            if replace is not None:
                replaces.append(replace)
            if spec.entity not in entities:
                entities.append(spec.entity)
    if ctx.issues:
        raise MappingError(sorted(ctx.issues, key=lambda issue: issue.line or 0))
    return CompiledMapping(
        file=data.file,
        description=parsed.description,
        entities=tuple(entities),
        source_fields=frozenset(ctx.source_fields),
        blocks=tuple(blocks),
        key=key,
        replaces=tuple(replaces),
    )


def _compile_block(ctx: CompileContext, block: ParsedBlock) -> tuple[BlockRunner, _Replace | None] | None:
    loc: Loc = ("entities", block.position)
    spec = block.spec
    before = len(ctx.issues)
    entity = spec.entity if spec is not None else None
    known = ENTITY_FIELDS.get(entity) if entity is not None else None
    if entity is not None and known is None:
        ctx.report((*loc, "entity"), f"unknown entity {entity!r}; known: {', '.join(ENTITY_FIELDS)}")
    in_each = spec is not None and spec.each is not None
    fields: list[CompiledField] = []
    for name, field_spec in block.fields.items():
        field_loc = (*loc, "fields", name)
        if known is not None and name not in known:
            ctx.report(field_loc, f"unknown field for {entity}; valid fields: {', '.join(known)}")
            continue
        stored = FIELD_TYPES.get(entity or "", {}).get(name, "str")
        if "type" not in field_spec.model_fields_set:
            field_spec = field_spec.model_copy(update={"type": stored})
        elif stored != "str" and field_spec.type != stored:
            ctx.report((*field_loc, "type"), f"{entity}.{name} holds {stored}, not {field_spec.type}")
            continue
        compiled = compile_field(
            ctx, field_loc, name, field_spec, required=bool(known and known[name]), in_each=in_each
        )
        if compiled is not None:
            fields.append(compiled)
    if spec is None or known is None:
        return None
    _check_block(ctx, loc, spec, block, known)
    scope = _check_replace(ctx, loc, spec, block) if spec.replace else None
    each = when = None
    if spec.each is not None:
        each = ctx.path((*loc, "each"), spec.each, element=False, index=False)
    if spec.when is not None:
        when = ctx.path((*loc, "when"), spec.when, element=in_each, index=False)
    if len(ctx.issues) > before:
        return None
    when_get = when.getter() if when is not None else None
    when_root = when is None or when.root or not in_each
    identity = tuple(f.name for f in fields if f.name in IDENTITY_KEYS) if spec.entity == "customer" else ()
    if each is None:
        return _single_runner(spec.entity, tuple(fields), when_get, identity, optional=spec.optional), None
    replace = None
    if scope is not None:
        getters = {f.name: f.get for f in fields}
        root_when = when_get if when is not None and when.root else None
        replace = _Replace(spec.entity, scope, tuple(getters[name] for name in scope), each.getter(), root_when)
    return _each_runner(spec.entity, tuple(fields), each.getter(), each.text, when_get, when_root), replace


def _check_block(ctx: CompileContext, loc: Loc, spec: EntitySpec, block: ParsedBlock, known: dict[str, bool]) -> None:
    missing = [name for name, required in known.items() if required and name not in block.declared]
    if missing:
        ctx.report((*loc, "fields"), f"{spec.entity} needs field(s): {', '.join(missing)}")
    if spec.entity == "customer":
        if spec.each is not None:
            ctx.report((*loc, "each"), "a customer block cannot use `each`: a raw record is about one customer")
        if not block.declared & set(IDENTITY_KEYS):
            ctx.report((*loc, "fields"), f"a customer block needs an identity key: {', '.join(IDENTITY_KEYS)}")
    elif spec.optional:
        ctx.report((*loc, "optional"), "`optional` applies to customer blocks only")


def _check_replace(ctx: CompileContext, loc: Loc, spec: EntitySpec, block: ParsedBlock) -> tuple[str, ...] | None:
    """The key fields scoping a ``replace: true`` block (those it reads with `$.`), or None after a report."""
    where = (*loc, "replace")
    if spec.each is None:
        ctx.report(where, "`replace` needs `each`: it makes the block's list the whole set of the record's rows")
        return None
    keys = replace_keys(spec.entity)
    if keys is None:
        allowed = ", ".join(e for e in ENTITY_FIELDS if replace_keys(e) is not None)
        ctx.report(where, f"`replace` applies to entities whose rows hub keeps per connector: {allowed}")
        return None
    root: list[str] = []
    element = False
    for name in keys:
        field_spec = block.fields.get(name)
        if field_spec is None or field_spec.path is None:
            continue
        try:
            path = parse_path(field_spec.path)
        except ValueError:  # reported with the field
            return None
        if path.root:
            root.append(name)
        else:  # the element, or its position
            element = True
    listed = ", ".join(keys)
    if not root:
        ctx.report(
            where,
            f"`replace` needs a key field of {spec.entity} ({listed}) read from the record with `$.` "
            f"(e.g. `{keys[0]}: $.{keys[0]}`): the rows it replaces are those with the record's values there",
        )
        return None
    if not element:
        ctx.report(
            where,
            f"`replace` needs a key field of {spec.entity} ({listed}) read from the list's elements: "
            "with every key read from the record, the block has one row per record and nothing to replace",
        )
        return None
    return tuple(root)


def _block_fields(fields: tuple[CompiledField, ...]) -> tuple[BlockField, ...]:
    return tuple(BlockField(f.name, f.get, f.inline) for f in fields)


def _single_runner(
    entity: str,
    fields: tuple[CompiledField, ...],
    when: Callable[[Any], Any] | None,
    identity: tuple[str, ...],
    *,
    optional: bool,
) -> BlockRunner:
    """A block that emits at most one row per record."""
    labels = tuple(f"{entity}.{f.name} ({f.label})" for f in fields)
    return single_runner(
        entity, _block_fields(fields), labels, when, identity, optional=optional, no_identity=_NO_IDENTITY
    )


def _each_runner(
    entity: str,
    fields: tuple[CompiledField, ...],
    each: Callable[[Any], Any],
    each_text: str,
    when: Callable[[Any], Any] | None,
    when_root: bool,
) -> BlockRunner:
    """A block that emits one row per element of the list at ``each``."""
    where = tuple(f"{each_text}[{{index}}].{f.label}" if f.relative else f.label for f in fields)

    def labels(index: int) -> tuple[str, ...]:
        return tuple(
            f"{entity}[{index}].{f.name} ({w.replace('{index}', str(index))})"
            for f, w in zip(fields, where, strict=True)
        )

    return each_runner(entity, _block_fields(fields), labels, each, each_text, when, when_root)
