"""The connector contract: what a source (and, later, a destination) plugin provides.

A connector *type* is a class registered by ``hub_connector_types``. It declares its ``type`` name, the ``roles``
it plays, its ``Settings`` model and its streams; an *instance* is built by the core for each entry under
``connectors:`` in hub.yaml, with its validated settings. Reading records is a method of the instance, not a hook,
so the hot path never goes through hook dispatch.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

Role = Literal["source", "destination", "recommender"]


class ConnectorSettings(BaseModel):
    """Base class of every connector type's settings. Unknown keys are errors, so typos are caught."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class Stream:
    """A stream a source offers: its name, the field that is its primary key and the one its cursor follows."""

    name: str
    key: str | None = None
    cursor_field: str | None = None
    description: str = ""


@dataclass(slots=True)
class Batch:
    """Raw records read from a stream, with the cursor value that is true once they are loaded.

    The engine commits ``records`` and ``cursor`` in one transaction, so a crash replays at most this batch.
    ``cursor`` must be JSON-serialisable.
    """

    records: list[dict[str, Any]]
    cursor: Any


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The answer to ``check()``: a yes or no, in plain words a user can act on."""

    ok: bool
    message: str


@dataclass(slots=True)
class ConnectorContext:
    """What the core hands every connector instance: its name in hub.yaml and where relative paths start."""

    name: str
    project_dir: Path
    timezone: str = "UTC"
    extra: dict[str, Any] = field(default_factory=dict)


class Connector:
    """Base class of every connector type. Subclasses set the class attributes and implement their role's methods."""

    type: ClassVar[str]
    roles: ClassVar[tuple[Role, ...]] = ()
    Settings: ClassVar[builtins.type[ConnectorSettings]] = ConnectorSettings
    description: ClassVar[str] = ""

    def __init__(self, settings: ConnectorSettings, context: ConnectorContext) -> None:
        self.settings = settings
        self.context = context

    @property
    def name(self) -> str:
        return self.context.name

    def check(self) -> CheckResult:
        """Say whether the remote end is reachable and the credentials work."""
        return CheckResult(ok=True, message="nothing to check")


class Source(Connector):
    """A connector that reads records. ``read`` yields batches, each carrying the cursor that follows it."""

    roles: ClassVar[tuple[Role, ...]] = ("source",)

    def streams(self) -> Mapping[str, Stream]:
        """The streams this instance offers, by name. May depend on the settings (e.g. one per file pattern)."""
        raise NotImplementedError

    def read(self, stream: str, cursor: Any) -> Iterator[Batch]:
        """Yield batches of raw records of ``stream`` that follow ``cursor`` (None on the first read).

        Contract: records equal to the cursor's boundary may be yielded again (the engine's upserts are
        idempotent), but none that follow it may be skipped. Each batch's cursor must be enough to resume after it.
        """
        raise NotImplementedError
