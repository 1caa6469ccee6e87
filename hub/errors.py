"""One exception tree for hub.

Every message says what was wrong, where (file, line, key, connector, stream, record) and what to do next,
and never contains a secret::

    HubError
    ├── ConfigError            hub.yaml or a file it points at is invalid; carries every ConfigIssue found
    ├── MappingError           a mapping file is invalid (a subclass of ConfigError: same file:line:key shape)
    ├── PluginError            a plugin failed to load or registered something invalid
    ├── DatabaseError
    │   └── SchemaOutOfDate    the database is behind the code's migrations; run `hub db upgrade`
    ├── SourceError            a source failed to read (after its own retries)
    └── RecordError            one record could not be mapped or resolved; becomes a reject, never a crash
"""

from __future__ import annotations

from dataclasses import dataclass


class HubError(Exception):
    """Base of every error hub raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration or mapping file, located as precisely as the file allows."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(HubError):
    """A configuration is invalid. Holds every issue found, so a user fixes them in one pass."""

    def __init__(self, issues: list[ConfigIssue] | ConfigIssue | str) -> None:
        if isinstance(issues, str):
            issues = [ConfigIssue(file="", line=None, key="", message=issues)]
        elif isinstance(issues, ConfigIssue):
            issues = [issues]
        self.issues: list[ConfigIssue] = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class MappingError(ConfigError):
    """A mapping file is invalid (unknown transform, bad path, missing required key...)."""


class PluginError(HubError):
    """A plugin could not be loaded or registered something invalid (e.g. two connector types of one name)."""


class DatabaseError(HubError):
    """The database cannot be used as configured."""


class SchemaOutOfDate(DatabaseError):
    """The database schema is behind this version of hub."""


class SourceError(HubError):
    """A source could not be read. Raised by source connectors after their own retries gave up."""


class RecordError(HubError):
    """One record failed to map or resolve. The engine turns it into a reject and carries on with the batch.

    :param errors: one message per field that failed, e.g. ``"placed_at: time data '31/02' does not match"``.
    """

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))
