"""Block runners: one generated Python function per entity block, which reads a record's fields inline.

A block with ten fields would otherwise call ten closures per record (and, for a nested path, a chain of
them). The runner here is straight-line code compiled once per block, as ``dataclasses`` and ``namedtuple``
generate theirs: each field with an :class:`Inline` description is read and converted in place when its value
is the common case (present text, or a constant), and every other field, or any value off the common case,
goes through the field's own getter, which remains the single source of truth for defaults, transforms,
types and error messages. A ValueError anywhere re-runs the record's fields through their getters, which
collect every error of the row. Only indices appear in the generated source, never a name from a mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hub.mapping.coerce import Converter
from hub.mapping.pipeline import FieldGetter, Transform, is_missing

Rows = dict[str, list[dict[str, Any]]]
BlockRunner = Callable[[dict[str, Any], Rows, list[str]], None]

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True, slots=True)
class Inline:
    """A field's common case, readable without calling its getter.

    Either a ``constant``, or the value at a chain of dict ``keys`` (of the record, or of the ``each`` element
    unless ``from_root``; ``index``: the element's position), passed through ``transforms`` and converted by
    ``convert`` to ``type``. A missing value becomes ``default`` when ``has_default`` (the field's default, or
    None for an optional field). Anything off the common case, errors included, calls the field's getter.
    """

    constant: bool = False
    value: Any = None
    keys: tuple[str, ...] = ()
    from_root: bool = True
    index: bool = False
    transforms: tuple[Transform, ...] = ()
    type: str = "str"
    convert: Converter | None = None
    default: Any = None
    has_default: bool = False


@dataclass(frozen=True, slots=True)
class BlockField:
    """What a runner needs of a compiled field: its name, its getter, and its inline description if any."""

    name: str
    get: FieldGetter
    inline: Inline | None


def single_runner(
    entity: str,
    fields: tuple[BlockField, ...],
    labels: tuple[str, ...],
    when: Callable[[Any], Any] | None,
    identity: tuple[str, ...],
    *,
    optional: bool,
    no_identity: str,
) -> BlockRunner:
    """A block that emits at most one row per record; ``identity``: the customer's key fields, if a customer."""
    getters = tuple((f.name, f.get) for f in fields)
    namespace = _namespace(fields)
    namespace |= {
        "entity": entity,
        "when": when,
        "is_missing": is_missing,
        "no_identity": no_identity,
        "slow": _slow(getters, lambda index: labels),
    }
    lines = ["def run(raw, rows, errors):"]
    if when is not None:
        lines.append("    if is_missing(when(raw)): return")
    lines += ["    element = raw", "    index = 0", "    try:"]
    lines += _read_fields(fields, "        ")
    lines += [
        "    except ValueError:",
        "        row = slow(raw, raw, 0, errors)",
        "        if row is None: return",
        "    else:",
        f"        row = {_row_display(fields)}",
    ]
    if identity:
        names = [f"n{[f.name for f in fields].index(name)}" for name in identity]
        lines.append(f"    if {' and '.join(f'row[{n}] is None' for n in names)}:")
        lines += ["        if not optional: errors.append(no_identity)", "        return"]
        namespace["optional"] = optional
    lines += [
        "    existing = rows.get(entity)",
        "    if existing is None: rows[entity] = [row]",
        "    else: existing.append(row)",
    ]
    return _define(lines, namespace)


def each_runner(
    entity: str,
    fields: tuple[BlockField, ...],
    labels: Callable[[int], tuple[str, ...]],
    each: Callable[[Any], Any],
    each_text: str,
    when: Callable[[Any], Any] | None,
    when_root: bool,
) -> BlockRunner:
    """A block that emits one row per element of the list at ``each``; ``labels`` name the fields of one."""
    getters = tuple((f.name, f.get) for f in fields)
    namespace = _namespace(fields)
    namespace |= {
        "entity": entity,
        "each": each,
        "when": when,
        "is_missing": is_missing,
        "not_a_list": f"{entity} ({each_text}): expected a list, got {{}}",
        "slow": _slow(getters, labels),
    }
    lines = [
        "def run(raw, rows, errors):",
        "    elements = each(raw)",
        "    if elements is None: return",
        "    if not isinstance(elements, list):",
        "        errors.append(not_a_list.format(type(elements).__name__))",
        "        return",
    ]
    if when is not None and when_root:
        lines.append("    if is_missing(when(raw)): return")
    lines += ["    out = rows.get(entity)", "    for index, element in enumerate(elements):"]
    if when is not None and not when_root:
        lines.append("        if is_missing(when(element)): continue")
    lines += [
        "        if element.__class__ is dict:",
        "            try:",
        *_read_fields(fields, "                "),
        "            except ValueError:",
        "                row = slow(raw, element, index, errors)",
        "                if row is None: continue",
        "            else:",
        f"                row = {_row_display(fields)}",
        "        else:",
        "            row = slow(raw, element, index, errors)",
        "            if row is None: continue",
        "        if out is None: out = rows[entity] = []",
        "        out.append(row)",
    ]
    return _define(lines, namespace)


def _namespace(fields: tuple[BlockField, ...]) -> dict[str, Any]:
    namespace: dict[str, Any] = {"Decimal": Decimal, "INT_MIN": _INT_MIN, "INT_MAX": _INT_MAX}
    for i, f in enumerate(fields):
        namespace[f"n{i}"] = f.name
        namespace[f"g{i}"] = f.get
        inline = f.inline
        if inline is not None:
            namespace[f"c{i}"] = inline.value if inline.constant else inline.convert
            namespace[f"d{i}"] = inline.default
            namespace.update({f"k{i}_{j}": key for j, key in enumerate(inline.keys)})
            namespace.update({f"t{i}_{j}": transform for j, transform in enumerate(inline.transforms)})
    return namespace


def _row_display(fields: tuple[BlockField, ...]) -> str:
    return "{" + ", ".join(f"n{i}: v{i}" for i in range(len(fields))) + "}"


def _read_fields(fields: tuple[BlockField, ...], indent: str) -> list[str]:
    """Statements that set ``v<i>`` for every field: inline for the common case, else through getter ``g<i>``."""
    lines: list[str] = []
    for i, f in enumerate(fields):
        inline = f.inline
        if inline is None:
            lines.append(f"v{i} = g{i}(raw, element, index)")
        elif inline.constant:
            lines.append(f"v{i} = c{i}")
        else:
            lines += _read(i, inline)
            lines += _transform(i, inline) if inline.transforms else _convert(i, inline)
    return [indent + line for line in lines]


def _read(i: int, inline: Inline) -> list[str]:
    """Set ``v<i>`` to the raw value: the element's position, or the value at the keys (None off the path)."""
    if inline.index:
        return [f"v{i} = index"]
    lines = [f"v{i} = {'raw' if inline.from_root else 'element'}.get(k{i}_0)"]
    lines += [f"v{i} = v{i}.get(k{i}_{j}) if v{i}.__class__ is dict else None" for j in range(1, len(inline.keys))]
    return lines


def _convert(i: int, inline: Inline) -> list[str]:
    """Turn a raw value without transforms into the field's type: present text (or an int) inline, missing
    (None or blank text) to the default, anything else through the getter."""
    v, call = f"v{i}", f"g{i}(raw, element, index)"
    if inline.index:
        return [] if inline.type == "int" else [f"{v} = {call}"]
    missing = f"d{i}" if inline.has_default else call
    if inline.type == "str":
        present = ["pass"]
    elif inline.type == "decimal":
        present = [
            "try:",
            f"    number = Decimal({v})",
            "except (ArithmeticError, ValueError):",
            f"    {v} = {call}",
            "else:",
            f"    {v} = number if number.is_finite() else {call}",
        ]
    elif inline.type == "int":
        present = [
            "try:",
            f"    number = int({v})",
            "except ValueError:",
            f"    {v} = {call}",
            "else:",
            f"    {v} = number if INT_MIN <= number <= INT_MAX else {call}",
        ]
    else:
        present = [f"{v} = c{i}({v})"]
    lines = [
        f"if {v}.__class__ is str:",
        f"    if {v} and not {v}.isspace():",
        *[f"        {line}" for line in present],
        "    else:",
        f"        {v} = {missing}",
        f"elif {v} is None:",
        f"    {v} = {missing}",
    ]
    if inline.type == "decimal":
        lines += [f"elif {v}.__class__ is int:", f"    {v} = Decimal({v})"]
    elif inline.type == "int":
        lines += [f"elif {v}.__class__ is int and INT_MIN <= {v} <= INT_MAX:", "    pass"]
    return [*lines, "else:", f"    {v} = {call}"]


def _transform(i: int, inline: Inline) -> list[str]:
    """A missing raw value becomes None, the transforms run in order, then missing -> default, else convert.
    A transform that raises sends the field to its getter, which raises the error with the transform's name."""
    v, call = f"v{i}", f"g{i}(raw, element, index)"
    convert = f"if {v}.__class__ is not str: {v} = c{i}({v})" if inline.type == "str" else f"{v} = c{i}({v})"
    return [
        f"if {v}.__class__ is str:",
        f"    if not {v} or {v}.isspace(): {v} = None",
        f"elif ({v}.__class__ is list or {v}.__class__ is dict) and not {v}:",
        f"    {v} = None",
        "try:",
        *[f"    {v} = t{i}_{j}({v})" for j in range(len(inline.transforms))],
        "except (ValueError, TypeError):",
        f"    {v} = {call}",
        "else:",
        f"    if {v} is None or is_missing({v}):",
        f"        {v} = {f'd{i}' if inline.has_default else call}",
        "    else:",
        f"        {convert}",
    ]


def _slow(
    getters: tuple[tuple[str, FieldGetter], ...], labels: Callable[[int], tuple[str, ...]]
) -> Callable[[dict[str, Any], Any, int, list[str]], dict[str, Any] | None]:
    """The row through the fields' getters alone, or None after adding every field error to ``errors``."""

    def slow(raw: dict[str, Any], element: Any, index: int, errors: list[str]) -> dict[str, Any] | None:
        found = []
        for (_, get), label in zip(getters, labels(index), strict=True):
            try:
                get(raw, element, index)
            except ValueError as exc:
                found.append(f"{label}: {exc}")
        if found:
            errors.extend(found)
            return None
        return {name: get(raw, element, index) for name, get in getters}

    return slow


def _define(lines: list[str], namespace: dict[str, Any]) -> BlockRunner:
    exec("\n".join(lines) + "\n", namespace)
    return namespace["run"]  # type: ignore[no-any-return]
