"""hub's pytest plugin (entry point ``pytest11: hub``): fixtures for hub's own tests and for plugin authors.

Loaded by pytest at start-up in every project that has hub installed, so importing it must stay cheap: it
defines fixtures and starts nothing; a PostgreSQL server starts only when a test asks for one.
:class:`~hub.testing.destination.DestinationContract` (the tests every destination plugin subclasses) is imported
only when a test module asks for it, with the HTTP, sandbox and delivery machinery it needs; likewise
:class:`~hub.testing.source.SourceContract`, the tests every source plugin subclasses.
"""

from typing import TYPE_CHECKING, Any

from hub.testing.fixtures import database_url, pg_database_url, postgres_url, pytest_configure, sqlite_url

if TYPE_CHECKING:
    from hub.testing.destination import DestinationContract
    from hub.testing.source import SourceContract

__all__ = [
    "DestinationContract",
    "SourceContract",
    "database_url",
    "pg_database_url",
    "postgres_url",
    "pytest_configure",
    "sqlite_url",
]


def __getattr__(name: str) -> Any:
    if name == "DestinationContract":
        from hub.testing.destination import DestinationContract

        return DestinationContract
    if name == "SourceContract":
        from hub.testing.source import SourceContract

        return SourceContract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
