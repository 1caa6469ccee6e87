"""Every hook is documented: its docstring says when it is called, and the plugin reference lists it."""

from __future__ import annotations

import inspect
from pathlib import Path

import hub
from hub import hookspecs

HOOKS = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("hub_")]


def test_every_hook_has_the_hub_prefix_and_a_docstring_that_says_when_it_is_called():
    assert HOOKS
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "Called:" in doc, f"{name} does not say when it is called"


def test_every_hook_appears_in_the_plugin_guide():
    guide = (Path(__file__).parent.parent / "docs" / "plugin-guide.md").read_text(encoding="utf-8")
    missing = [name for name in HOOKS if f"`{name}" not in guide]
    assert missing == []


def test_the_public_api_is_exactly_what_all_lists():
    exported = {name for name, value in vars(hub).items() if not name.startswith("_") and not inspect.ismodule(value)}
    assert sorted(exported) == sorted(set(hub.__all__) - {"__version__"})
