"""Raw-record paths and key templates, parsed once at compile time into plain getter closures.

Path syntax (a path always starts at a key of the record, or of the element in an ``each`` block)::

    email                 a key
    billing.email         nested keys
    items[0].sku          a list position (negative counts from the end)
    line_items[].sku      every element: the value is a list (missing values left out; several ``[]`` flatten)
    ["first.name"]        a key that holds dots, brackets or a leading ``$`` (quoted with " or ')
    $.id                  from the raw record's root, inside an ``each`` block
    $index                the 0-based position of the element in an ``each`` block

A step that does not fit the data (a key on a list, a position past the end) gives ``None``: the value is
missing, and the field's ``default`` or ``required`` decides what that means.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Getter = Callable[[Any], Any]
Renderer = Callable[[dict[str, Any]], str | None]

INDEX_PATH = "$index"
ROOT_PREFIX = "$."

# A step is ("key", name), ("index", position) or ("each", None).
Step = tuple[str, Any]


@dataclass(frozen=True, slots=True)
class Path:
    """A parsed path. Its getter takes the record (or the ``each`` element, unless ``root``)."""

    text: str
    steps: tuple[Step, ...]
    root: bool = False
    is_index: bool = False

    @property
    def fans_out(self) -> bool:
        """True when the path has ``[]`` and so gives a list."""
        return any(kind == "each" for kind, _ in self.steps)

    @property
    def first_key(self) -> str | None:
        """The top-level key the path reads, or None for ``$index``."""
        return self.steps[0][1] if self.steps else None

    @property
    def single_key(self) -> str | None:
        """The key when the path is one plain key, so callers can inline ``dict.get``."""
        if len(self.steps) == 1 and self.steps[0][0] == "key":
            return str(self.steps[0][1])
        return None

    @property
    def keys(self) -> tuple[str, ...] | None:
        """The keys when the path is only plain keys (``a.b.c``), so callers can inline the look-ups."""
        if self.steps and all(kind == "key" for kind, _ in self.steps):
            return tuple(str(key) for _, key in self.steps)
        return None

    def getter(self) -> Getter:
        return _build(self.steps)


def parse_path(text: str) -> Path:
    """Parse ``text``; raises ValueError saying what is wrong with its syntax."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a path cannot be empty")
    if text != text.strip():
        raise ValueError(f"path {text!r} has leading or trailing spaces")
    if text == INDEX_PATH:
        return Path(text=text, steps=(), is_index=True)
    root = text.startswith(ROOT_PREFIX)
    body = text[len(ROOT_PREFIX) :] if root else text
    if body.startswith("$"):
        raise ValueError(f'path {text!r}: only `$.` and `$index` start with `$`; quote a key: ["$key"]')
    return Path(text=text, steps=_parse_steps(text, body), root=root)


def _parse_steps(text: str, body: str) -> tuple[Step, ...]:
    steps: list[Step] = []
    i, n = 0, len(body)
    expect_name = True  # at the start and after a dot a key must follow
    while i < n:
        char = body[i]
        if char == "[":
            close = _bracket(text, body, i, steps, expect_name)
            i = close + 1
            expect_name = False
        elif char == ".":
            if expect_name:
                raise ValueError(f"path {text!r}: empty key before position {i + 1}")
            expect_name = True
            i += 1
        elif char == "]":
            raise ValueError(f"path {text!r}: unexpected `]` at position {i + 1}")
        else:
            if not expect_name:
                raise ValueError(f"path {text!r}: expected `.` or `[` at position {i + 1}")
            end = i
            while end < n and body[end] not in ".[]":
                end += 1
            steps.append(("key", body[i:end]))
            i = end
            expect_name = False
    if expect_name:
        raise ValueError(f"path {text!r}: ends with `.`" if steps else f"path {text!r} has no key")
    return tuple(steps)


def _bracket(text: str, body: str, start: int, steps: list[Step], expect_name: bool) -> int:
    """Parse one ``[...]`` at ``start``, append its step, and return the position of its ``]``."""
    if body[start + 1 : start + 2] in ('"', "'"):
        quote = body[start + 1]
        end = body.find(quote, start + 2)
        if end == -1 or body[end + 1 : end + 2] != "]":
            raise ValueError(f"path {text!r}: unclosed quoted key at position {start + 1}")
        if end == start + 2:
            raise ValueError(f"path {text!r}: empty quoted key at position {start + 1}")
        steps.append(("key", body[start + 2 : end]))
        return end + 1
    if expect_name:
        raise ValueError(f"path {text!r}: `[` must follow a key at position {start + 1}")
    close = body.find("]", start)
    if close == -1:
        raise ValueError(f"path {text!r}: unclosed `[` at position {start + 1}")
    inner = body[start + 1 : close].strip()
    if inner == "":
        steps.append(("each", None))
    else:
        try:
            steps.append(("index", int(inner)))
        except ValueError:
            raise ValueError(f'path {text!r}: [{inner}] is not a list position; quote a key: ["{inner}"]') from None
    return close


