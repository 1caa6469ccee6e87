"""``${...}`` placeholders in hub.yaml string values.

Grammar (left to right; the first ``}`` that closes the placeholder ends it, nested placeholders count)::

    $${                 a literal ``${``
    ${NAME}             environment variable NAME; an error if it is not set
    ${NAME:-default}    NAME if it is set and not empty, else ``default`` (which may hold placeholders itself)
    ${scheme:ref}       a secret, resolved by whichever plugin owns ``scheme`` (``hub_resolve_secret``)

A ``$`` anywhere else is an ordinary character. Resolved values are inserted as they are and never
interpolated again, so a secret that happens to contain ``${`` stays intact.
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: Looks up an environment variable; None when it is not set.
EnvLookup = Callable[[str], str | None]
#: Resolves ``${scheme:reference}``; None when no resolver owns the scheme. May raise InterpolationError.
SecretLookup = Callable[[str, str], str | None]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HELP = "use ${NAME}, ${NAME:-default} or ${scheme:reference}; write $${ for a literal ${"


class InterpolationError(ValueError):
    """One or more placeholders of a string could not be resolved. Messages never hold a resolved value."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def interpolate(text: str, env: EnvLookup, secret: SecretLookup | None = None) -> str:
    """Replace every placeholder of ``text``; raise InterpolationError naming each one that failed."""
    if "$" not in text:
        return text
    out: list[str] = []
    problems: list[str] = []
    i = 0
    while i < len(text):
        j = text.find("$", i)
        if j < 0:
            out.append(text[i:])
            break
        out.append(text[i:j])
        if text.startswith("$${", j):
            out.append("${")
            i = j + 3
        elif text.startswith("${", j):
            end = _closing_brace(text, j + 2)
            if end < 0:
                problems.append(f"unterminated '${{' ({_HELP})")
                break
            try:
                out.append(_resolve(text[j + 2 : end], env, secret))
            except InterpolationError as exc:
                problems.extend(exc.problems)
            i = end + 1
        else:
            out.append("$")
            i = j + 1
    if problems:
        raise InterpolationError(problems)
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` that closes the placeholder whose body starts at ``start``, or -1."""
    depth = 0
    i = start
    while i < len(text):
        if text.startswith("$${", i):
            i += 3
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


def _resolve(body: str, env: EnvLookup, secret: SecretLookup | None) -> str:
    match = _NAME.match(body)
    if match is None:
        raise InterpolationError([f"invalid placeholder '${{{body}}}' ({_HELP})"])
    name, tail = match.group(), body[match.end() :]
    if not tail:
        value = env(name)
        if value is None:
            raise InterpolationError([f"environment variable {name} is not set"])
        return value
    if tail.startswith(":-"):
        value = env(name)
        return value if value else interpolate(tail[2:], env, secret)
    if tail.startswith(":") and len(tail) > 1:
        value = secret(name, tail[1:]) if secret is not None else None
        if value is None:
            raise InterpolationError([f"no plugin resolves scheme {name!r}"])
        return value
    raise InterpolationError([f"invalid placeholder '${{{body}}}' ({_HELP})"])
