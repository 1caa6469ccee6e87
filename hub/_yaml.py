"""YAML loading that remembers where every key came from, so errors can say ``file:line: key.path: problem``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hub.errors import ConfigError, ConfigIssue

Loc = tuple[str | int, ...]


@dataclass(slots=True)
class LocatedYaml:
    """Plain Python data parsed from a YAML file, plus the line of every key and item (1-based)."""

    file: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line(self, loc: Sequence[str | int]) -> int | None:
        """The line of ``loc``, or of its nearest ancestor that has one."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)

    def issue(self, loc: Sequence[str | int], message: str) -> ConfigIssue:
        return ConfigIssue(file=self.file, line=self.line(loc), key=format_loc(loc), message=message)


def format_loc(loc: Sequence[str | int]) -> str:
    """``("connectors", "pos", "paths", 0)`` -> ``connectors.pos.paths[0]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class _Loader(yaml.SafeLoader):
    """SafeLoader: no tags that construct Python objects, ever."""


def load_located(path: Path | str, *, display: str | None = None) -> LocatedYaml:
    """Parse a YAML file safely. A syntax error raises ConfigError with the file and line."""
    path = Path(path)
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(ConfigIssue(file=name, line=None, key="", message="file not found")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(ConfigIssue(file=name, line=None, key="", message=f"cannot read: {exc}")) from None
    return loads_located(text, file=name)


def loads_located(text: str, *, file: str = "<string>") -> LocatedYaml:
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError(ConfigIssue(file=file, line=line, key="", message=f"invalid YAML: {problem}")) from None
    located = LocatedYaml(file=file, data=None)
    if node is None:
        located.data = {}
        return located
    located.data = _construct(node, (), located.lines, file)
    return located


def _construct(node: yaml.Node, loc: Loc, lines: dict[Loc, int], file: str) -> Any:
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        loader = _Loader("")
        loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) or key is None:
                raise ConfigError(
                    ConfigIssue(file, key_node.start_mark.line + 1, format_loc(loc), "keys must be plain scalars")
                )
            if isinstance(key, bool) and isinstance(key_node, yaml.ScalarNode):
                # YAML 1.1 reads a key `on:` (or yes/no/off) as a boolean; as a key it is always the word.
                key = key_node.value
            key = str(key) if not isinstance(key, str) else key
            if key in out:
                raise ConfigError(
                    ConfigIssue(file, key_node.start_mark.line + 1, format_loc((*loc, key)), "duplicate key")
                )
            lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, (*loc, key), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*loc, i), lines, file) for i, item in enumerate(node.value)]
    return _Loader("").construct_object(node, deep=True)


def issues_from_validation(
    exc: ValidationError, located: LocatedYaml, prefix: Loc = (), *, data_loc: Loc | None = None
) -> list[ConfigIssue]:
    """Turn a pydantic error into located issues. ``prefix`` is where the validated object sits in the file."""
    issues = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        full = (*prefix, *loc)
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        elif err["type"] == "missing":
            message = "required key is missing"
        issues.append(ConfigIssue(located.file, located.line(full), format_loc(full), message))
    return issues
