"""One field spec -> one :class:`CompiledField`, with every check that needs no record done here, once.

Compiling a field parses its paths, builds its transforms, checks its options against its type, and converts
its ``default`` and constant ``value``; every problem becomes a located issue. What then runs per record is
a closure from :mod:`hub.mapping.pipeline`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from hub._yaml import Loc, LocatedYaml
from hub.errors import ConfigIssue
from hub.mapping.blocks import Inline
from hub.mapping.coerce import Converter, make_converter, zone
from hub.mapping.paths import Path, parse_path
from hub.mapping.pipeline import FieldGetter, Pipeline, Transform, is_missing
from hub.mapping.spec import FieldSpec

TransformFactory = Callable[..., Transform]

_DATE_TYPES = ("date", "datetime")


@dataclass(slots=True)
class CompileContext:
    """What compiling needs besides the spec, and where it reports problems and the raw keys it reads."""

    located: LocatedYaml
    transforms: Mapping[str, TransformFactory]
    timezone: tzinfo
    issues: list[ConfigIssue] = field(default_factory=list)
    source_fields: set[str] = field(default_factory=set)

    def report(self, loc: Loc, message: str) -> None:
        self.issues.append(self.located.issue(loc, message))

    def path(self, loc: Loc, text: str, *, element: bool, index: bool) -> Path | None:
        """Parse a path and record the top-level raw key it reads; report and return None when it is invalid.

        ``element``: a relative path reads the ``each`` element, not the record. ``index``: ``$index`` is
        allowed.
        """
        try:
            path = parse_path(text)
        except ValueError as exc:
            self.report(loc, str(exc))
            return None
        if path.is_index and not index:
            self.report(loc, "`$index` is only available to the fields of a block with `each`")
            return None
        if (path.root or not element) and path.first_key is not None:
            self.source_fields.add(path.first_key)
        return path


@dataclass(frozen=True, slots=True)
class CompiledField:
    """A field ready to run. ``label`` is the raw path for messages; ``relative``: it reads the element.

    ``inline`` describes its common case for the generated block runner (:mod:`hub.mapping.blocks`).
    """

    name: str
    get: FieldGetter
    label: str
    relative: bool
    inline: Inline | None = None


@dataclass(frozen=True, slots=True)
class _Source:
    """Where a field's raw value comes from. ``root_key`` is set when it is one plain key of the record, so
    the hot path can inline ``root.get(key)`` instead of calling a getter."""

    get: FieldGetter
    label: str
    relative: bool = False
    root_key: str | None = None
    keys: tuple[str, ...] | None = None  # a path of plain keys, read from the record when from_root
    from_root: bool = True
    is_index: bool = False


def compile_field(
    ctx: CompileContext, loc: Loc, name: str, spec: FieldSpec, *, required: bool, in_each: bool
) -> CompiledField | None:
    """Compile ``spec``; report every problem and return None if there is any."""
    before = len(ctx.issues)
    source = _source(ctx, loc, spec, in_each=in_each)
    convert = _converter(ctx, loc, spec)
    transforms = tuple(
        t for i, item in enumerate(spec.transforms) if (t := _transform(ctx, (*loc, "transforms", i), item))
    )
    default: Any = None
    if convert is not None and spec.has_default:
        try:
            default = convert(spec.default)
        except ValueError as exc:
            ctx.report((*loc, "default"), str(exc))
    if len(ctx.issues) > before or source is None or convert is None:
        return None
    pipeline = Pipeline(transforms, convert, default, spec.has_default, required or spec.required, spec.type)
    if spec.has_value:
        try:
            constant = pipeline.run_once(spec.value)
        except ValueError as exc:
            ctx.report((*loc, "value"), str(exc))
            return None
        inline = Inline(constant=True, value=constant)
        return CompiledField(name, lambda root, element, index: constant, source.label, source.relative, inline)
    inline = None
    if source.keys or source.is_index:
        missing_known = spec.has_default or not (required or spec.required)
        inline = Inline(
            keys=source.keys or (),
            from_root=source.from_root,
            index=source.is_index,
            transforms=tuple(transform for _, transform in transforms),
            type=spec.type,
            convert=convert,
            default=default if spec.has_default else None,
            has_default=missing_known,
        )
    get = pipeline.closure(source.get, source.root_key)
    return CompiledField(name, get, source.label, source.relative, inline)


def _source(ctx: CompileContext, loc: Loc, spec: FieldSpec, *, in_each: bool) -> _Source | None:
    sources = [key for key in ("path", "paths") if getattr(spec, key) is not None]
    if spec.has_value:
        sources.append("value")
    if len(sources) != 1:
        ctx.report(loc, f"use only one of {', '.join(sources)}" if sources else "give a path, paths or value")
        return None
    if spec.has_value:
        return _Source(get=_no_value, label="value")
    if spec.path is not None:
        path = ctx.path((*loc, "path"), spec.path, element=in_each, index=in_each)
        if path is None:
            return None
        from_root = path.root or not in_each
        return _Source(
            get=_path_getter(path, from_root=from_root),
            label=path.text,
            relative=not from_root and not path.is_index,
            root_key=path.single_key if from_root else None,
            keys=path.keys,
            from_root=from_root,
            is_index=path.is_index,
        )
    assert spec.paths is not None
    paths = [ctx.path((*loc, "paths", i), text, element=in_each, index=in_each) for i, text in enumerate(spec.paths)]
    if not paths:
        ctx.report((*loc, "paths"), "list at least one path")
    if not paths or any(p is None for p in paths):
        return None
    getters = tuple(_path_getter(p, from_root=p.root or not in_each) for p in paths if p is not None)

    def get_many(root: dict[str, Any], element: Any, index: int) -> list[Any]:
        return [None if is_missing(v := get(root, element, index)) else v for get in getters]

    return _Source(get=get_many, label=", ".join(spec.paths))


def _no_value(root: dict[str, Any], element: Any, index: int) -> None:
    return None


def _path_getter(path: Path, *, from_root: bool) -> FieldGetter:
    if path.is_index:
        return lambda root, element, index: index
    get = path.getter()
    if from_root:
        return lambda root, element, index: get(root)
    return lambda root, element, index: get(element)


def _converter(ctx: CompileContext, loc: Loc, spec: FieldSpec) -> Converter | None:
    ok = True
    if spec.format is not None and spec.type not in _DATE_TYPES:
        ctx.report((*loc, "format"), "`format` applies to date and datetime fields only")
        ok = False
    if spec.tz is not None and spec.type not in _DATE_TYPES:
        ctx.report((*loc, "tz"), "`tz` applies to date and datetime fields only")
        ok = False
    for key in ("true_values", "false_values"):
        if getattr(spec, key) is not None and spec.type != "bool":
            ctx.report((*loc, key), f"`{key}` applies to bool fields only")
            ok = False
    tz = ctx.timezone
    if spec.tz is not None:
        try:
            tz = zone(spec.tz)
        except ValueError as exc:
            ctx.report((*loc, "tz"), str(exc))
            ok = False
    if not ok:
        return None
    try:
        return make_converter(
            spec.type, fmt=spec.format, tz=tz, true_values=spec.true_values, false_values=spec.false_values
        )
    except ValueError as exc:
        ctx.report((*loc, "format" if spec.type in _DATE_TYPES else "true_values"), str(exc))
        return None


def _transform(ctx: CompileContext, loc: Loc, item: Any) -> tuple[str, Transform] | None:
    return build_transform(item, ctx.transforms, lambda message: ctx.report(loc, message))


def build_transform(
    item: Any, transforms: Mapping[str, Callable[..., Transform]], report: Callable[[str], object]
) -> tuple[str, Transform] | None:
    """Build one transform from its YAML form, ``name`` or ``{name: arguments}``; inbound and outbound mappings
    share it. Problems go to ``report`` (the caller adds the location) and give None."""
    if isinstance(item, str):
        name, args, has_args = item, None, False
    elif isinstance(item, dict) and len(item) == 1:
        ((name, args),) = item.items()
        has_args = args is not None
    else:
        report("a transform is a name or {name: arguments}, e.g. `strip` or `{truncate: 40}`")
        return None
    factory = transforms.get(name)
    if factory is None:
        report(f"unknown transform {name!r}; known: {', '.join(sorted(transforms))}")
        return None
    try:
        if not has_args:
            built = factory()
        elif isinstance(args, dict):
            built = factory(**args)
        else:
            built = factory(args)
    except (TypeError, ValueError) as exc:
        report(f"bad arguments for transform {name!r}: {exc}")
        return None
    if not callable(built):
        report(f"transform {name!r} did not return a function (its plugin is broken)")
        return None
    return name, built
