"""The ``${...}`` placeholder grammar, example by example and by property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.config import InterpolationError, interpolate

HELP = "(use ${NAME}, ${NAME:-default} or ${scheme:reference}; write $${ for a literal ${)"
ENV = {"HOST": "db.example", "EMPTY": "", "DOLLARS": "a${HOST}b"}


def secrets(scheme: str, reference: str) -> str | None:
    return f"<{scheme}|{reference}>" if scheme == "vault" else None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain text", "plain text"),
        ("${HOST}", "db.example"),
        ("https://${HOST}:5432/x", "https://db.example:5432/x"),
        ("${MISSING:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${HOST:-fallback}", "db.example"),
        ("${MISSING:-}", ""),
        ("${EMPTY}", ""),
        ("${MISSING:-${HOST}}", "db.example"),
        ("${MISSING:-${ALSO_MISSING:-deep}}", "deep"),
        ("$${HOST}", "${HOST}"),
        ("$$${HOST}", "$${HOST}"),  # the escape of the literal "$${HOST}"
        ("${MISSING:-$${x}}", "${x}"),
        ("cost: $5 {x}", "cost: $5 {x}"),
        ("$", "$"),
        ("${vault:kv/data/shop#token}", "<vault|kv/data/shop#token>"),
        ("${DOLLARS}", "a${HOST}b"),
    ],
)
def test_placeholders(text: str, expected: str) -> None:
    assert interpolate(text, ENV.get, secrets) == expected


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        ("${MISSING}", ["environment variable MISSING is not set"]),
        ("${aws:key}", ["no plugin resolves scheme 'aws'"]),
        ("${A}-${B}", ["environment variable A is not set", "environment variable B is not set"]),
        ("${HOST", [f"unterminated '${{' {HELP}"]),
        ("${}", [f"invalid placeholder '${{}}' {HELP}"]),
        ("${1X}", [f"invalid placeholder '${{1X}}' {HELP}"]),
        ("${vault:}", [f"invalid placeholder '${{vault:}}' {HELP}"]),
    ],
)
def test_problems_name_each_placeholder(text: str, problems: list[str]) -> None:
    with pytest.raises(InterpolationError) as info:
        interpolate(text, ENV.get, secrets)
    assert info.value.problems == problems


def test_scheme_without_resolver_is_a_problem() -> None:
    with pytest.raises(InterpolationError, match="no plugin resolves scheme 'vault'"):
        interpolate("${vault:x}", ENV.get)


def test_default_is_only_resolved_when_needed() -> None:
    assert interpolate("${HOST:-${MISSING}}", ENV.get) == "db.example"


NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
LITERAL = st.text(st.characters(blacklist_characters="$", blacklist_categories=("Cs",)), max_size=8)
PLAIN = st.text(st.characters(blacklist_characters="${}", blacklist_categories=("Cs",)), max_size=8)


@st.composite
def templates(draw: st.DrawFn) -> tuple[str, dict[str, str], str]:
    """A template of literals, escapes and placeholders, with its environment and the text it must give."""
    env = draw(st.dictionaries(NAMES, st.text(max_size=8), max_size=4))
    source, expected = [], []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["literal", "escape", "set", "default"]))
        if kind == "literal":
            text = draw(LITERAL)
            source.append(text)
            expected.append(text)
        elif kind == "escape":
            source.append("$${")
            expected.append("${")
        elif kind == "set" and env:
            name = draw(st.sampled_from(sorted(env)))
            source.append(f"${{{name}}}")
            expected.append(env[name])
        else:
            name = draw(NAMES.filter(lambda n: not env.get(n)))
            default = draw(PLAIN)
            source.append(f"${{{name}:-{default}}}")
            expected.append(default)
    return "".join(source), env, "".join(expected)


@given(templates())
def test_templates_resolve_to_their_parts(case: tuple[str, dict[str, str], str]) -> None:
    text, env, expected = case
    assert interpolate(text, env.get) == expected


@given(st.text())
def test_escaping_round_trips(text: str) -> None:
    assert interpolate(text.replace("${", "$${"), {}.get) == text


@given(st.text(alphabet="${}:-ab_", max_size=20))
def test_no_placeholder_survives(text: str) -> None:
    """Every placeholder resolves or an InterpolationError says why; a ``${`` is never left over."""
    try:
        result = interpolate(text, lambda name: "x", lambda scheme, reference: "s")
    except InterpolationError:
        return
    if "$$" not in text:
        assert "${" not in result