def _build(steps: tuple[Step, ...]) -> Getter:
    """One closure per step, chained from the last step backwards."""
    if not steps:
        return _identity
    kind, arg = steps[0]
    rest = steps[1:]
    tail = _build(rest) if rest else None
    if kind == "key":
        return _key_step(arg, tail)
    if kind == "index":
        return _index_step(arg, tail)
    return _each_step(tail, flatten=any(k == "each" for k, _ in rest))


def _identity(obj: Any) -> Any:
    return obj


def _key_step(key: str, tail: Getter | None) -> Getter:
    if tail is None:

        def get_key(obj: Any) -> Any:
            return obj.get(key) if isinstance(obj, dict) else None

        return get_key

    def get_key_then(obj: Any) -> Any:
        if not isinstance(obj, dict):
            return None
        value = obj.get(key)
        return None if value is None else tail(value)

    return get_key_then


def _index_step(position: int, tail: Getter | None) -> Getter:
    def get_index(obj: Any) -> Any:
        if not isinstance(obj, list) or not -len(obj) <= position < len(obj):
            return None
        value = obj[position]
        return value if tail is None or value is None else tail(value)

    return get_index


def _each_step(tail: Getter | None, *, flatten: bool) -> Getter:
    def get_each(obj: Any) -> Any:
        if not isinstance(obj, list):
            return None
        out: list[Any] = []
        for item in obj:
            value = item if tail is None else tail(item)
            if value is None:
                continue
            if flatten:
                out.extend(value)
            else:
                out.append(value)
        return out

    return get_each


@dataclass(frozen=True, slots=True)
class Template:
    """A key template such as ``"{receipt_id}:{line_no}"``: literal text and paths, rendered per record."""

    text: str
    parts: tuple[str | Path, ...]

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(p for p in self.parts if isinstance(p, Path))

    def renderer(self) -> Callable[[dict[str, Any]], str | None]:
        """A closure rendering the template: missing values render empty; None when all are missing."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Path):
            get = self.parts[0].getter()

            def render_one(raw: dict[str, Any]) -> str | None:
                value = get(raw)
                if value is None or value == "":
                    return None
                return value if value.__class__ is str else _render_scalar(value)

            return render_one
        pieces: tuple[str | Getter, ...] = tuple(p.getter() if isinstance(p, Path) else p for p in self.parts)

        def render(raw: dict[str, Any]) -> str | None:
            out: list[str] = []
            found = False
            for piece in pieces:
                if isinstance(piece, str):
                    out.append(piece)
                    continue
                value = piece(raw)
                if value is None or value == "":
                    continue
                found = True
                out.append(value if value.__class__ is str else _render_scalar(value))
            return "".join(out) if found else None

        if all(isinstance(p, str) or p.single_key is not None for p in self.parts):
            return _concat_keys(self.parts, render)
        return render


def _concat_keys(parts: tuple[str | Path, ...], render: Callable[[dict[str, Any]], str | None]) -> Renderer:
    """A template of plain keys as one generated concatenation for the common case, every key present as
    non-empty text; any other record goes to ``render``. Only indices appear in the source."""
    namespace: dict[str, Any] = {"render": render}
    reads, checks, terms = [], [], []
    for i, part in enumerate(parts):
        namespace[f"p{i}"] = part if isinstance(part, str) else part.single_key
        if isinstance(part, str):
            terms.append(f"p{i}")
        else:
            reads.append(f"    v{i} = raw.get(p{i})")
            checks.append(f"v{i}.__class__ is str and v{i}")
            terms.append(f"v{i}")
    source = "\n".join(
        [
            "def render_keys(raw):",
            *reads,
            f"    if {' and '.join(checks)}:",
            f"        return {' + '.join(terms)}",
            "    return render(raw)",
        ]
    )
    exec(source + "\n", namespace)
    return namespace["render_keys"]  # type: ignore[no-any-return]


def _render_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_template(text: str) -> Template:
    """Parse ``{path}`` placeholders (``{{`` and ``}}`` are literal braces); ValueError on bad syntax."""
    parts: list[str | Path] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if (char == "{" and text[i + 1 : i + 2] == "{") or (char == "}" and text[i + 1 : i + 2] == "}"):
            literal.append(char)
            i += 2
        elif char == "{":
            close = text.find("}", i)
            if close == -1:
                raise ValueError(f"unclosed `{{` at position {i + 1}")
            inner = text[i + 1 : close].strip()
            if not inner:
                raise ValueError(f"empty placeholder `{{}}` at position {i + 1}")
            if "{" in inner:
                raise ValueError(f"`{{` inside a placeholder at position {i + 1}")
            path = parse_path(inner)
            if path.is_index:
                raise ValueError("`$index` has no meaning in a record key")
            if path.fans_out:
                raise ValueError(f"placeholder {{{inner}}} gives a list; a key needs one value per placeholder")
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(path)
            i = close + 1
        elif char == "}":
            raise ValueError(f"unmatched `}}` at position {i + 1}; write `}}}}` for a literal brace")
        else:
            literal.append(char)
            i += 1
    if literal:
        parts.append("".join(literal))
    if not any(isinstance(p, Path) for p in parts):
        raise ValueError("a key template needs at least one {path} placeholder")
    return Template(text=text, parts=tuple(parts))
